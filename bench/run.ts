/**
 * `npm run bench`: Séance against the bare floor, in one run, on this machine.
 *
 * Starts PostgreSQL and redis-server once; for each topology starts the project cluster
 * (the shared cluster harness) and a floor cluster of bench/floor processes, each with its
 * own nginx rendered from the shipped nginx.conf; then runs every scenario R times,
 * alternating project and floor, and prints medians and project/floor ratios as a table
 * and as JSON (also written to bench/results/latest.json). See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../harness/processes';
import { startPostgres } from '../harness/postgres';
import { startRedis } from '../harness/redis';
import { startRedisCluster } from '../harness/redisCluster';
import { runIdle, type IdleResult } from './idle';
import { LoadGenerator, WARMUP_MS, createSessions, nowMs, planUsers, type LoadSummary, type TransportMix } from './load';
import { machineSeconds } from './lib/procstat';
import { median, ratio, round } from './lib/stats';
import { sweepChart } from './lib/sweepChart';
import { buildFloor, meter, startFloor, startProject, type Backing, type ResourceReading, type SystemHandle, type SystemKind } from './systems';

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

const SCENARIOS = ['sio', 'sio-session', 'ws', 'mixed', 'sio-direct', 'ws-direct', 'sio-1node', 'redis-cluster', 'sweep', 'idle'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
const DEFAULT_SCENARIOS: ScenarioName[] = ['sio', 'sio-session', 'ws', 'mixed', 'sio-direct', 'sio-1node', 'redis-cluster', 'sweep', 'idle'];

interface Options {
  quick: boolean;
  nodes: number;
  sessions: number;
  users: number;
  rate: number;
  messages: number;
  repeat: number;
  /** Runs of the headline scenario (`sio`), which the targets are judged on. */
  headlineRepeat: number;
  scenarios: ScenarioName[];
  workers: number;
  drainMs: number;
  sweepRates: number[];
  sweepSeconds: number;
  idleLevels: number[];
  retries: number;
  maxOtherLoad: number;
  maxSendLagMs: number;
  /** The floor stores each message durably before broadcasting it (bench/floor with DATABASE_URL). */
  committingFloor: boolean;
  out: string;
}

