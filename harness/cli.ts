/**
 * `npm run cluster -- --nodes 3`: a local Séance cluster without Docker (real PostgreSQL,
 * redis-server, N node processes and nginx on loopback ports), up until Ctrl-C/SIGTERM.
 * `--redis-cluster` puts the nodes on a 3-master Redis Cluster, `--redis-sentinel` on a
 * Sentinel-watched master and replica.
 */
import { parseArgs } from 'node:util';
import { startCluster, type ClusterHandle } from './cluster';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      'no-nginx': { type: 'boolean', default: false },
      'redis-cluster': { type: 'boolean', default: false },
      'redis-sentinel': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run cluster -- [--nodes N] [--no-nginx] [--redis-cluster | --redis-sentinel]\n');
    return;
  }
  if (values['redis-cluster'] && values['redis-sentinel']) throw new Error('--redis-cluster and --redis-sentinel exclude each other');
  const redisMode = values['redis-cluster'] ? 'cluster' : values['redis-sentinel'] ? 'sentinel' : 'single';
  const redisLabel = { single: 'Redis', cluster: 'a Redis Cluster (3 masters)', sentinel: 'Redis with Sentinel (1 master, 1 replica, 3 sentinels)' }[redisMode];
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`--nodes must be a positive integer, got ${values.nodes}`);

  process.stdout.write(`starting PostgreSQL, ${redisLabel}, ${nodes} node(s)${values['no-nginx'] ? '' : ' and nginx'}...\n`);
  // A local cluster is for trying things out: development mode and info logs, unless the shell says otherwise.
  const cluster = await startCluster({
    nodes,
    nginx: !values['no-nginx'],
    redisMode,
    // The oracle takes its product-default time here (an empty value counts as unset), unless the shell says otherwise.
    env: { NODE_ENV: process.env.NODE_ENV ?? 'development', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', SPIRIT_ORACLE_DELAY_MS: process.env.SPIRIT_ORACLE_DELAY_MS ?? '' },
  });

  const lines = [
    '',
    `  cluster    ${cluster.url}${cluster.nginx ? '   (nginx)' : ''}`,
    ...cluster.nodes.map((n) => `  ${n.nodeId.padEnd(10)} ${n.url}   pid ${n.pid}   log ${n.logFile}`),
    `  postgres   ${cluster.postgres.url}`,
    ...redisLines(cluster),
    '',
    '  Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n'));

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the cluster...\n`);
    cluster.stop().then(
      () => process.stdout.write('stopped\n'),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

function redisLines(cluster: ClusterHandle): string[] {
  if (cluster.redisMode === 'single') return [`  redis      ${cluster.redis.url}`];
  if (cluster.redisCluster) return cluster.redisCluster.shards.map((s, i) => `  redis #${i + 1}   redis://127.0.0.1:${s.port}   (cluster shard)   log ${s.logFile}`);
  const sentinel = cluster.redisSentinel!;
  return [
    ...sentinel.data.map((d, i) => `  redis ${i === 0 ? 'M' : 'R'}    redis://127.0.0.1:${d.port}   (${i === 0 ? 'first master' : 'replica'})   log ${d.logFile}`),
    `  sentinels  ${sentinel.sentinelsEnv}   (master name ${sentinel.name})`,
  ];
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
