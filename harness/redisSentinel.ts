/**
 * A throwaway Sentinel set on loopback: one master, one replica and three `redis-sentinel`s
 * (quorum 2) watching them under the name `seance`, nothing persisted. Sentinels take the
 * master for down after 1 s (production: see the compose override), so a failover completes
 * within a few seconds; tests kill the current master and measure how the nodes follow.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports';
import { askRedis, redisPing } from './redis';
import { findExecutable, makeTempDir, removeTempDir, spawnLogged, stopProcess, waitUntil, type Spawned } from './processes';

export const SENTINEL_MASTER_NAME = 'seance';

export interface RedisDataNode {
  port: number;
  logFile: string;
  /** SIGKILL (a crash) or SIGTERM. */
  stop(opts?: { kill?: boolean }): Promise<void>;
  /** Starts it again (it rejoins as the sentinels tell it: as a replica of the current master). */
  start(): Promise<void>;
  isRunning(): boolean;
}

export interface RedisSentinelHandle {
  /** `127.0.0.1:P1,…` for REDIS_SENTINELS. */
  sentinelsEnv: string;
  name: string;
  /** The master and the replica, in start order. */
  data: RedisDataNode[];
  sentinelPorts: number[];
  /** The port of the master the sentinels name now. */
  masterPort(): Promise<number>;
  /** The data node that is the master now. */
  master(): Promise<RedisDataNode>;
  /** Resolves once the sentinels name a master other than `port` and it answers as a master. */
  waitForPromotion(oldPort: number, timeoutMs?: number): Promise<number>;
  /** Resolves once the server on `port` is a replica in sync with its master (the sentinels reconfigure a returning master so). */
  waitReplicating(port: number, timeoutMs?: number): Promise<void>;
  destroy(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const DOWN_AFTER_MS = 1_000;

function sentinelMaster(port: number): Promise<number | null> {
  return askRedis(
    port,
    async (client) => {
      const addr = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME)) as [string, string] | null;
      return addr ? Number(addr[1]) : null;
    },
    null,
  );
}

/** The server's ROLE ('master', 'slave'; '' when it does not answer), and for a replica whether its link is up. */
function role(port: number): Promise<string> {
  return askRedis(
    port,
    async (client) => {
      const reply = (await client.call('ROLE')) as unknown[];
      return reply[0] === 'slave' && reply[3] !== 'connected' ? 'slave-syncing' : String(reply[0]);
    },
    '',
  );
}

export async function startRedisSentinel(): Promise<RedisSentinelHandle> {
  const server = findExecutable('redis-server', ['/usr/bin', '/usr/local/bin']);
  const sentinelBinary = findExecutable('redis-sentinel', ['/usr/bin', '/usr/local/bin']);
  if (!server) throw new Error('redis-server not found (apt-get install redis-server)');
  if (!sentinelBinary) throw new Error('redis-sentinel not found (apt-get install redis-sentinel)');
  const dir = makeTempDir('seance-redis-sentinel-');
  const data: RedisDataNode[] = [];
  const sentinels: Spawned[] = [];
  const sentinelPorts: number[] = [];

  const destroy = async () => {
    await Promise.all([...sentinels.map((p) => stopProcess(p, 'SIGKILL', STOP_GRACE_MS)), ...data.map((d) => d.stop({ kill: true }))]).catch(() => undefined);
    await removeTempDir(dir);
  };

  const dataNode = (name: string, port: number, extra: string[]): RedisDataNode => {
    const nodeDir = path.join(dir, name);
    fs.mkdirSync(nodeDir, { recursive: true });
    const logFile = path.join(nodeDir, 'redis.log');
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', nodeDir, '--replica-announce-ip', '127.0.0.1', ...extra];
    let proc: Spawned | undefined;
    return {
      port,
      logFile,
      isRunning: () => Boolean(proc && !proc.hasExited()),
      stop: async (opts = {}) => {
        if (proc) await stopProcess(proc, opts.kill ? 'SIGKILL' : 'SIGTERM', STOP_GRACE_MS);
      },
      start: async () => {
        if (proc && !proc.hasExited()) return;
        proc = spawnLogged(server, args, { cwd: nodeDir, logFile });
        await waitUntil(`redis-server on port ${port}`, () => redisPing(port), { timeoutMs: READY_TIMEOUT_MS, proc, logFile });
      },
    };
  };

  try {
    const [masterPort, replicaPort] = [await freePort(), await freePort()];
    data.push(dataNode('master', masterPort, []), dataNode('replica', replicaPort, ['--replicaof', '127.0.0.1', String(masterPort)]));
    for (const node of data) await node.start();
    await waitUntil('replica in sync', async () => (await role(replicaPort)) === 'slave', { timeoutMs: READY_TIMEOUT_MS });

    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const sentinelDir = path.join(dir, `sentinel-${i + 1}`);
      fs.mkdirSync(sentinelDir, { recursive: true });
      const conf = path.join(sentinelDir, 'sentinel.conf');
      // Sentinel rewrites its config file as it learns: it must be its own and writable.
      fs.writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${sentinelDir}`,
          'sentinel announce-ip 127.0.0.1',
          'sentinel resolve-hostnames no',
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 10000`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      const logFile = path.join(sentinelDir, 'sentinel.log');
      const proc = spawnLogged(sentinelBinary, [conf], { cwd: sentinelDir, logFile });
      sentinels.push(proc);
      sentinelPorts.push(port);
      await waitUntil(`redis-sentinel on port ${port}`, async () => (await sentinelMaster(port)) === masterPort, { timeoutMs: READY_TIMEOUT_MS, proc, logFile });
    }
    // Every sentinel knows the replica and the other sentinels before a test may kill the master.
    await waitUntil(
      'sentinels know each other and the replica',
      async () => {
        const states = await Promise.all(
          sentinelPorts.map((port) =>
            askRedis(
              port,
              async (client) => {
                const master = (await client.call('SENTINEL', 'master', SENTINEL_MASTER_NAME)) as string[];
                const field = (name: string) => Number(master[master.indexOf(name) + 1]);
                return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
              },
              false,
            ),
          ),
        );
        return states.every(Boolean);
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  const masterPort = async () => {
    for (const port of sentinelPorts) {
      const found = await sentinelMaster(port);
      if (found) return found;
    }
    throw new Error('no sentinel names a master');
  };

  return {
    sentinelsEnv: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    name: SENTINEL_MASTER_NAME,
    data,
    sentinelPorts,
    masterPort,
    master: async () => {
      const port = await masterPort();
      return data.find((d) => d.port === port)!;
    },
    waitForPromotion: async (oldPort, timeoutMs = 30_000) => {
      let promoted = 0;
      await waitUntil(
        'sentinel promotion',
        async () => {
          const port = await masterPort().catch(() => 0);
          if (port === 0 || port === oldPort) return false;
          promoted = port;
          return (await role(port)) === 'master';
        },
        { timeoutMs, intervalMs: 50 },
      );
      return promoted;
    },
    waitReplicating: async (port, timeoutMs = 30_000) => {
      await waitUntil(`replica on port ${port} in sync`, async () => (await role(port)) === 'slave', { timeoutMs, intervalMs: 100 });
    },
    destroy,
  };
}