const USAGE = `usage: npm run bench -- [options]
  --quick               short run (~3 min): 1 repeat, 10 messages, 3 sweep steps, idle at 2,000
  --nodes N             nodes of the multi-node topology (default 3)
  --sessions S          sessions per run (default 50)
  --users U             users per session (default 6)
  --rate R              messages per second per user (default 2)
  --messages M          messages per user per run (default 20; quick 10)
  --repeat K            runs of each scenario per system (default 3; quick 1)
  --headline-repeat K   runs of the headline scenario sio per system (default: --repeat if
                        given, else 7; quick 1)
  --scenarios a,b       among ${SCENARIOS.join(', ')}
                        (default ${DEFAULT_SCENARIOS.join(',')}); redis-cluster runs the
                        project on a 3-shard Redis Cluster against the project on one Redis
  --workers W           load generator processes (default 1)
  --drain MS            wait for stragglers after the last send (default 5000)
  --sweep-rates a,b     per-user rates of the sweep (default 2,3,4,5,6,8,12,16; quick 2,4,8)
  --sweep-seconds S     sending time of one sweep step (default 5; quick 4)
  --idle a,b            idle connection levels (default 5000,10000; quick 2000)
  --max-other-load P    a run during which processes outside the bench used more than P%
                        of the machine is measured again (default 10)
  --max-send-lag MS     a run during which the generator fell more than MS behind its
                        schedule (p99) is measured again (default 100)
  --retries N           at most N such re-measurements per run (default 2)
  --committing-floor    the floor stores each message and its answer durably in PostgreSQL
                        before broadcasting them (what store-before-broadcast alone costs)
  --out FILE            JSON output (default bench/results/latest.json)`;

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      nodes: { type: 'string' },
      sessions: { type: 'string' },
      users: { type: 'string' },
      rate: { type: 'string' },
      messages: { type: 'string' },
      repeat: { type: 'string' },
      'headline-repeat': { type: 'string' },
      scenarios: { type: 'string' },
      workers: { type: 'string' },
      drain: { type: 'string' },
      'sweep-rates': { type: 'string' },
      'sweep-seconds': { type: 'string' },
      idle: { type: 'string' },
      retries: { type: 'string' },
      'max-other-load': { type: 'string' },
      'max-send-lag': { type: 'string' },
      'committing-floor': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const num = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number in ${min}..${max}, got ${raw}`);
    return v;
  };
  const list = (name: string, raw: string | undefined, fallback: number[], min: number, max: number) => (raw === undefined ? fallback : raw.split(',').map((x) => num(name, x.trim(), NaN, min, max)));
  const scenarios = (values.scenarios?.split(',').map((s) => s.trim()) ?? DEFAULT_SCENARIOS) as ScenarioName[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
  return {
    quick,
    nodes: num('nodes', values.nodes, 3, 1, 16),
    sessions: num('sessions', values.sessions, 50, 1, 2000),
    users: num('users', values.users, 6, 2, 12),
    rate: num('rate', values.rate, 2, 0.1, 100),
    messages: num('messages', values.messages, quick ? 10 : 20, 1, 1000),
    repeat: num('repeat', values.repeat, quick ? 1 : 3, 1, 20),
    // An explicit --repeat applies to the headline too, unless --headline-repeat says otherwise.
    headlineRepeat: num('headline-repeat', values['headline-repeat'] ?? values.repeat, quick ? 1 : 7, 1, 20),
    scenarios,
    workers: num('workers', values.workers, 1, 1, 8),
    drainMs: num('drain', values.drain, 5_000, 0, 60_000),
    sweepRates: list('sweep-rates', values['sweep-rates'], quick ? [2, 4, 8] : [2, 3, 4, 5, 6, 8, 12, 16], 0.1, 100).slice(0, 12),
    sweepSeconds: num('sweep-seconds', values['sweep-seconds'], quick ? 4 : 5, 1, 60),
    idleLevels: list('idle', values.idle, quick ? [2000] : [5000, 10000], 1, 18_000).slice(0, 4),
    retries: num('retries', values.retries, 2, 0, 5),
    maxOtherLoad: num('max-other-load', values['max-other-load'], 10, 0, 100) / 100,
    maxSendLagMs: num('max-send-lag', values['max-send-lag'], 100, 1, 60_000),
    committingFloor: values['committing-floor'] ?? false,
    out: values.out ?? path.join(PROJECT_ROOT, 'bench', 'results', 'latest.json'),
  };
}

// ---------------------------------------------------------------------------------------
// One measured run
// ---------------------------------------------------------------------------------------

interface RunRecord {
  scenario: string;
  system: SystemKind;
  repeat: number;
  rate: number;
  load: LoadSummary;
  resources: ResourceReading;
  wallS: number;
  otherLoad: number;
}

interface LoadSpec {
  transport: TransportMix;
  /** Socket.IO clients name their session in the handshake query. */
  sessionInQuery?: boolean;
  direct: boolean;
  sessions: number;
  users: number;
  rate: number;
  messages: number;
}

let userCursor = 0;

/** Next block of global user indices, so that every run uses fresh source addresses and user ids. */
function takeUsers(count: number): number {
  const first = userCursor;
  userCursor = (userCursor + count) % 60_000;
  return first;
}

interface Measured {
  load: LoadSummary;
  resources: ResourceReading;
  wallS: number;
  /**
   * CPU that processes outside this benchmark used during the run, as a share of the whole
   * machine (other test suites, builds...). Above a few percent the run is not comparable.
   */
  otherLoad: number;
  /** How many earlier attempts at this run were disturbed and thrown away. */
  remeasured?: number;
}

async function measure(system: SystemHandle, backing: Backing, spec: LoadSpec, opts: Options): Promise<Measured> {
  const started = nowMs();
  // CPU is counted from the sessions' creation to the end of the drain, joins included, as
  // the judge counts it: a join that costs more is part of what a delivery costs.
  const m = meter(system, backing);
  const self = process.cpuUsage();
  const ids = await createSessions(system.url, spec.sessions, Math.max(spec.users, 2));
  const targets = spec.direct ? system.nodes.map((n) => n.url) : [system.url];
  const users = planUsers(ids, spec.users, spec.transport, targets, takeUsers(spec.sessions * spec.users));
  const gen = new LoadGenerator(users, {
    workers: opts.workers,
    messages: spec.messages,
    rate: spec.rate,
    drainMs: opts.drainMs,
    joinTimeoutMs: 20_000,
    joinConcurrency: 32,
    sioTransports: ['websocket'],
    warmupMs: WARMUP_MS,
    sessionInQuery: spec.sessionInQuery ?? false,
  });
  try {
    await gen.join();
    const load = await gen.go();
    const resources = m.stop();
    const selfCpu = process.cpuUsage(self);
    const ours = totalCpu(resources) + load.generatorTotalCpuS + (selfCpu.user + selfCpu.system) / 1e6;
    const otherLoad = Math.max(0, resources.machineProcessS - ours) / (resources.wallS * os.cpus().length);
    return { load, resources, wallS: (nowMs() - started) / 1000, otherLoad };
  } finally {
    await gen.close();
  }
}

/** Every measured server-side process: nodes, their nginx, PostgreSQL, Redis. */
function totalCpu(r: ResourceReading): number {
  return r.nodeCpuS.reduce((a, b) => a + b, 0) + r.nginxCpuS + r.postgresCpuS + r.redisCpuS;
}

/** A machine below this share of its cores is quiet enough to start a run on. */
const QUIET_SHARE = 0.1;
const QUIET_WAIT_MS = 15_000;

/** Waits until the machine is quiet (at most QUIET_WAIT_MS): no run starts in the wake of the one before. */
async function settle(log: (line: string) => void): Promise<void> {
  const started = Date.now();
  for (;;) {
    const busy = await machineBusyShare(500);
    if (busy <= QUIET_SHARE) return;
    if (Date.now() - started > QUIET_WAIT_MS) {
      log(`    (the machine is still ${(busy * 100).toFixed(0)}% busy after ${QUIET_WAIT_MS / 1000} s: measuring anyway)`);
      return;
    }
  }
}

/**
 * Measures on a quiet machine, and measures again (up to opts.retries times) when the run was
 * disturbed: other processes loaded the machine, or the generator itself was held up past
 * opts.maxSendLagMs (the machine stalled; the offered load was not the one asked for).
 */
async function measureQuiet(system: SystemHandle, backing: Backing, spec: LoadSpec, opts: Options, log: (line: string) => void): Promise<Measured> {
  for (let attempt = 0; ; attempt++) {
    const settleStart = Date.now();
    await settle(log);
    if (Date.now() - settleStart > 1_000) log(`    (waited ${((Date.now() - settleStart) / 1000).toFixed(1)} s for the machine to settle)`);
    const r = { ...(await measure(system, backing, spec, opts)), remeasured: attempt };
    const lag = r.load.sendLag.p99;
    const disturbance =
      r.otherLoad > opts.maxOtherLoad
        ? `other processes used ${(r.otherLoad * 100).toFixed(0)}% of the machine`
        : lag > opts.maxSendLagMs
          ? `the generator was held up (send lag p99 ${lag.toFixed(0)} ms)`
          : null;
    if (!disturbance || attempt >= opts.retries) return r;
    log(`    (${disturbance} during this run: measuring again)`);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  }
}

function brief(r: Measured): string {
  const l = r.load;
  const cpu = r.resources.nodeCpuS.reduce((a, b) => a + b, 0);
  const flags = [
    l.lost && `lost ${l.lost}`,
    l.duplicated && `dup ${l.duplicated}`,
    l.outOfOrder && `ooo ${l.outOfOrder}`,
    l.joinFailed && `join-failed ${l.joinFailed}`,
    l.spiritLost && `spirit-lost ${l.spiritLost}`,
  ]
    .filter(Boolean)
    .join(' ');
  return (
    `p50 ${l.latency.p50.toFixed(1)} p99 ${l.latency.p99.toFixed(1)} max ${l.latency.max.toFixed(0)} ms, ` +
    `spirit p99 ${l.spiritLatency.p99.toFixed(1)} ms, ${l.deliveredPerS.toFixed(0)}/s, node CPU ${cpu.toFixed(2)} s, ` +
    `gen ${(l.generatorMaxCoreShare * 100).toFixed(0)}% core, other ${(r.otherLoad * 100).toFixed(0)}%${flags ? `  [${flags}]` : ''}`
  );
}

// ---------------------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------------------

interface SystemAggregate {
  runs: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  spiritP50: number;
  spiritP99: number;
  deliveredPerS: number;
  nodeCpuS: number;
  /** Node CPU ms per 1,000 message_received deliveries. */
  cpuMsPer1k: number;
  /** Nodes + nginx + PostgreSQL + Redis, ms per 1,000 deliveries. */
  totalCpuMsPer1k: number;
  maxNodeRssMb: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  spiritLost: number;
  spiritDuplicated: number;
  spiritBeforeQuestion: number;
  joinFailed: number;
  generatorMaxCoreShare: number;
  sendLagP99: number;
  /** Every measured process plus the generator, as a share of all cores over the run. */
  machineLoad: number;
  /** The worst share of the machine used by processes outside the benchmark in any run. */
  otherLoad: number;
}

function aggregate(records: RunRecord[]): SystemAggregate {
  const med = (f: (r: RunRecord) => number) => median(records.map(f));
  const sum = (f: (r: RunRecord) => number) => records.reduce((a, r) => a + f(r), 0);
  const nodeCpu = (r: RunRecord) => r.resources.nodeCpuS.reduce((a, b) => a + b, 0);
  const allCpu = (r: RunRecord) => totalCpu(r.resources);
  return {
    runs: records.length,
    p50: med((r) => r.load.latency.p50),
    p95: med((r) => r.load.latency.p95),
    p99: med((r) => r.load.latency.p99),
    max: med((r) => r.load.latency.max),
    spiritP50: med((r) => r.load.spiritLatency.p50),
    spiritP99: med((r) => r.load.spiritLatency.p99),
    deliveredPerS: med((r) => r.load.deliveredPerS),
    nodeCpuS: med(nodeCpu),
    cpuMsPer1k: med((r) => (nodeCpu(r) * 1e6) / Math.max(1, r.load.received)),
    totalCpuMsPer1k: med((r) => (allCpu(r) * 1e6) / Math.max(1, r.load.received)),
    maxNodeRssMb: med((r) => Math.max(...r.resources.nodeRssMb)),
    lost: sum((r) => r.load.lost),
    duplicated: sum((r) => r.load.duplicated),
    outOfOrder: sum((r) => r.load.outOfOrder),
    spiritLost: sum((r) => r.load.spiritLost),
    spiritDuplicated: sum((r) => r.load.spiritDuplicated),
    spiritBeforeQuestion: sum((r) => r.load.spiritBeforeQuestion),
    joinFailed: sum((r) => r.load.joinFailed),
    generatorMaxCoreShare: Math.max(...records.map((r) => r.load.generatorMaxCoreShare)),
    sendLagP99: med((r) => r.load.sendLag.p99),
    machineLoad: med((r) => (allCpu(r) + r.load.generatorCpuS) / (r.resources.wallS * os.cpus().length)),
    otherLoad: Math.max(...records.map((r) => r.otherLoad)),
  };
}

interface ScenarioSummary {
  scenario: string;
  description: string;
  project: SystemAggregate;
  floor: SystemAggregate;
  ratios: { p50: number; p99: number; spiritP99: number; cpuPerDelivery: number; totalCpuPerDelivery: number; rss: number };
}

interface SweepStep {
  rate: number;
  /** Messages sent per second by all users together. */
  totalRate: number;
  system: SystemKind;
  p99: number;
  p50: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  deliveredPerS: number;
  generatorMaxCoreShare: number;
}

interface SweepSummary {
  steps: SweepStep[];
  /** Per-user rate where p99 passes 50 ms (interpolated), with how it was found. */
  project: Crossing;
  floor: Crossing;
  ratio: number;
}

interface Crossing {
  rate: number;
  /** 'between': interpolated; 'below': already over at the first step; 'above': never over. */
  bound: 'between' | 'below' | 'above';
  lastPassing: number | null;
}

const P99_LIMIT_MS = 50;

/** The highest step a system held: p99 within the limit and nothing lost. */
function heldStep(steps: SweepStep[], system: SystemKind): SweepStep | null {
  const held = steps.filter((s) => s.system === system && s.p99 <= P99_LIMIT_MS && s.lost === 0);
  return held.sort((a, b) => b.rate - a.rate)[0] ?? null;
}

function crossing(steps: SweepStep[]): Crossing {
  const sorted = [...steps].sort((a, b) => a.rate - b.rate);
  let pass: SweepStep | null = null;
  for (const s of sorted) {
    if (s.p99 > P99_LIMIT_MS || s.lost > 0) {
      if (!pass) return { rate: s.rate, bound: 'below', lastPassing: null };
      // Linear interpolation of p99 between the last passing and the first failing step.
      const over = Math.min(s.p99, 10 * P99_LIMIT_MS);
      const f = over > pass.p99 ? (P99_LIMIT_MS - pass.p99) / (over - pass.p99) : 0;
      return { rate: pass.rate + f * (s.rate - pass.rate), bound: 'between', lastPassing: pass.rate };
    }
    pass = s;
  }
  return { rate: pass ? pass.rate : NaN, bound: 'above', lastPassing: pass ? pass.rate : null };
}

/** The project on a Redis Cluster ('cluster') or on one redis-server ('single'), same load. */
type RedisVariant = 'cluster' | 'single';

interface RedisClusterSummary {
  description: string;
  cluster: SystemAggregate;
  single: SystemAggregate;
  /** Cluster / one Redis, of the medians. */
  ratios: { p50: number; p99: number; cpuPerDelivery: number; totalCpuPerDelivery: number; redisCpuPerDelivery: number };
  /** p99 of each run, per variant, in run order (the spread behind the medians). */
  p99Runs: Record<RedisVariant, number[]>;
  /** Redis CPU ms per 1,000 deliveries (median of runs). */
  redisCpuMsPer1k: Record<RedisVariant, number>;
}

function summarizeRedisCluster(records: Array<RunRecord & { variant: RedisVariant }>): RedisClusterSummary {
  const of = (v: RedisVariant) => records.filter((r) => r.variant === v);
  const redisCpu = (v: RedisVariant) => median(of(v).map((r) => (r.resources.redisCpuS * 1e6) / Math.max(1, r.load.received)));
  const cluster = aggregate(of('cluster'));
  const single = aggregate(of('single'));
  const redisCpuMsPer1k = { cluster: redisCpu('cluster'), single: redisCpu('single') };
  return {
    description: 'the project on a 3-shard Redis Cluster against the project on one Redis, Socket.IO through nginx',
    cluster,
    single,
    ratios: {
      p50: ratio(cluster.p50, single.p50),
      p99: ratio(cluster.p99, single.p99),
      cpuPerDelivery: ratio(cluster.cpuMsPer1k, single.cpuMsPer1k),
      totalCpuPerDelivery: ratio(cluster.totalCpuMsPer1k, single.totalCpuMsPer1k),
      redisCpuPerDelivery: ratio(redisCpuMsPer1k.cluster, redisCpuMsPer1k.single),
    },
    p99Runs: { cluster: of('cluster').map((r) => r.load.latency.p99), single: of('single').map((r) => r.load.latency.p99) },
    redisCpuMsPer1k,
  };
}

// ---------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------

function printRedisCluster(r: RedisClusterSummary): string {
  const range = (xs: number[]) => (xs.length ? `${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}` : '-');
  const faults = (a: SystemAggregate) => `${a.lost}/${a.duplicated}/${a.outOfOrder}`;
  return [
    'Redis Cluster (3 shards) vs one Redis: the project on both (median of runs; C = Redis Cluster, S = one Redis, x = C/S)\n',
    table(
      ['p50 C/S ms', 'p99 C/S ms', 'p99 x', 'p99 range C; S ms', 'delivered/s C/S', 'node CPU C/S ms', 'x', 'Redis CPU C/S ms', 'all CPU C/S ms', 'x', 'lost/dup/ooo C; S'],
      [
        [
          `${fmt(r.cluster.p50)} / ${fmt(r.single.p50)}`,
          `${fmt(r.cluster.p99)} / ${fmt(r.single.p99)}`,
          fmt(r.ratios.p99, 2),
          `${range(r.p99Runs.cluster)}; ${range(r.p99Runs.single)}`,
          `${fmt(r.cluster.deliveredPerS, 0)} / ${fmt(r.single.deliveredPerS, 0)}`,
          `${fmt(r.cluster.cpuMsPer1k, 0)} / ${fmt(r.single.cpuMsPer1k, 0)}`,
          fmt(r.ratios.cpuPerDelivery, 2),
          `${fmt(r.redisCpuMsPer1k.cluster, 0)} / ${fmt(r.redisCpuMsPer1k.single, 0)}`,
          `${fmt(r.cluster.totalCpuMsPer1k, 0)} / ${fmt(r.single.totalCpuMsPer1k, 0)}`,
          fmt(r.ratios.totalCpuPerDelivery, 2),
          `${faults(r.cluster)}; ${faults(r.single)}`,
        ],
      ],
    ),
    '\n  CPU columns: ms per 1,000 message_received deliveries (node processes; Redis: every shard; all: nodes, nginx, PostgreSQL, Redis).',
  ].join('\n');
}

function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function printReport(summaries: ScenarioSummary[], sweep: SweepSummary | null, idle: IdleResult[]): string {
  const out: string[] = [];
  if (summaries.length > 0) {
    out.push('Latency and throughput (median of runs; P = project, F = floor, x = P/F)\n');
    out.push(
      table(
        ['scenario', 'p50 P/F ms', 'p99 P/F ms', 'p99 x', 'max P/F ms', 'spirit p99 P/F ms', 'delivered/s P/F'],
        summaries.map((s) => [
          s.scenario,
          `${fmt(s.project.p50)} / ${fmt(s.floor.p50)}`,
          `${fmt(s.project.p99)} / ${fmt(s.floor.p99)}`,
          fmt(s.ratios.p99, 2),
          `${fmt(s.project.max, 0)} / ${fmt(s.floor.max, 0)}`,
          `${fmt(s.project.spiritP99)} / ${fmt(s.floor.spiritP99)}`,
          `${fmt(s.project.deliveredPerS, 0)} / ${fmt(s.floor.deliveredPerS, 0)}`,
        ]),
      ),
    );
    out.push('\nCost and correctness (CPU per 1,000 message_received deliveries; lost/dup/ooo summed over runs)\n');
    out.push(
      table(
        ['scenario', 'node CPU P/F ms', 'x', 'all CPU P/F ms', 'x', 'RSS/node P/F MB', 'lost/dup/ooo P', 'lost/dup/ooo F', 'machine P/F', 'gen core', 'other'],
        summaries.map((s) => [
          s.scenario,
          `${fmt(s.project.cpuMsPer1k, 0)} / ${fmt(s.floor.cpuMsPer1k, 0)}`,
          fmt(s.ratios.cpuPerDelivery, 2),
          `${fmt(s.project.totalCpuMsPer1k, 0)} / ${fmt(s.floor.totalCpuMsPer1k, 0)}`,
          fmt(s.ratios.totalCpuPerDelivery, 2),
          `${fmt(s.project.maxNodeRssMb, 0)} / ${fmt(s.floor.maxNodeRssMb, 0)}`,
          `${s.project.lost}/${s.project.duplicated}/${s.project.outOfOrder}`,
          `${s.floor.lost}/${s.floor.duplicated}/${s.floor.outOfOrder}`,
          `${fmt(s.project.machineLoad * 100, 0)}% / ${fmt(s.floor.machineLoad * 100, 0)}%`,
          `${fmt(Math.max(s.project.generatorMaxCoreShare, s.floor.generatorMaxCoreShare) * 100, 0)}%`,
          `${fmt(Math.max(s.project.otherLoad, s.floor.otherLoad) * 100, 0)}%`,
        ]),
      ),
    );
  }
  if (sweep) {
    out.push(`\nRate sweep (Socket.IO through nginx, routed by session; median over the repeats of the p99 of message_received; limit ${P99_LIMIT_MS} ms)\n`);
    const rates = [...new Set(sweep.steps.map((s) => s.rate))].sort((a, b) => a - b);
    const at = (system: SystemKind, rate: number) => sweep.steps.find((s) => s.system === system && s.rate === rate);
    const cell = (s: SweepStep | undefined) => (s ? `${fmt(s.p99)}${s.lost ? ` (lost ${s.lost})` : ''}` : '(stopped)');
    out.push(
      table(
        ['msg/s per user', 'msg/s total', 'project p99 ms', 'project deliveries/s', 'floor p99 ms', 'floor deliveries/s'],
        rates.map((r) => [
          fmt(r, 1),
          fmt((at('project', r) ?? at('floor', r))!.totalRate, 0),
          cell(at('project', r)),
          fmt(at('project', r)?.deliveredPerS ?? NaN, 0),
          cell(at('floor', r)),
          fmt(at('floor', r)?.deliveredPerS ?? NaN, 0),
        ]),
      ),
    );
    const desc = (c: Crossing) =>
      c.bound === 'between' ? `${fmt(c.rate, 2)} msg/s per user` : c.bound === 'below' ? `< ${fmt(c.rate, 2)} (over at the first step)` : `> ${fmt(c.rate, 2)} (never over)`;
    out.push(`\n  p99 passes ${P99_LIMIT_MS} ms at: project ${desc(sweep.project)}, floor ${desc(sweep.floor)}; ratio ${fmt(sweep.ratio, 2)}`);
    const held = (system: SystemKind) => {
      const step = heldStep(sweep.steps, system);
      return step ? `${fmt(step.rate, 1)} msg/s per user, ${fmt(step.deliveredPerS, 0)} deliveries/s` : 'no step';
    };
    out.push(`  highest rate held (p99 <= ${P99_LIMIT_MS} ms, nothing lost): project ${held('project')}; floor ${held('floor')}`);
  }
  if (idle.length > 0) {
    out.push('\nIdle connections on one node (direct, no nginx)\n');
    const rows: string[][] = [];
    const transports = [...new Set(idle.map((r) => r.transport))];
    for (const t of transports) {
      const p = idle.find((r) => r.transport === t && r.system === 'project');
      const f = idle.find((r) => r.transport === t && r.system === 'floor');
      const levels = [...new Set([...(p?.levels ?? []), ...(f?.levels ?? [])].map((l) => l.target))].sort((a, b) => a - b);
      for (const n of levels) {
        const pl = p?.levels.find((l) => l.target === n);
        const fl = f?.levels.find((l) => l.target === n);
        rows.push([
          `${t === 'sio' ? 'socket.io' : 'raw ws'} ${n}`,
          `${pl?.joined ?? '-'} / ${fl?.joined ?? '-'}`,
          `${fmt(pl?.rssMb ?? NaN, 0)} / ${fmt(fl?.rssMb ?? NaN, 0)}`,
          `${fmt(pl?.rssPerConnKb ?? NaN)} / ${fmt(fl?.rssPerConnKb ?? NaN)}`,
          fmt(ratio(pl?.rssPerConnKb ?? NaN, fl?.rssPerConnKb ?? NaN), 2),
          `${fmt(pl?.marginalKbPerConn ?? NaN)} / ${fmt(fl?.marginalKbPerConn ?? NaN)}`,
          `${fmt(pl?.joinCpuMsPerConn ?? NaN, 2)} / ${fmt(fl?.joinCpuMsPerConn ?? NaN, 2)}`,
        ]);
      }
    }
    out.push(table(['connections', 'held P/F', 'RSS P/F MB', 'RSS/conn P/F KB', 'x', 'step KB/conn P/F', 'join CPU P/F ms/conn'], rows));
  }
  return out.join('\n');
}

interface Target {
  target: string;
  measured: string;
  ok: boolean | null;
}

function targets(summaries: ScenarioSummary[], sweep: SweepSummary | null, idle: IdleResult[]): Target[] {
  const out: Target[] = [];
  const head = summaries.find((s) => s.scenario === 'sio');
  if (head) {
    const clean = (a: SystemAggregate) => a.lost + a.duplicated + a.outOfOrder + a.spiritLost + a.spiritDuplicated + a.spiritBeforeQuestion;
    out.push({ target: 'headline: zero lost/duplicated/out-of-order', measured: `project ${clean(head.project)}, floor ${clean(head.floor)}`, ok: clean(head.project) === 0 });
    out.push({ target: 'headline: p99 message_received <= 1.2x floor', measured: `${fmt(head.ratios.p99, 2)}x (${fmt(head.project.p99)} vs ${fmt(head.floor.p99)} ms)`, ok: head.ratios.p99 <= 1.2 });
    out.push({ target: 'headline: p50 message_received <= 1.5x floor', measured: `${fmt(head.ratios.p50, 2)}x (${fmt(head.project.p50)} vs ${fmt(head.floor.p50)} ms)`, ok: head.ratios.p50 <= 1.5 });
    out.push({
      target: 'headline: CPU per delivery of all processes incl. PostgreSQL <= 1.3x floor',
      measured: `${fmt(head.ratios.totalCpuPerDelivery, 2)}x (nodes alone: ${fmt(head.ratios.cpuPerDelivery, 2)}x)`,
      ok: head.ratios.totalCpuPerDelivery <= 1.3,
    });
  }
  if (sweep) {
    const ok = sweep.floor.bound === 'above' ? null : sweep.ratio >= 0.85;
    out.push({ target: 'rate where p99 passes 50 ms >= 0.85x floor', measured: `${fmt(sweep.ratio, 2)}x`, ok });
  }
  const sio = idle.find((r) => r.system === 'project' && r.transport === 'sio');
  const sioTop = sio?.levels.at(-1);
  if (sioTop) {
    out.push({
      target: `idle: ${sioTop.target} Socket.IO connections on one node <= 30 KB each`,
      measured: `${sioTop.joined} held, ${fmt(sioTop.rssPerConnKb)} KB each`,
      ok: sioTop.joined >= sioTop.target && sioTop.rssPerConnKb <= 30,
    });
    const ws = idle.find((r) => r.system === 'project' && r.transport === 'ws')?.levels.find((l) => l.target === sioTop.target);
    if (ws) out.push({ target: 'idle: raw ws cheaper than Socket.IO', measured: `${fmt(ws.rssPerConnKb)} vs ${fmt(sioTop.rssPerConnKb)} KB`, ok: ws.rssPerConnKb < sioTop.rssPerConnKb });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

const DESCRIPTIONS: Record<string, (o: Options) => string> = {
  sio: (o) => `Socket.IO, ${o.nodes} nodes through nginx`,
  'sio-session': (o) => `Socket.IO, ${o.nodes} nodes through nginx; clients name their session in the handshake query, so nginx puts a session on one node`,
  ws: (o) => `raw ws, ${o.nodes} nodes through nginx`,
  mixed: (o) => `half Socket.IO, half raw ws in every session, ${o.nodes} nodes through nginx`,
  'sio-direct': (o) => `Socket.IO straight to ${o.nodes} nodes (round-robin, no nginx)`,
  'ws-direct': (o) => `raw ws straight to ${o.nodes} nodes (round-robin, no nginx)`,
  'sio-1node': () => 'Socket.IO, 1 node through nginx',
  'redis-cluster': (o) => `the project on a 3-shard Redis Cluster against the project on one Redis (Socket.IO, ${o.nodes} nodes through nginx)`,
};

async function main(): Promise<void> {
  const opts = parseOptions();
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const t0 = nowMs();
  const elapsed = () => `${((nowMs() - t0) / 1000).toFixed(0)} s`;
  log(
    `Séance bench: ${opts.sessions} sessions x ${opts.users} users, ${opts.rate} msg/s each, ${opts.messages} messages, ` +
      `${opts.repeat} repeat(s) (headline ${opts.headlineRepeat}), scenarios ${opts.scenarios.join(',')}`,
  );
  buildFloor();
  const codeAtStart = gitState();
  const busy = await machineBusyShare(2_000);
  if (busy > opts.maxOtherLoad) {
    log(`warning: before starting, other processes use ${(busy * 100).toFixed(0)}% of this machine; runs they disturb are measured again, and the figures may still be noisy`);
  }

  const [postgres, redis] = await Promise.all([startPostgres({ durable: true }), startRedis()]);
  const backing: Backing = { postgres, redis };
  const records: RunRecord[] = [];
  const redisRecords: Array<RunRecord & { variant: RedisVariant }> = [];
  const sweepSteps: SweepStep[] = [];
  const idle: IdleResult[] = [];
  const running: SystemHandle[] = [];

  const built = distFingerprint();
  const codeChanges: string[] = [];
  const start = async (kind: SystemKind, nodes: number, nginx: boolean, on: Backing = backing) => {
    // Others may rebuild dist/ while a long run goes on: a cluster started after that runs other code.
    if (kind === 'project' && distFingerprint() !== built && codeChanges.length === 0) {
      codeChanges.push(`dist/server changed at ${elapsed()} into the run`);
      log(`warning: dist/server was rebuilt during this run (at ${elapsed()}); project clusters started from now on run different code than those before`);
    }
    const floorEnv: Record<string, string> = opts.committingFloor ? { DATABASE_URL: on.postgres.url } : {};
    const sys = await (kind === 'project' ? startProject(on, { nodes, nginx }) : startFloor(on, { nodes, nginx, env: floorEnv }));
    running.push(sys);
    return sys;
  };
  const stop = async (sys: SystemHandle) => {
    running.splice(running.indexOf(sys), 1);
    await sys.stop();
  };

  /** Warms the JIT, connection pools and prepared paths, so no measured run pays for them. */
  const warm = async (sys: SystemHandle, on: Backing = backing) => {
    for (const transport of ['sio', 'ws'] as const) {
      await measure(sys, on, { transport, direct: false, sessions: Math.min(opts.sessions, 30), users: opts.users, rate: 4, messages: 8 }, opts);
    }
  };

  const runScenario = async (name: ScenarioName, systems: Record<SystemKind, SystemHandle>) => {
    const spec: LoadSpec = {
      transport: name.startsWith('ws') ? 'ws' : name === 'mixed' ? 'mixed' : 'sio',
      direct: name.endsWith('-direct'),
      sessions: opts.sessions,
      users: opts.users,
      rate: opts.rate,
      messages: opts.messages,
    };
    // The headline runs more often: on a shared machine one run's p99 is mostly the longest
    // stall it met, and the targets are judged on this scenario's medians.
    const repeats = name === 'sio' ? opts.headlineRepeat : opts.repeat;
    for (let rep = 0; rep < repeats; rep++) {
      // Alternate who goes first, so a slow drift of the machine does not favour one side.
      const order: SystemKind[] = rep % 2 === 0 ? ['project', 'floor'] : ['floor', 'project'];
      for (const kind of order) {
        // Every system gets the same routing: the floors' nginx hashes on ?session_id= too.
        const r = await measureQuiet(systems[kind], backing, { ...spec, sessionInQuery: name === 'sio-session' }, opts, log);
        records.push({ scenario: name, system: kind, repeat: rep, rate: spec.rate, ...r });
        log(`  [${elapsed()}] ${name} #${rep + 1} ${kind.padEnd(7)} ${brief(r)}`);
      }
    }
  };

  /**
   * Each rate is measured `--repeat` times per system, alternating who goes first like the
   * scenarios, and judged on the median p99: one stall of the machine in a 5 s step would
   * otherwise end a system's sweep early.
   */
  const runSweep = async (systems: Record<SystemKind, SystemHandle>) => {
    const over: Record<SystemKind, boolean> = { project: false, floor: false };
    for (const rate of [...opts.sweepRates].sort((a, b) => a - b)) {
      // Routed by session, as the shipped nginx.conf and /play do, for every system alike.
      const spec: LoadSpec = { transport: 'sio', sessionInQuery: true, direct: false, sessions: opts.sessions, users: opts.users, rate, messages: Math.max(4, Math.round(rate * opts.sweepSeconds)) };
      const runs: Record<SystemKind, Measured[]> = { project: [], floor: [] };
      for (let rep = 0; rep < opts.repeat; rep++) {
        const order: SystemKind[] = rep % 2 === 0 ? ['project', 'floor'] : ['floor', 'project'];
        for (const kind of order) {
          if (over[kind]) continue;
          const r = await measureQuiet(systems[kind], backing, spec, opts, log);
          runs[kind].push(r);
          records.push({ scenario: 'sweep', system: kind, repeat: rep, rate, ...r });
          log(`  [${elapsed()}] sweep ${rate} msg/s #${rep + 1} ${kind.padEnd(7)} ${brief(r)}`);
        }
      }
      for (const kind of ['project', 'floor'] as SystemKind[]) {
        if (runs[kind].length === 0) continue;
        const loads = runs[kind].map((r) => r.load);
        const total = (f: (l: LoadSummary) => number) => loads.reduce((a, l) => a + f(l), 0);
        const step: SweepStep = {
          rate,
          totalRate: rate * opts.sessions * opts.users,
          system: kind,
          p50: median(loads.map((l) => l.latency.p50)),
          p99: median(loads.map((l) => l.latency.p99)),
          lost: total((l) => l.lost),
          duplicated: total((l) => l.duplicated),
          outOfOrder: total((l) => l.outOfOrder),
          deliveredPerS: median(loads.map((l) => l.deliveredPerS)),
          generatorMaxCoreShare: Math.max(...loads.map((l) => l.generatorMaxCoreShare)),
        };
        sweepSteps.push(step);
        if (step.p99 > P99_LIMIT_MS || step.lost > 0) over[kind] = true;
      }
      if (over.project && over.floor) break;
    }
  };

  try {
    const multi = opts.scenarios.filter((s) => ['sio', 'sio-session', 'ws', 'mixed', 'sio-direct', 'ws-direct', 'sweep'].includes(s));
    if (multi.length > 0) {
      log(`[${elapsed()}] starting ${opts.nodes}-node project and floor clusters`);
      const systems = { project: await start('project', opts.nodes, true), floor: await start('floor', opts.nodes, true) };
      log(`[${elapsed()}] warming up`);
      await warm(systems.project);
      await warm(systems.floor);
      for (const name of multi) {
        log(`[${elapsed()}] ${name}: ${name === 'sweep' ? 'rate sweep, Socket.IO through nginx' : DESCRIPTIONS[name](opts)}`);
        if (name === 'sweep') await runSweep(systems);
        else await runScenario(name, systems);
      }
      await stop(systems.project);
      await stop(systems.floor);
    }
    if (opts.scenarios.includes('redis-cluster')) {
      log(`[${elapsed()}] redis-cluster: ${DESCRIPTIONS['redis-cluster'](opts)}`);
      const redisCluster = await startRedisCluster();
      try {
        const onCluster: Backing = { ...backing, redisCluster };
        const variants: Record<RedisVariant, { sys: SystemHandle; backing: Backing }> = {
          cluster: { sys: await start('project', opts.nodes, true, onCluster), backing: onCluster },
          single: { sys: await start('project', opts.nodes, true), backing },
        };
        for (const v of Object.values(variants)) await warm(v.sys, v.backing);
        const spec: LoadSpec = { transport: 'sio', direct: false, sessions: opts.sessions, users: opts.users, rate: opts.rate, messages: opts.messages };
        for (let rep = 0; rep < opts.repeat; rep++) {
          const order: RedisVariant[] = rep % 2 === 0 ? ['cluster', 'single'] : ['single', 'cluster'];
          for (const variant of order) {
            const r = await measureQuiet(variants[variant].sys, variants[variant].backing, spec, opts, log);
            redisRecords.push({ scenario: 'redis-cluster', system: 'project', variant, repeat: rep, rate: spec.rate, ...r });
            log(`  [${elapsed()}] redis-cluster #${rep + 1} ${(variant === 'cluster' ? 'cluster' : 'one').padEnd(7)} ${brief(r)}`);
          }
        }
        await stop(variants.cluster.sys);
        await stop(variants.single.sys);
      } finally {
        await redisCluster.destroy();
      }
    }
    if (opts.scenarios.includes('sio-1node')) {
      log(`[${elapsed()}] sio-1node: ${DESCRIPTIONS['sio-1node'](opts)}`);
      const systems = { project: await start('project', 1, true), floor: await start('floor', 1, true) };
      await warm(systems.project);
      await warm(systems.floor);
      await runScenario('sio-1node', systems);
      await stop(systems.project);
      await stop(systems.floor);
    }
    if (opts.scenarios.includes('idle')) {
      const limit = fdLimitNumber();
      const fit = opts.idleLevels.filter((n) => n + 1_000 <= limit);
      if (fit.length < opts.idleLevels.length) {
        log(`  idle: skipping ${opts.idleLevels.filter((n) => !fit.includes(n)).join(', ')}: ulimit -n is ${limit}; raise it (ulimit -n 65536) to measure them`);
      }
      opts.idleLevels = fit;
    }
    if (opts.scenarios.includes('idle') && opts.idleLevels.length > 0) {
      log(`[${elapsed()}] idle: ${opts.idleLevels.join(', ')} connections on one fresh node (ulimit -n ${fdLimit()})`);
      for (const transport of ['sio', 'ws'] as const) {
        for (const kind of ['project', 'floor'] as SystemKind[]) {
          const sys = await start(kind, 1, false);
          try {
            idle.push(await runIdle(sys, transport, opts.idleLevels, { workers: opts.workers, log }));
          } finally {
            await stop(sys);
          }
        }
      }
    }
  } finally {
    await Promise.allSettled(running.map((s) => s.stop()));
    await Promise.allSettled([postgres.destroy(), redis.destroy()]);
  }

  // Summaries
  const summaries: ScenarioSummary[] = [];
  for (const name of opts.scenarios) {
    if (name === 'sweep' || name === 'idle') continue;
    const p = records.filter((r) => r.scenario === name && r.system === 'project');
    const f = records.filter((r) => r.scenario === name && r.system === 'floor');
    if (p.length === 0 || f.length === 0) continue;
    const project = aggregate(p);
    const floor = aggregate(f);
    summaries.push({
      scenario: name,
      description: DESCRIPTIONS[name](opts),
      project,
      floor,
      ratios: {
        p50: ratio(project.p50, floor.p50),
        p99: ratio(project.p99, floor.p99),
        spiritP99: ratio(project.spiritP99, floor.spiritP99),
        cpuPerDelivery: ratio(project.cpuMsPer1k, floor.cpuMsPer1k),
        totalCpuPerDelivery: ratio(project.totalCpuMsPer1k, floor.totalCpuMsPer1k),
        rss: ratio(project.maxNodeRssMb, floor.maxNodeRssMb),
      },
    });
  }
  let sweep: SweepSummary | null = null;
  if (sweepSteps.length > 0) {
    const p = crossing(sweepSteps.filter((s) => s.system === 'project'));
    const f = crossing(sweepSteps.filter((s) => s.system === 'floor'));
    sweep = { steps: sweepSteps, project: p, floor: f, ratio: ratio(p.rate, f.rate) };
  }

  const redisCluster = redisRecords.length > 0 ? summarizeRedisCluster(redisRecords) : null;

  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
  };
  const report = printReport(summaries, sweep, idle) + (redisCluster ? `\n\n${printRedisCluster(redisCluster)}` : '');
  const goals = targets(summaries, sweep, idle);
  const describe = (c: { commit: string; changed: string[] }) => `${c.commit}${c.changed.length ? ` + uncommitted changes in ${c.changed.map((l) => l.slice(3)).join(', ')}` : ''}`;
  log(
    `\n=== Séance vs ${opts.committingFloor ? 'committing floor (F stores each message durably before broadcasting it)' : 'floor'} (${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGb} GB, ${machine.node}; ${elapsed()}) ===`,
  );
  log(`    code: ${describe(codeAtStart)}${codeChanges.length ? `; WARNING: ${codeChanges.join('; ')} (now ${describe(gitState())})` : ''}\n`);
  log(report);
  log('\nTargets ("The tail": judged on the reference instrument; this is the in-repo estimate)\n');
  log(
    table(
      ['target', 'measured', 'met'],
      goals.map((g) => [g.target, g.measured, g.ok === null ? 'n/a' : g.ok ? 'yes' : 'NO']),
    ),
  );

  const json = {
    generatedAt: new Date().toISOString(),
    machine,
    git: { ...gitState(), atStart: codeAtStart, distChangedDuringRun: codeChanges },
    options: { ...opts, out: undefined },
    durationS: round((nowMs() - t0) / 1000, 1),
    scenarios: summaries.map((s) => roundDeep(s)),
    sweep: sweep && roundDeep(sweep),
    redisCluster: redisCluster && roundDeep(redisCluster),
    idle: idle.map((r) => roundDeep(r)),
    targets: goals,
    runs: [...records, ...redisRecords].map((r) => roundDeep({ ...r, load: r.load })),
  };
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  log(`\nJSON written to ${path.relative(process.cwd(), opts.out)}`);
  if (sweep) {
    const chart = opts.out.replace(/\.json$/, '') + '-sweep.svg';
    const floorName = opts.committingFloor ? 'committing floor' : 'bare floor';
    const series = (['project', 'floor'] as SystemKind[]).map((system) => ({ name: system === 'project' ? 'Séance' : floorName, points: sweep.steps.filter((s) => s.system === system) }));
    fs.writeFileSync(chart, sweepChart(series, { title: `Rate sweep: ${opts.nodes} nodes, ${opts.sessions} sessions x ${opts.users} users, routed by session`, limitMs: P99_LIMIT_MS }));
    log(`Sweep chart written to ${path.relative(process.cwd(), chart)}`);
  }
  log(
    JSON.stringify({
      scenarios: json.scenarios.map((s) => ({ scenario: s.scenario, ratios: s.ratios })),
      redisCluster: redisCluster && round(redisCluster.ratios.p99, 3),
      sweep: sweep && { project: sweep.project, floor: sweep.floor, ratio: round(sweep.ratio) },
      targets: goals,
    }),
  );
}

