/** A throwaway redis-server in the foreground on a free loopback port, nothing persisted. */
import net from 'node:net';
import path from 'node:path';
import Redis from 'ioredis';
import { freePort } from './ports';
import { findExecutable, makeTempDir, removeTempDir, spawnLogged, stopProcess, waitUntil, serverProcess, type ServerProcess, type Spawned } from './processes';

export interface RedisHandle extends ServerProcess {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  logFile: string;
  /** SIGTERM; the data (none is saved) is gone. */
  stop(): Promise<void>;
  /** Starts again on the same port, empty (outage tests). */
  start(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

/** One PING over a raw socket: no client library with its own reconnection logic in the way. */
export function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/**
 * One question to the Redis server on `port`, on a connection of its own that gives up at once;
 * `unanswered` when the server does not answer (stopped, restarting, refusing).
 */
export async function askRedis<T>(port: number, ask: (client: Redis) => Promise<T>, unanswered: T): Promise<T> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await ask(client);
  } catch {
    return unanswered;
  } finally {
    client.disconnect();
  }
}

export async function startRedis(): Promise<RedisHandle> {
  const binary = findExecutable('redis-server', ['/usr/bin', '/usr/local/bin']);
  if (!binary) throw new Error('redis-server not found (apt-get install redis-server)');
  const port = await freePort();
  const dir = makeTempDir('seance-redis-');
  const logFile = path.join(dir, 'redis.log');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];

  let proc: Spawned | undefined;
  const start = async () => {
    if (proc && !proc.hasExited()) return;
    proc = spawnLogged(binary, args, { cwd: dir, logFile });
    await waitUntil(`redis-server on port ${port}`, () => redisPing(port), { timeoutMs: READY_TIMEOUT_MS, proc, logFile });
  };
  const stop = async () => {
    if (proc) await stopProcess(proc, 'SIGTERM', STOP_GRACE_MS);
  };

  try {
    await start();
  } catch (err) {
    await stop().catch(() => undefined);
    await removeTempDir(dir);
    throw err;
  }
  // Object.assign keeps serverProcess's getters live (a spread would copy their values once).
  return Object.assign(
    serverProcess(() => proc, stop, dir),
    {
      url: `redis://127.0.0.1:${port}`,
      port,
      logFile,
      stop,
      start,
    },
  );
}
