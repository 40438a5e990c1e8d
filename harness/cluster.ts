/**
 * A whole Séance cluster on loopback: PostgreSQL, Redis (one redis-server, a Redis Cluster or a
 * Sentinel set), N node processes and nginx in front, rendered from the shipped nginx.conf.
 * Shared by the cluster tests, the benchmark and `npm run cluster`.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startNginx, type NginxHandle } from './nginx';
import { startNode, type NodeHandle } from './node';
import { startPostgres, type PostgresHandle } from './postgres';
import { startRedis, type RedisHandle } from './redis';
import { startRedisCluster, type RedisClusterHandle } from './redisCluster';
import { startRedisSentinel, type RedisSentinelHandle } from './redisSentinel';

export type RedisMode = 'single' | 'cluster' | 'sentinel';

export interface ClusterOptions {
  /** Default 3. */
  nodes?: number;
  /** Default true; without it `url` is node-1's. */
  nginx?: boolean;
  /** Extra environment for every node; overrides the defaults below. */
  env?: Record<string, string>;
  /** Reused, not stopped by stop(). Started (and destroyed on stop) when absent. */
  postgres?: PostgresHandle;
  /** Which Redis the nodes join (default 'single'); a given handle decides it. */
  redisMode?: RedisMode;
  redis?: RedisHandle;
  redisCluster?: RedisClusterHandle;
  redisSentinel?: RedisSentinelHandle;
  /** Node logs go to `logDir/node-N.log` (kept, appended across restarts) instead of temp dirs. */
  logDir?: string;
}

export interface ClusterHandle {
  /** nginx (or node-1 when nginx is off). */
  url: string;
  nodes: NodeHandle[];
  postgres: PostgresHandle;
  redisMode: RedisMode;
  /** The one redis-server (mode 'single'; reading it in another mode throws). */
  readonly redis: RedisHandle;
  redisCluster: RedisClusterHandle | null;
  redisSentinel: RedisSentinelHandle | null;
  /** The variables that point a node at this Redis. */
  redisEnv: Record<string, string>;
  /** The JWT_SECRET every node signs with (made for this cluster unless `env` names one). */
  jwtSecret: string;
  nginx: NginxHandle | null;
  /** Starts node-(N+1) (from `root`, another build, when given) and, with nginx, reloads it to include the new node. */
  addNode(env?: Record<string, string>, root?: string): Promise<NodeHandle>;
  /**
   * Starts node `index` (0-based) again, as the same NODE_ID on the same port with the same
   * environment (nginx needs no reload); a process still running is stopped first (SIGTERM,
   * SIGKILL after 10 s). The new handle replaces the old one in `nodes`.
   */
  restartNode(index: number): Promise<NodeHandle>;
  /** Stops nginx and every node, then PostgreSQL and Redis unless they were given. */
  stop(): Promise<void>;
}

/** Runs every stop, even when some fail, then reports the first failure. */
async function stopAll(stops: Array<() => Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(stops.map((s) => s()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<ClusterHandle> {
  const count = opts.nodes ?? 3;
  if (count < 1) throw new Error('startCluster: at least one node');
  const nodes: NodeHandle[] = [];
  let postgres = opts.postgres;
  const mode: RedisMode = opts.redisCluster ? 'cluster' : opts.redisSentinel ? 'sentinel' : opts.redis ? 'single' : (opts.redisMode ?? 'single');
  let redis = opts.redis ?? null;
  let redisCluster = opts.redisCluster ?? null;
  let redisSentinel = opts.redisSentinel ?? null;
  let nginx: NginxHandle | null = null;

  const stop = async () => {
    // Front to back: no new traffic, then the nodes drain, then their backing stores go.
    if (nginx) await nginx.stop();
    await stopAll(nodes.map((n) => () => n.stop()));
    await stopAll([
      async () => {
        if (postgres && !opts.postgres) await postgres.destroy();
      },
      async () => {
        if (redis && !opts.redis) await redis.destroy();
      },
      async () => {
        if (redisCluster && !opts.redisCluster) await redisCluster.destroy();
      },
      async () => {
        if (redisSentinel && !opts.redisSentinel) await redisSentinel.destroy();
      },
    ]);
  };

  let redisEnv: Record<string, string> = {};
  // A clustered node refuses to start without one, and every node must share it.
  const jwtSecret = opts.env?.JWT_SECRET ?? randomBytes(32).toString('hex');
  // Each node's own extra environment, so a restart brings back the same node.
  const nodeEnvs: Array<Record<string, string>> = [];
  // Each node's build (undefined: this checkout), so a restart brings back the same release.
  const nodeRoots: Array<string | undefined> = [];
  const launch = (index: number, env: Record<string, string> = {}, port?: number, root?: string) =>
    startNode({
      root,
      port,
      logFile: opts.logDir ? path.join(opts.logDir, `node-${index}.log`) : undefined,
      env: {
        NODE_ID: `node-${index}`,
        DATABASE_URL: postgres!.url,
        ...redisEnv,
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        // Tests and the benchmark want the answer at once; `npm run cluster` passes the product default.
        SPIRIT_ORACLE_DELAY_MS: '0',
        JWT_SECRET: jwtSecret,
        ...opts.env,
        ...env,
      },
    });

  try {
    const startRedisOfMode = async () => {
      if (mode === 'single') redis ??= await startRedis();
      if (mode === 'cluster') redisCluster ??= await startRedisCluster();
      if (mode === 'sentinel') redisSentinel ??= await startRedisSentinel();
    };
    [postgres] = await Promise.all([postgres ?? startPostgres(), startRedisOfMode()]);
    redisEnv =
      mode === 'cluster'
        ? { REDIS_CLUSTER_NODES: redisCluster!.nodesEnv }
        : mode === 'sentinel'
          ? { REDIS_SENTINELS: redisSentinel!.sentinelsEnv, REDIS_SENTINEL_NAME: redisSentinel!.name }
          : { REDIS_URL: redis!.url };
    // node-1 applies the migrations (under an advisory lock) before the others race for it.
    nodes.push(await launch(1));
    const rest = await Promise.allSettled(Array.from({ length: count - 1 }, (_, i) => launch(i + 2)));
    for (const r of rest) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (opts.nginx ?? true) nginx = await startNginx({ upstreams: nodes.map((n) => `127.0.0.1:${n.port}`) });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  const cluster: ClusterHandle = {
    url: nginx ? nginx.url : nodes[0].url,
    nodes,
    postgres,
    redisMode: mode,
    get redis(): RedisHandle {
      if (!redis) throw new Error(`this cluster runs on ${mode === 'cluster' ? 'a Redis Cluster' : 'Redis with Sentinel'}: see redisCluster / redisSentinel`);
      return redis;
    },
    redisCluster,
    redisSentinel,
    redisEnv,
    jwtSecret,
    nginx,
    addNode: async (env, root) => {
      const node = await launch(nodes.length + 1, env, undefined, root);
      nodeEnvs[nodes.length] = env ?? {};
      nodeRoots[nodes.length] = root;
      nodes.push(node);
      if (nginx) await nginx.reload(nodes.map((n) => `127.0.0.1:${n.port}`));
      return node;
    },
    restartNode: async (index) => {
      const old = nodes[index];
      if (!old) throw new Error(`restartNode: no node ${index}`);
      // Also removes the old temp log dir (unless logDir keeps the logs).
      await old.stop();
      const node = await launch(index + 1, nodeEnvs[index] ?? {}, old.port, nodeRoots[index]);
      nodes[index] = node;
      return node;
    },
    stop,
  };
  return cluster;
}