/** Names, sizes and times of the compiled server files: changes when anyone rebuilds. */
function distFingerprint(): string {
  const root = path.join(PROJECT_ROOT, 'dist', 'server');
  const parts: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.js')) {
        const st = fs.statSync(file);
        parts.push(`${file}:${st.size}:${st.mtimeMs}`);
      }
    }
  };
  walk(root);
  return parts.sort().join('\n');
}

/** Which code was measured: the commit, and the files under server/ that differ from it. */
function gitState(): { commit: string; changed: string[] } {
  const git = (args: string[]) => execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git(['rev-parse', '--short', 'HEAD']), changed: git(['status', '--porcelain', '--', 'server', 'models', 'config', 'migrations']).split('\n').filter(Boolean) };
  } catch {
    return { commit: 'unknown', changed: [] };
  }
}

/** The share of the machine's cores busy in processes over a short interval. */
async function machineBusyShare(ms: number): Promise<number> {
  const before = machineSeconds().process;
  await new Promise((resolve) => setTimeout(resolve, ms));
  return (machineSeconds().process - before) / ((ms / 1000) * os.cpus().length);
}

function roundDeep<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' ? round(v, 3) : v))) as T;
}

/** The soft open-files limit the node processes inherit. */
function fdLimitNumber(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

function fdLimit(): string {
  try {
    const text = fs.readFileSync('/proc/self/limits', 'utf8');
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(text);
    return m ? `${m[1]} (hard ${m[2]})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
