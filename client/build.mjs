// Builds the package: ESM and CommonJS for bundlers and Node, one browser script (with
// Socket.IO inside, global `Seance`) that the server serves at /play/seance-client.js,
// and the .d.ts files from tsc.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const here = import.meta.dirname;
const resolveFromHere = createRequire(import.meta.url).resolve;
rmSync(`${here}/dist`, { recursive: true, force: true });

const common = { absWorkingDir: here, bundle: true, target: 'es2020', sourcemap: true, logLevel: 'warning' };
const entries = { index: 'src/index.ts', events: 'src/events.ts' };
for (const [name, entry] of Object.entries(entries)) {
  await build({ ...common, entryPoints: [entry], outfile: `dist/${name}.mjs`, format: 'esm', platform: 'neutral', external: ['socket.io-client'] });
  await build({ ...common, entryPoints: [entry], outfile: `dist/${name}.cjs`, format: 'cjs', platform: 'node', external: ['socket.io-client'] });
}
await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/seance-client.js', format: 'iife', globalName: 'Seance', platform: 'browser', minify: true });

execFileSync(process.execPath, [resolveFromHere('typescript/bin/tsc'), '-p', `${here}/tsconfig.json`], { stdio: 'inherit' });
