/**
 * Where the time goes: runs the headline load (Socket.IO, N nodes through nginx) against the
 * project and against the floor with the V8 sampling profiler on every node (started and
 * stopped by SIGUSR2 around the measured window, see lib/profiler-preload.ts), then
 * summarises: self time by function and by area (our code, each package, Node internals,
 * GC), and inclusive time of our own functions.
 *
 *   npm run build && tsx bench/profile.ts [--nodes 3 --sessions 50 --users 6 --rate 2 --messages 30 --top 25]
 *
 * Writes bench/results/profile.json and keeps the .cpuprofile files (open them in Chrome
 * DevTools or speedscope) under bench/results/profiles/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../harness/processes';
import { startPostgres } from '../harness/postgres';
import { startRedis } from '../harness/redis';
import { cpuDelta, sampleCpu } from './lib/procstat';
import { LoadGenerator, createSessions, nowMs, planUsers } from './load';
import { PROFILER_PRELOAD, buildFloor, startFloor, startProject, type Backing, type SystemHandle, type SystemKind } from './systems';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Hotspot {
  name: string;
  where: string;
  area: string;
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  system: SystemKind;
  files: string[];
  windowS: number;
  /** Samples taken in the window, idle ones included. */
  samples: number;
  /** CPU time the nodes used in the window (from /proc), ms; the shares below divide it. */
  busyMs: number;
  areas: Array<{ area: string; selfMs: number; pct: number }>;
  top: Hotspot[];
  /** Inclusive time of functions in our own code (server/ or bench/floor), busiest first. */
  ownInclusive: Array<{ name: string; where: string; totalMs: number; pct: number }>;
}

const PROFILE_ROOT = path.join(PROJECT_ROOT, 'bench', 'results', 'profiles');

/** Which part of the stack a frame belongs to. */
function areaOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native ${functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/').slice(0, 2).join('/') : url.slice(5)}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.includes('/dist/server/') || url.includes('/bench/.build/floor/')) return 'OWN CODE';
  if (url.includes('/dist/')) return `OWN ${url.slice(url.indexOf('/dist/') + 6).split('/')[0]}`;
  return url;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 6);
  const bench = url.indexOf('/bench/');
  if (bench >= 0) return url.slice(bench + 1);
  return url.replace(/^file:\/\//, '');
}

/** Aggregates the samples of several profiles (one per node). */
export function summarise(system: SystemKind, files: string[], windowS: number, cpuS: number, topN: number): ProfileSummary {
  const self = new Map<string, { name: string; where: string; area: string; n: number }>();
  const inclusive = new Map<string, { name: string; where: string; n: number }>();
  const areas = new Map<string, number>();
  let sampled = 0;
  let idle = 0;
  for (const file of files) {
    const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map<number, CpuProfileNode>();
    const parent = new Map<number, number>();
    for (const n of profile.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    const keyOf = (n: CpuProfileNode) => `${n.callFrame.functionName}|${n.callFrame.url}|${n.callFrame.lineNumber}`;
    // Every sample weighs the same. Weighting by the time to the next sample would charge the
    // time a process spent descheduled (on a busy 2-core machine, a lot) to whatever ran
    // last, typically a writev syscall; sample counts approximate CPU shares, which are then
    // scaled to the CPU seconds /proc measured.
    for (let i = 0; i < profile.samples.length; i++) {
      const node = byId.get(profile.samples[i])!;
      const { functionName, url, lineNumber } = node.callFrame;
      const area = areaOf(url, functionName);
      sampled += 1;
      if (area === 'idle') {
        idle += 1;
        continue;
      }
      areas.set(area, (areas.get(area) ?? 0) + 1);
      const key = keyOf(node);
      const entry = self.get(key) ?? { name: functionName || '(anonymous)', where: url ? `${shortUrl(url)}:${lineNumber + 1}` : '', area, n: 0 };
      entry.n += 1;
      self.set(key, entry);
      // Inclusive time of our own functions: count each once per sample, however deep the recursion.
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const n = byId.get(id)!;
        if (areaOf(n.callFrame.url, n.callFrame.functionName) !== 'OWN CODE') continue;
        const k = keyOf(n);
        if (seen.has(k)) continue;
        seen.add(k);
        const inc = inclusive.get(k) ?? { name: n.callFrame.functionName || '(anonymous)', where: `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`, n: 0 };
        inc.n += 1;
        inclusive.set(k, inc);
      }
    }
  }
  const busy = sampled - idle;
  const pct = (n: number) => (busy > 0 ? (100 * n) / busy : 0);
  // Samples -> milliseconds of the CPU time the nodes really used in the window.
  const msPerSample = busy > 0 ? (cpuS * 1000) / busy : 0;
  return {
    system,
    files: files.map((f) => path.relative(PROJECT_ROOT, f)),
    windowS,
    samples: sampled,
    busyMs: cpuS * 1000,
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, n]) => ({ area, selfMs: n * msPerSample, pct: pct(n) })),
    top: [...self.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, area: e.area, selfMs: e.n * msPerSample, selfPct: pct(e.n) })),
    ownInclusive: [...inclusive.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, totalMs: e.n * msPerSample, pct: pct(e.n) })),
  };
}

