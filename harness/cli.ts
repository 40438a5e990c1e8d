/**
 * `npm run cluster -- --nodes 3`: a local Séance cluster without Docker (real PostgreSQL,
 * redis-server, N node processes and nginx on loopback ports), up until Ctrl-C/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startCluster } from './cluster';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      'no-nginx': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: tsx test/harness/cli.ts [--nodes N] [--no-nginx]\n');
    return;
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`--nodes must be a positive integer, got ${values.nodes}`);

  process.stdout.write(`starting PostgreSQL, Redis, ${nodes} node(s)${values['no-nginx'] ? '' : ' and nginx'}...\n`);
  // A local cluster is for trying things out: development mode and info logs, unless the shell says otherwise.
  const cluster = await startCluster({
    nodes,
    nginx: !values['no-nginx'],
    // The oracle takes its product-default time here (an empty value counts as unset), unless the shell says otherwise.
    env: { NODE_ENV: process.env.NODE_ENV ?? 'development', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', SPIRIT_ORACLE_DELAY_MS: process.env.SPIRIT_ORACLE_DELAY_MS ?? '' },
  });

  const lines = [
    '',
    `  cluster    ${cluster.url}${cluster.nginx ? '   (nginx)' : ''}`,
    ...cluster.nodes.map((n) => `  ${n.nodeId.padEnd(10)} ${n.url}   pid ${n.pid}   log ${n.logFile}`),
    `  postgres   ${cluster.postgres.url}`,
    `  redis      ${cluster.redis.url}`,
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

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
