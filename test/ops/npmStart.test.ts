/**
 * `npm start` under a supervisor: SIGTERM or SIGINT to the npm process must reach the node
 * server, which drains and exits, leaving no process behind and the port free.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { canConnect, freePort } from '../../harness/ports';
import { PROJECT_ROOT, childPids, makeTempDir, removeTempDir, signal, spawnLogged, tailFile, waitUntil } from '../../harness/processes';

/** Every process under `pid`, children first found, recursively. */
function descendants(pid: number): number[] {
  return childPids(pid).flatMap((child) => [child, ...descendants(child)]);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start', function () {
  this.timeout(60_000);

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`passes ${sig} on: the node drains and exits, no process is left and the port is free`, async () => {
      const dir = makeTempDir('seance-npm-start-');
      const logFile = path.join(dir, 'npm.log');
      const port = await freePort();
      const npm = spawnLogged('npm', ['start'], {
        cwd: PROJECT_ROOT,
        logFile,
        env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'info', DATABASE_URL: `sqlite:${path.join(dir, 'db.sqlite')}` },
      });
      let tree: number[] = [];
      try {
        await waitUntil('npm start serving', async () => (await fetch(`http://127.0.0.1:${port}/livez`).catch(() => null))?.status === 200, { timeoutMs: 30_000, proc: npm, logFile });
        tree = descendants(npm.pid);
        expect(tree.length, 'npm runs the server as a child').to.be.at.least(1);

        signal(npm.pid, sig);
        const code = await Promise.race([npm.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))]);
        expect(code, `npm did not exit\n${tailFile(logFile)}`).not.to.equal('hung');
        await waitUntil('every process of npm start gone', async () => tree.every((pid) => !alive(pid)), { timeoutMs: 5_000, logFile });
        expect(await canConnect(port), 'the port is still taken').to.equal(false);
        expect(fs.readFileSync(logFile, 'utf8')).to.include('shut down cleanly');
      } finally {
        for (const pid of [npm.pid, ...tree]) signal(pid, 'SIGKILL');
        await removeTempDir(dir);
      }
    });
  }
});
