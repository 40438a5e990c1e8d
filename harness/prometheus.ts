/**
 * A real Prometheus (Debian's `prometheus` binary) scraping given targets on loopback, with
 * its own temp dir and free port, and a small client for its HTTP query API.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports';
import { makeTempDir, removeTempDir, spawnLogged, stopProcess, waitUntil } from './processes';

export interface PrometheusOptions {
  /** host:port of every node to scrape. */
  targets: string[];
  /** Sent as `Authorization: Bearer` (the nodes' METRICS_TOKEN). */
  bearerToken?: string;
  scrapeIntervalSeconds?: number;
}

export interface PrometheusSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusHandle {
  url: string;
  logFile: string;
  /** An instant query; resolves with the result vector. */
  query(expr: string): Promise<PrometheusSample[]>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

export function findPrometheus(): string | null {
  return ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => fs.existsSync(p)) ?? null;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusHandle> {
  const binary = findPrometheus();
  if (!binary) throw new Error('prometheus not found (apt-get install prometheus)');
  const port = await freePort();
  const dir = makeTempDir('seance-prometheus-');
  const logFile = path.join(dir, 'prometheus.log');
  const interval = `${opts.scrapeIntervalSeconds ?? 1}s`;
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    'scrape_configs:',
    '  - job_name: seance',
    ...(opts.bearerToken ? ['    authorization:', `      credentials: ${JSON.stringify(opts.bearerToken)}`] : []),
    '    static_configs:',
    `      - targets: ${JSON.stringify(opts.targets)}`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), config);
  const proc = spawnLogged(
    binary,
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { cwd: dir, logFile },
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(proc, 'SIGTERM', 10_000);
    await removeTempDir(dir);
  };
  try {
    await waitUntil(`prometheus on port ${port}`, async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => null))?.status === 200, {
      timeoutMs: READY_TIMEOUT_MS,
      proc,
      logFile,
    });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return {
    url,
    logFile,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { result: PrometheusSample[] } };
      if (body.status !== 'success') throw new Error(`prometheus query ${expr} failed: ${body.error}`);
      return body.data!.result;
    },
    stop,
  };
}
