/**
 * The two systems under test, started the same way: N node processes on loopback ports,
 * optionally behind nginx rendered from the shipped nginx.conf, on the shared Redis (and,
 * for the project, the shared PostgreSQL). Also reads their CPU and memory from /proc.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startCluster } from '../harness/cluster';
import { startNginx, type NginxHandle } from '../harness/nginx';
import { freePort } from '../harness/ports';
import type { PostgresHandle } from '../harness/postgres';
import { PROJECT_ROOT, makeTempDir, removeTempDir, spawnLogged, stopProcess, waitUntil } from '../harness/processes';
import type { RedisHandle } from '../harness/redis';
import type { RedisClusterHandle } from '../harness/redisCluster';
import { BUILD_DIR, transpile } from './lib/transpile';
import { cpuDelta, groupRss, machineSeconds, memory, processTree, sampleCpu, type CpuSample } from './lib/procstat';

export type SystemKind = 'project' | 'floor';

export interface BenchNode {
  url: string;
  port: number;
  pid: number;
  nodeId: string;
}

export interface SystemHandle {
  kind: SystemKind;
  nodes: BenchNode[];
  nginx: NginxHandle | null;
  /** nginx, or the first node without it. */
  url: string;
  stop(): Promise<void>;
}

export interface Backing {
  postgres: PostgresHandle;
  /** One redis-server (the floor always uses it). */
  redis: RedisHandle;
  /** When set, the project's nodes join this Redis Cluster instead of `redis`. */
  redisCluster?: RedisClusterHandle;
}

/** A JWT secret for the production config (the project refuses a short one). */
const BENCH_SECRET = 'bench-only-secret-0123456789abcdef0123456789abcdef';

/** The project in production mode with the abuse limits raised out of the benchmark's way. */
export function projectEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'production',
    JWT_SECRET: BENCH_SECRET,
    LOG_LEVEL: 'warn',
    MESSAGE_RATE_LIMIT: '100000',
    MESSAGE_RATE_WINDOW_S: '1',
    CONNECT_RATE_LIMIT: '1000000',
    SESSION_CREATE_RATE_LIMIT: '1000000',
    CLIENT_EVENT_RATE: '100000',
    // Thousands of idle connections come from a few loopback addresses.
    MAX_CONNECTIONS_PER_ADDRESS: '0',
    // The floor answers at once; so does the oracle here (its default delay is for people watching).
    SPIRIT_ORACLE_DELAY_MS: '0',
    ...extra,
  };
}

export async function startProject(backing: Backing, opts: { nodes: number; nginx: boolean; env?: Record<string, string> }): Promise<SystemHandle> {
  const cluster = await startCluster({
    nodes: opts.nodes,
    nginx: opts.nginx,
    env: projectEnv(opts.env),
    postgres: backing.postgres,
    ...(backing.redisCluster ? { redisCluster: backing.redisCluster } : { redis: backing.redis }),
  });
  return {
    kind: 'project',
    nodes: cluster.nodes.map((n) => ({ url: n.url, port: n.port, pid: n.pid, nodeId: n.nodeId })),
    nginx: cluster.nginx,
    url: cluster.url,
    stop: () => cluster.stop(),
  };
}

const FLOOR_BUILD = path.join(BUILD_DIR, 'floor', 'server.js');
export const PROFILER_PRELOAD = path.join(BUILD_DIR, 'lib', 'profiler-preload.js');

/** Builds the floor server and the profiler preload (cheap: no type check). */
export function buildFloor(): string {
  transpile('lib/profiler-preload');
  return transpile('floor/server');
}

async function startFloorNode(index: number, redisUrl: string, env: Record<string, string>): Promise<BenchNode & { stop(): Promise<void> }> {
  const port = await freePort();
  const dir = makeTempDir('seance-floor-');
  const logFile = path.join(dir, 'floor.log');
  const nodeId = `floor-${index + 1}`;
  const proc = spawnLogged(process.execPath, [FLOOR_BUILD], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, NODE_ID: nodeId, NODE_INDEX: String(index), ...env },
    logFile,
  });
  const stop = async () => {
    await stopProcess(proc, 'SIGTERM', 5_000);
    await removeTempDir(dir);
  };
  try {
    await waitUntil(
      `floor node on port ${port}`,
      async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1_000) });
          return res.status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: 15_000, proc, logFile },
    );
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, port, pid: proc.pid, nodeId, stop };
}

