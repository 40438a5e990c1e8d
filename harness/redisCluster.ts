/**
 * A throwaway Redis Cluster on loopback: 3 masters (`redis-server --cluster-enabled yes`, no
 * replicas, nothing persisted) joined with `redis-cli --cluster create`. Each shard can be
 * stopped and started again on its port (it rejoins with its slots, empty), so tests can
 * restart one shard under traffic. `cluster-require-full-coverage no`: while a shard is down
 * the others keep serving their slots, as operators should configure it for Séance.
 */
import fs from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { freePort } from './ports';
import { askRedis, redisPing } from './redis';
import { findExecutable, makeTempDir, removeTempDir, run, spawnLogged, stopProcess, waitUntil, type Spawned } from './processes';

export interface RedisShardHandle {
  port: number;
  logFile: string;
  /** SIGTERM (SIGKILL with `kill`); its data is gone. */
  stop(opts?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port and cluster identity; resolves once the cluster is ok again. */
  start(): Promise<void>;
}

export interface RedisClusterHandle {
  /** `127.0.0.1:P1,127.0.0.1:P2,…` for REDIS_CLUSTER_NODES. */
  nodesEnv: string;
  shards: RedisShardHandle[];
  /** The index in `shards` of the master that owns `key`'s slot (a channel name works too). */
  shardOf(key: string): Promise<number>;
  /** Resolves once every shard reports cluster_state:ok. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  destroy(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const MASTERS = 3;

/** One CLUSTER INFO field of the node on `port` ('' when it does not answer). */
function clusterInfo(port: number, field: string): Promise<string> {
  return askRedis(port, async (client) => new RegExp(`^${field}:(\\S+)`, 'm').exec(String(await client.cluster('INFO')))?.[1] ?? '', '');
}

export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const server = findExecutable('redis-server', ['/usr/bin', '/usr/local/bin']);
  const cli = findExecutable('redis-cli', ['/usr/bin', '/usr/local/bin']);
  if (!server || !cli) throw new Error('redis-server and redis-cli not found (apt-get install redis-server)');
  const dir = makeTempDir('seance-redis-cluster-');
  const procs: Array<Spawned | undefined> = [];
  const shards: RedisShardHandle[] = [];

  const destroy = async () => {
    await Promise.all(shards.map((s) => s.stop({ kill: true }).catch(() => undefined)));
    await removeTempDir(dir);
  };

  const waitHealthy = async (timeoutMs = READY_TIMEOUT_MS) => {
    await waitUntil('redis cluster state ok', async () => (await Promise.all(shards.map((s) => clusterInfo(s.port, 'cluster_state')))).every((state) => state === 'ok'), {
      timeoutMs,
      intervalMs: 100,
    });
  };

  try {
    for (let i = 0; i < MASTERS; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      const nodeDir = path.join(dir, `shard-${i + 1}`);
      fs.mkdirSync(nodeDir, { recursive: true });
      const logFile = path.join(nodeDir, 'redis.log');
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(busPort),
        '--cluster-config-file',
        path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        '2000',
        '--cluster-require-full-coverage',
        'no',
        '--cluster-announce-ip',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        nodeDir,
      ];
      const start = async () => {
        if (procs[i] && !procs[i]!.hasExited()) return;
        const proc = spawnLogged(server, args, { cwd: nodeDir, logFile });
        procs[i] = proc;
        await waitUntil(`redis cluster node on port ${port}`, () => redisPing(port), { timeoutMs: READY_TIMEOUT_MS, proc, logFile });
      };
      shards.push({
        port,
        logFile,
        stop: async (opts = {}) => {
          const proc = procs[i];
          if (proc) await stopProcess(proc, opts.kill ? 'SIGKILL' : 'SIGTERM', STOP_GRACE_MS);
        },
        start: async () => {
          await start();
          await waitHealthy();
        },
      });
      await start();
    }
    await run(cli, ['--cluster', 'create', ...shards.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { cwd: dir, timeoutMs: 30_000 });
    await waitHealthy();
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  /** Asked of the first shard that answers (one may be down). */
  const shardOf = async (key: string): Promise<number> => {
    const live = [];
    for (const s of shards) if (await redisPing(s.port)) live.push(s);
    if (live.length === 0) throw new Error('no shard answers');
    const admin = new Redis({ port: live[0].port, host: '127.0.0.1' });
    try {
      const slot = Number(await admin.cluster('KEYSLOT', key));
      const ranges = await admin.cluster('SLOTS');
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!owner) throw new Error(`no shard owns slot ${slot}`);
      return shards.findIndex((s) => s.port === Number(owner[2][1]));
    } finally {
      admin.disconnect();
    }
  };

  return {
    nodesEnv: shards.map((s) => `127.0.0.1:${s.port}`).join(','),
    shards,
    shardOf,
    waitHealthy,
    destroy,
  };
}
