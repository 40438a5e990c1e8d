/** Reads a node's /metrics and parses the Prometheus text format into samples. */
import { http } from './clients';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** GET /metrics (with the token when given); throws unless it answers 200. */
export async function scrape(baseUrl: string, token?: string): Promise<Sample[]> {
  const reply = await http(baseUrl, 'GET', '/metrics', token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (reply.status !== 200) throw new Error(`/metrics answered ${reply.status}: ${reply.text.slice(0, 200)}`);
  return parseMetrics(reply.text);
}

/** The value of one series (labels must match exactly those given), or undefined. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const keys = Object.keys(labels);
  return samples.find((s) => s.name === name && keys.every((k) => s.labels[k] === labels[k]))?.value;
}

/** The metric names every node promises (docs/operations.md: Metrics). */
export const CONTRACT_SERIES = [
  'seance_connections',
  'seance_sessions_active',
  'seance_messages_total',
  'seance_deliveries_total',
  'seance_delivery_seconds_bucket',
  'seance_spirit_seconds_bucket',
  'seance_spirit_failures_total',
  'seance_rate_limited_total',
  'seance_gap_repairs_total',
  'seance_redis_up',
  'seance_database_up',
  // Node's default process metrics, a few by name.
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
];
