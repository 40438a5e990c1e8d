/**
 * Transpiles bench/<relative>.ts to bench/.build/<relative>.js, so that it runs under plain
 * `node` exactly like the project's compiled dist/ (no TypeScript loader in its memory,
 * CPU or start-up). Resolution of packages still finds the project's node_modules.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { PROJECT_ROOT } from '../../harness/processes';

export const BUILD_DIR = path.join(PROJECT_ROOT, 'bench', '.build');

export function transpile(relative: string): string {
  const source = path.join(PROJECT_ROOT, 'bench', `${relative}.ts`);
  const out = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: source,
  });
  const target = path.join(BUILD_DIR, `${relative}.js`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, out.outputText);
  return target;
}
