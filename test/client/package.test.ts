/**
 * The @seance/client package as an application installs it: the ESM and CommonJS entries
 * (and the `./events` subpath) load and agree, every `exports` target exists, and the
 * browser build defines the global `Seance` without Node.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { expect } from 'chai';

const CLIENT_DIR = path.join(__dirname, '..', '..', 'client');
const manifest = JSON.parse(readFileSync(path.join(CLIENT_DIR, 'package.json'), 'utf8'));

/** What one entry exports, as seen by a fresh Node process loading it by package name. */
function exportsOf(loader: 'import' | 'require', specifier: string): string[] {
  const script =
    loader === 'import'
      ? `import(${JSON.stringify(specifier)}).then((m) => console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default').sort())))`
      : `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(specifier)})).sort()))`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: CLIENT_DIR, encoding: 'utf8' }));
}

describe('@seance/client package', () => {
  it('points every exports target at a built file', () => {
    const targets = Object.values<any>(manifest.exports).flatMap((entry) => (typeof entry === 'string' ? [entry] : Object.values<string>(entry)));
    expect(targets.length).to.be.at.least(7);
    for (const target of [...targets, manifest.main, manifest.module, manifest.types]) expect(existsSync(path.join(CLIENT_DIR, target)), target).to.equal(true);
  });

  for (const specifier of ['@seance/client', '@seance/client/events']) {
    it(`loads ${specifier} from ESM and CommonJS alike`, () => {
      const esm = exportsOf('import', specifier);
      expect(esm).to.deep.equal(exportsOf('require', specifier));
      expect(esm).to.include.members(['JOIN_REFUSAL_CODES', 'RAW_CLOSE_CODES']);
      if (specifier === '@seance/client') expect(esm).to.include.members(['connect', 'SeanceError']);
    });
  }

  it('has a browser build that defines the global Seance', () => {
    const context = vm.createContext({ setTimeout, clearTimeout, navigator: { userAgent: 'test' }, location: { protocol: 'http:', host: 'localhost' } });
    vm.runInContext(readFileSync(path.join(CLIENT_DIR, 'dist', 'seance-client.js'), 'utf8'), context);
    const seance = vm.runInContext('Seance', context);
    expect(typeof seance.connect).to.equal('function');
    expect(typeof seance.SeanceError).to.equal('function');
  });
});