function print(s: ProfileSummary, log: (line: string) => void): void {
  log(`\n=== ${s.system}: ${s.files.length} node profile(s), ${s.windowS.toFixed(1)} s window, ${(s.busyMs / 1000).toFixed(2)} CPU s (/proc), ${s.samples} samples ===`);
  log('\n  by area (self time)');
  for (const a of s.areas.slice(0, 15)) log(`    ${a.pct.toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(6)} ms  ${a.area}`);
  log('\n  top functions (self time)');
  for (const h of s.top) log(`    ${h.selfPct.toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}  ${h.where}`);
  log('\n  own code, inclusive time');
  for (const h of s.ownInclusive) log(`    ${h.pct.toFixed(1).padStart(5)}%  ${h.totalMs.toFixed(0).padStart(6)} ms  ${h.name}  ${h.where}`);
}

async function profileSystem(
  kind: SystemKind,
  backing: Backing,
  opts: { nodes: number; sessions: number; users: number; rate: number; messages: number; top: number },
  log: (line: string) => void,
): Promise<ProfileSummary> {
  const dir = path.join(PROFILE_ROOT, kind);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const env = { NODE_OPTIONS: `--require ${PROFILER_PRELOAD}`, BENCH_PROFILE_DIR: dir };
  const sys: SystemHandle = await (kind === 'project' ? startProject : startFloor)(backing, { nodes: opts.nodes, nginx: true, env });
  const toggle = () => sys.nodes.forEach((n) => process.kill(n.pid, 'SIGUSR2'));
  let windowS = 0;
  let cpuS = 0;
  try {
    const run = async (messages: number, measured: boolean) => {
      const ids = await createSessions(sys.url, opts.sessions, Math.max(2, opts.users));
      const gen = new LoadGenerator(planUsers(ids, opts.users, 'sio', [sys.url], measured ? 20_000 : 0), {
        workers: 2,
        messages,
        rate: opts.rate,
        drainMs: 5_000,
        joinTimeoutMs: 20_000,
        joinConcurrency: 32,
        sioTransports: ['websocket'],
        warmupMs: 0,
      });
      try {
        await gen.join();
        const from = nowMs();
        let cpu = sampleCpu([]);
        if (measured) {
          toggle();
          await new Promise((resolve) => setTimeout(resolve, 200));
          cpu = sampleCpu(sys.nodes.map((n) => n.pid));
        }
        const s = await gen.go();
        if (measured) {
          cpuS = cpuDelta(cpu, sampleCpu(sys.nodes.map((n) => n.pid)));
          toggle();
          windowS = (nowMs() - from) / 1000;
          await waitForFiles(dir, sys.nodes.length);
        }
        log(`  ${kind} ${measured ? 'measured' : 'warm-up'}: p50 ${s.latency.p50.toFixed(1)} p99 ${s.latency.p99.toFixed(1)} ms, lost ${s.lost}, ${s.deliveredPerS.toFixed(0)}/s`);
      } finally {
        await gen.close();
      }
    };
    await run(8, false);
    await run(opts.messages, true);
  } finally {
    await sys.stop();
  }
  return summarise(kind, profiles(dir), windowS, cpuS, opts.top);
}

function profiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
}

/** Each node writes its profile when told to stop; wait for all of them. */
async function waitForFiles(dir: string, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (profiles(dir).length < count) {
    if (Date.now() > deadline) throw new Error(`only ${profiles(dir).length} of ${count} profiles written under ${dir}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      sessions: { type: 'string', default: '50' },
      users: { type: 'string', default: '6' },
      rate: { type: 'string', default: '2' },
      messages: { type: 'string', default: '30' },
      top: { type: 'string', default: '25' },
    },
  });
  const opts = {
    nodes: Number(values.nodes),
    sessions: Number(values.sessions),
    users: Number(values.users),
    rate: Number(values.rate),
    messages: Number(values.messages),
    top: Number(values.top),
  };
  const log = (line: string) => process.stdout.write(`${line}\n`);
  buildFloor();
  const [postgres, redis] = await Promise.all([startPostgres({ durable: true }), startRedis()]);
  const summaries: ProfileSummary[] = [];
  try {
    for (const kind of ['project', 'floor'] as SystemKind[]) summaries.push(await profileSystem(kind, { postgres, redis }, opts, log));
  } finally {
    await Promise.allSettled([postgres.destroy(), redis.destroy()]);
  }
  for (const s of summaries) print(s, log);
  const [p, f] = summaries;
  log(`\nnode CPU during the measured window: project ${(p.busyMs / 1000).toFixed(2)} s, floor ${(f.busyMs / 1000).toFixed(2)} s (${(p.busyMs / f.busyMs).toFixed(2)}x)`);
  const out = path.join(PROJECT_ROOT, 'bench', 'results', 'profile.json');
  fs.writeFileSync(out, `${JSON.stringify({ generatedAt: new Date().toISOString(), options: opts, summaries }, null, 2)}\n`);
  log(`written to ${path.relative(process.cwd(), out)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
