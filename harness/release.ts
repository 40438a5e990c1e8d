/**
 * Another release of Séance built from this repository's git history, to run beside the
 * current one (a rolling upgrade: nodes of two releases in one cluster). The commit's tree is
 * exported into a temp dir, shares this checkout's node_modules (the releases compared here
 * have the same dependencies) and is compiled with its own tsconfig.
 */
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, PROJECT_ROOT, removeTempDir, run } from './processes';

export interface ReleaseBuild {
  /** The build's directory: give it to startNode / addNode as `root`. */
  root: string;
  remove(): Promise<void>;
}

/** True when this checkout has its git history (a release can be built from it). */
export function hasGitHistory(): boolean {
  return fs.existsSync(path.join(PROJECT_ROOT, '.git'));
}

export async function buildRelease(commit: string): Promise<ReleaseBuild> {
  const root = makeTempDir('seance-release-');
  try {
    const archive = path.join(root, 'tree.tar');
    await run('git', ['archive', '--format=tar', '-o', archive, commit], { cwd: PROJECT_ROOT });
    await run('tar', ['-xf', archive], { cwd: root });
    fs.rmSync(archive);
    fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
    await run(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, timeoutMs: 180_000 });
  } catch (err) {
    await removeTempDir(root);
    throw err;
  }
  return { root, remove: () => removeTempDir(root) };
}
