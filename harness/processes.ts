/**
 * Child-process plumbing shared by every harness module: spawn with output in a log file,
 * wait for readiness with a deadline, stop by PID with an escalation to SIGKILL, and
 * temporary directories that go away on stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Exit code, or null when a signal ended the process. Never rejects. */
  exited: Promise<number | null>;
  /** True once the process is gone (exited or failed to spawn). */
  hasExited(): boolean;
}

/** A server the harness started and can stop, start again and signal (outage and chaos tests). */
export interface ServerProcess {
  /** stop() and remove the temp dir. */
  destroy(): Promise<void>;
  /** PID of the current process (-1 before the first start). */
  readonly pid: number;
  /** Exit code (null for a signal) of the current process; never rejects. */
  readonly exited: Promise<number | null>;
  /** Sends a signal to the current process by PID (SIGSTOP/SIGCONT to freeze it, SIGKILL to crash it). */
  kill(sig: NodeJS.Signals): void;
}

export interface SpawnOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here, so a failure can show its tail. */
  logFile: string;
  /** Run as another user (root only): PostgreSQL refuses to run as root. */
  uid?: number;
  gid?: number;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Last line of defence when a test run dies without calling stop(): kill what is still
 * running (synchronously, the only thing an 'exit' listener can do) so no orphaned
 * server keeps a port or a data directory busy.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) {
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of tempDirs) removeTempDirSync(dir);
  });
}

/** What `npm run test:unit` may not start (test/tiers.js): a unit test that does belongs in integration. */
const SERVICES = new Set(['postgres', 'initdb', 'redis-server', 'redis-sentinel', 'redis-cli', 'nginx', 'prometheus']);

function refuseServicesInUnitTier(command: string): void {
  if (process.env.SEANCE_TEST_TIER === 'unit' && SERVICES.has(path.basename(command))) {
    throw new Error(`A unit test may not start ${path.basename(command)}: list the file under integration or cluster (test/tiers.js)`);
  }
}

export function spawnLogged(command: string, args: string[], options: SpawnOptions): Spawned {
  refuseServicesInUnitTier(command);
  installExitHook();
  const fd = fs.openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
      uid: options.uid,
      gid: options.gid,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    fs.closeSync(fd);
  }
  let gone = false;
  live.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      gone = true;
      live.delete(child);
      resolve(code);
    });
    child.once('error', (err) => {
      // spawn failures (ENOENT, EACCES) emit 'error' and never 'exit'.
      fs.appendFileSync(options.logFile, `\n[harness] could not spawn ${command}: ${err.message}\n`);
      gone = true;
      live.delete(child);
      resolve(null);
    });
  });
  return { child, pid: child.pid ?? -1, exited, hasExited: () => gone };
}

/** Runs a command to completion, capturing its output; rejects with that output on failure. */
export function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; timeoutMs?: number }): Promise<string> {
  refuseServicesInUnitTier(command);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      uid: options.uid,
      gid: options.gid,
      timeout: options.timeoutMs ?? 60_000,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', (err) => reject(new Error(`${command}: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/** PIDs whose parent is `pid` (Linux /proc); used to reap nginx workers when its master is SIGKILLed. */
export function childPids(pid: number): number[] {
  if (!(pid > 0)) return [];
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: fields resume after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** Sends a signal by PID; a process that is already gone is not an error. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  // -1 (a spawn that failed) would mean "every process we may signal".
  if (!(pid > 0)) return;
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Sends `sig` to the process and waits for it to exit; after `graceMs` it gets SIGKILL,
 * and so do its direct children (which a SIGKILLed parent cannot stop itself).
 */
export async function stopProcess(proc: Spawned, sig: NodeJS.Signals, graceMs: number): Promise<void> {
  if (proc.hasExited()) return;
  signal(proc.pid, sig);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const outcome = await Promise.race([proc.exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout' && !proc.hasExited()) {
    const children = childPids(proc.pid);
    signal(proc.pid, 'SIGKILL');
    for (const pid of children) signal(pid, 'SIGKILL');
    await proc.exited;
  }
}

/**
 * Polls `check` until it returns true. Fails after `timeoutMs`, or at once when the
 * process we are waiting for exits, with the tail of its log in the message.
 */
export async function waitUntil(what: string, check: () => Promise<boolean>, options: { timeoutMs: number; intervalMs?: number; proc?: Spawned; logFile?: string }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const failure = (reason: string) => new Error(`${what}: ${reason}${options.logFile ? `\n--- ${options.logFile} (tail) ---\n${tailFile(options.logFile)}` : ''}`);
  for (;;) {
    if (options.proc?.hasExited()) {
      const code = await options.proc.exited;
      throw failure(`process exited (code ${code}) before it was ready`);
    }
    if (await check()) return;
    if (Date.now() > deadline) throw failure(`not ready after ${options.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** The last `lines` lines of a log file ('' when it does not exist). */
export function tailFile(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The full path of an executable: on PATH first, then in the extra directories given. */
export function findExecutable(name: string, extraDirs: string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...extraDirs];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** A fresh directory under the OS temp dir, removed by removeTempDir (or at exit). */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Set HARNESS_KEEP_TMP=1 to keep data and logs of a run for debugging. */
function removeTempDirSync(dir: string): void {
  tempDirs.delete(dir);
  if (process.env.HARNESS_KEEP_TMP === '1') return;
  fs.rmSync(dir, { recursive: true, force: true });
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  if (process.env.HARNESS_KEEP_TMP === '1') {
    process.stderr.write(`[harness] kept ${dir}\n`);
    return;
  }
  await fs.promises.rm(dir, { recursive: true, force: true });
}

/** The project root: test/harness is two levels below it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The ServerProcess controls of a server whose current process `current()` returns (it changes on each restart). */
export function serverProcess(current: () => Spawned | undefined, stop: () => Promise<void>, dir: string): ServerProcess {
  return {
    destroy: async () => {
      await stop();
      await removeTempDir(dir);
    },
    get pid() {
      return current()?.pid ?? -1;
    },
    get exited() {
      const proc = current();
      return proc ? proc.exited : new Promise<number | null>(() => undefined);
    },
    kill: (sig) => {
      const proc = current();
      if (proc && !proc.hasExited()) signal(proc.pid, sig);
    },
  };
}
