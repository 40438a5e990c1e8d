/**
 * CPU time and memory of server processes, read from Linux /proc: the benchmark measures
 * real processes it did not start in-process, so process.cpuUsage() cannot see them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on every usual kernel). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text
      .slice(text.lastIndexOf(')') + 2)
      .trim()
      .split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU seconds the process has used so far; null once it is gone. */
export function cpuSeconds(pid: number): number | null {
  const f = statFields(pid);
  // After the name: state(0) ppid(1) ... utime(11) stime(12).
  if (!f) return null;
  return (Number(f[11]) + Number(f[12])) / clockTicks();
}

export interface Memory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size, bytes. */
  hwm: number;
}

export function memory(pid: number): Memory | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** The process and all its descendants (PostgreSQL backends, nginx workers). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(entry));
    else children.set(ppid, [Number(entry)]);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  if (fs.existsSync(`/proc/${root}`)) walk(root);
  return out;
}

/** A CPU reading of a group of processes (a PID and, optionally, its descendants). */
export interface CpuSample {
  byPid: Map<number, number>;
}

export function sampleCpu(pids: number[]): CpuSample {
  const byPid = new Map<number, number>();
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s !== null) byPid.set(pid, s);
  }
  return { byPid };
}

/**
 * CPU seconds used between two samples. A process that appeared in between counts from zero,
 * one that vanished counts up to the first sample only (its last moments are lost, which for
 * the long-lived processes measured here does not happen during a run).
 */
export function cpuDelta(before: CpuSample, after: CpuSample): number {
  let total = 0;
  for (const [pid, s] of after.byPid) total += s - (before.byPid.get(pid) ?? 0);
  return total;
}

/** Total RSS of a group of processes, bytes. */
export function groupRss(pids: number[]): number {
  let total = 0;
  for (const pid of pids) total += memory(pid)?.rss ?? 0;
  return total;
}

/**
 * CPU seconds the whole machine has spent so far: busy in processes (user, nice, system;
 * idle and iowait excluded) and in interrupts (irq, softirq: on loopback, much of the TCP
 * work of every write is done there and charged to no process).
 */
export function machineSeconds(): { process: number; interrupts: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return { process: (f[0] + f[1] + f[2]) / clockTicks(), interrupts: (f[5] + f[6]) / clockTicks() };
}
