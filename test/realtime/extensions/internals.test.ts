/**
 * The library internals server/realtime/extensions relies on: present in the installed
 * versions, which are the exact versions package.json pins. An upgrade that moves one fails
 * here (and the server refuses to start), instead of silently losing batching or coalescing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { checkLibraryInternals, INTERNALS } from '../../../server/realtime/extensions/internals';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const installed = (name: string) => (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

describe('library internals the extensions rely on', () => {
  it('are all where the extensions expect them', () => {
    for (const internal of INTERNALS) expect(internal.holds(), internal.what).to.equal(true);
    expect(() => checkLibraryInternals()).not.to.throw();
  });

  it('refuses to start, naming what moved, when one is missing', () => {
    const moved = [...INTERNALS, { what: 'engine.io Socket#flushLater', holds: () => false }];
    expect(() => checkLibraryInternals(moved)).to.throw(/engine\.io Socket#flushLater/);
  });

  for (const name of ['socket.io', 'socket.io-adapter', 'engine.io', 'ws']) {
    it(`pins ${name} to the exact version installed`, () => {
      expect(pkg.dependencies[name], 'an exact version, no range').to.match(/^\d+\.\d+\.\d+$/);
      expect(installed(name)).to.equal(pkg.dependencies[name]);
    });
  }
});