export async function startFloor(backing: Backing, opts: { nodes: number; nginx: boolean; env?: Record<string, string> }): Promise<SystemHandle> {
  if (!fs.existsSync(FLOOR_BUILD)) buildFloor();
  const nodes: Array<BenchNode & { stop(): Promise<void> }> = [];
  let nginx: NginxHandle | null = null;
  const stop = async () => {
    if (nginx) await nginx.stop();
    await Promise.allSettled(nodes.map((n) => n.stop()));
  };
  try {
    const started = await Promise.allSettled(Array.from({ length: opts.nodes }, (_, i) => startFloorNode(i, backing.redis.url, opts.env ?? {})));
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    nodes.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    if (opts.nginx) nginx = await startNginx({ upstreams: nodes.map((n) => `127.0.0.1:${n.port}`) });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return {
    kind: 'floor',
    nodes: nodes.map(({ url, port, pid, nodeId }) => ({ url, port, pid, nodeId })),
    nginx,
    url: nginx ? nginx.url : nodes[0].url,
    stop,
  };
}

// ---------------------------------------------------------------------------------------
// Resource meters
// ---------------------------------------------------------------------------------------

/** The PostgreSQL postmaster's PID, from its data directory. */
export function postgresPid(pg: PostgresHandle): number {
  const text = fs.readFileSync(path.join(pg.dir, 'data', 'postmaster.pid'), 'utf8');
  return Number(text.split('\n')[0]);
}

/** A redis-server's PID, found by its port in its command line. */
export function redisPid(redis: { port: number }): number {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // redis-server retitles itself "redis-server 127.0.0.1:PORT" (plus " [cluster]" on a shard).
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes('redis-server') && new RegExp(`[: ]${redis.port}(\\D|$)`).test(cmd)) return Number(entry);
    } catch {
      // gone
    }
  }
  return -1;
}

/** The redis-server processes the project uses: the one server, or every shard of the cluster. */
function redisPids(backing: Backing, system: SystemHandle): number[] {
  const servers = system.kind === 'project' && backing.redisCluster ? backing.redisCluster.shards : [backing.redis];
  return servers.map(redisPid).filter((pid) => pid > 0);
}

export interface ResourceReading {
  /** CPU seconds per node, in node order. */
  nodeCpuS: number[];
  /** RSS per node at the end, MB. */
  nodeRssMb: number[];
  /** Peak RSS per node since it started, MB. */
  nodeHwmMb: number[];
  nginxCpuS: number;
  postgresCpuS: number;
  redisCpuS: number;
  /** Wall time between the two readings. */
  wallS: number;
  /** CPU seconds every process on the machine used (ours, the generator's, anyone else's). */
  machineProcessS: number;
  /** CPU seconds spent in interrupts (loopback TCP work lands here), machine-wide. */
  machineInterruptS: number;
}

/** Samples CPU of the nodes, their nginx, PostgreSQL and Redis; `stop()` returns the deltas. */
export function meter(system: SystemHandle, backing: Backing): { stop(): ResourceReading } {
  const pgRoot = postgresPid(backing.postgres);
  const redis = redisPids(backing, system);
  const groups = {
    nginx: () => (system.nginx ? processTree(system.nginx.pid) : []),
    postgres: () => processTree(pgRoot),
    redis: () => redis,
  };
  const startedAt = process.hrtime.bigint();
  const machineBefore = machineSeconds();
  const before = {
    nodes: system.nodes.map((n) => sampleCpu([n.pid])),
    nginx: sampleCpu(groups.nginx()),
    postgres: sampleCpu(groups.postgres()),
    redis: sampleCpu(groups.redis()),
  };
  return {
    stop(): ResourceReading {
      const delta = (b: CpuSample, pids: number[]) => cpuDelta(b, sampleCpu(pids));
      const mb = (bytes: number) => bytes / 1024 / 1024;
      const machineAfter = machineSeconds();
      return {
        nodeCpuS: system.nodes.map((n, i) => delta(before.nodes[i], [n.pid])),
        nodeRssMb: system.nodes.map((n) => mb(memory(n.pid)?.rss ?? 0)),
        nodeHwmMb: system.nodes.map((n) => mb(memory(n.pid)?.hwm ?? 0)),
        nginxCpuS: delta(before.nginx, groups.nginx()),
        postgresCpuS: delta(before.postgres, groups.postgres()),
        redisCpuS: delta(before.redis, groups.redis()),
        wallS: Number(process.hrtime.bigint() - startedAt) / 1e9,
        machineProcessS: machineAfter.process - machineBefore.process,
        machineInterruptS: machineAfter.interrupts - machineBefore.interrupts,
      };
    },
  };
}

export { groupRss };
