/**
 * One Séance node as a real process: `node dist/server/index.js` (what `npm start` runs;
 * npm itself is not spawned so that signals reach the server directly).
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports';
import { PROJECT_ROOT, makeTempDir, removeTempDir, signal, spawnLogged, stopProcess, tailFile, waitUntil } from './processes';

export const SERVER_ENTRY = path.join(PROJECT_ROOT, 'dist', 'server', 'index.js');

export interface NodeOptions {
  env: Record<string, string>;
  /** Another build of Séance to run (its directory, with dist/ built): a previous release, for instance. */
  root?: string;
  port?: number;
  /** Default: node.log in a temp dir removed on stop. */
  logFile?: string;
}

export interface NodeHandle {
  url: string;
  port: number;
  pid: number;
  /** As reported by the node's /health (its NODE_ID). */
  nodeId: string;
  logFile: string;
  /** Sends a signal and returns at once (SIGKILL a node to simulate a crash). */
  kill(signal: NodeJS.Signals): void;
  /** Exit code, or null when a signal ended the process. */
  exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after 10 s; removes the temp log dir. Safe after the node died. */
  stop(): Promise<void>;
  /** The last lines of the node's log, for assertion messages. */
  logTail(lines?: number): string;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;

async function health(port: number): Promise<{ ok: boolean; nodeId?: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json().catch(() => ({}))) as { node_id?: unknown };
    return { ok: res.status === 200, nodeId: typeof body.node_id === 'string' ? body.node_id : undefined };
  } catch {
    return { ok: false };
  }
}

/** Starts a node and resolves once its /health answers 200. */
export async function startNode(opts: NodeOptions): Promise<NodeHandle> {
  const root = opts.root ?? PROJECT_ROOT;
  const entry = path.join(root, 'dist', 'server', 'index.js');
  if (!fs.existsSync(entry)) throw new Error(`${entry} does not exist: run \`npm run build\` first`);
  const port = opts.port ?? (await freePort());
  const tempDir = opts.logFile ? undefined : makeTempDir('seance-node-');
  const logFile = opts.logFile ?? path.join(tempDir!, 'node.log');
  const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', ...opts.env };

  const proc = spawnLogged(process.execPath, [entry], { cwd: root, env, logFile });
  const stop = async () => {
    await stopProcess(proc, 'SIGTERM', STOP_GRACE_MS);
    if (tempDir) await removeTempDir(tempDir);
  };

  let nodeId = opts.env.NODE_ID ?? '';
  try {
    await waitUntil(
      `node on port ${port}`,
      async () => {
        const h = await health(port);
        if (h.nodeId) nodeId = h.nodeId;
        return h.ok;
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, proc, logFile },
    );
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    nodeId,
    logFile,
    kill: (sig) => {
      if (!proc.hasExited()) signal(proc.pid, sig);
    },
    exited: proc.exited,
    stop,
    logTail: (lines) => tailFile(logFile, lines),
  };
}
