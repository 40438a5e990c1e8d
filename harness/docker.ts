/**
 * A Docker engine for the image and topology tests: the one already running if there is one,
 * else a dockerd of our own (root only), with its data and socket under .ci/cache/docker so
 * images built in one run are still there in the next. Ours is stopped by PID at the end.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT, findExecutable, run, spawnLogged, stopProcess, tailFile, waitUntil, type Spawned } from './processes';

export interface DockerEngine {
  /** unix:///… : what DOCKER_HOST must say to reach it. */
  host: string;
  /** True when this run started the daemon (and so stops it). */
  ours: boolean;
  /** Runs the docker CLI against this engine; rejects with its output on failure. */
  docker: (args: string[], options?: { timeoutMs?: number }) => Promise<string>;
  stop(): Promise<void>;
}

/** Why there is no engine, for the suites' skip message. */
export class DockerUnavailable extends Error {}

export const DOCKER_CACHE = path.join(PROJECT_ROOT, '.ci', 'cache', 'docker');
const READY_TIMEOUT_MS = 60_000;
export const NICENESS = 15;
/** dockerd stops its containers first (10 s each at most), then itself. */
const STOP_GRACE_MS = 30_000;

function dockerCli(host: string): DockerEngine['docker'] {
  // The classic builder: BuildKit would fetch its Dockerfile frontend from a registry.
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0' };
  return (args, options = {}) => run('docker', args, { cwd: PROJECT_ROOT, env, timeoutMs: options.timeoutMs ?? 120_000 });
}

async function answers(host: string): Promise<boolean> {
  try {
    await dockerCli(host)(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** The unix socket of a dockerd that is already running (ours from another checkout, or the system's). */
function runningDaemonSocket(): string | null {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (path.basename(argv[0] ?? '') !== 'dockerd') continue;
    const i = argv.findIndex((a) => a === '-H' || a === '--host');
    const flag = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--host='))?.slice('--host='.length);
    return flag?.startsWith('unix://') ? flag : 'unix:///var/run/docker.sock';
  }
  return null;
}

/**
 * The running engine (DOCKER_HOST, the default socket, or any dockerd's socket), else a new
 * dockerd of ours. Throws DockerUnavailable, with the reason, where none can run.
 */
export async function startDockerEngine(): Promise<DockerEngine> {
  if (!findExecutable('docker')) throw new DockerUnavailable('the docker CLI is not installed (apt-get install docker.io; .ci/run does)');
  const existing = [process.env.DOCKER_HOST, 'unix:///var/run/docker.sock', runningDaemonSocket()].filter((h): h is string => Boolean(h));
  for (const host of existing) {
    if (await answers(host)) return { host, ours: false, docker: dockerCli(host), stop: async () => undefined };
  }
  // Two daemons would fight over the docker0 bridge and the iptables chains.
  if (runningDaemonSocket()) throw new DockerUnavailable('a dockerd is running but does not answer on its socket');
  const dockerd = findExecutable('dockerd', ['/usr/sbin', '/usr/bin']);
  if (!dockerd) throw new DockerUnavailable('dockerd is not installed (apt-get install docker.io; .ci/run does)');
  if (process.getuid?.() !== 0) throw new DockerUnavailable('no Docker engine is running and only root can start one');

  fs.mkdirSync(DOCKER_CACHE, { recursive: true });
  const socket = path.join(DOCKER_CACHE, 'docker.sock');
  const host = `unix://${socket}`;
  const logFile = path.join(DOCKER_CACHE, 'dockerd.log');
  // containerd's sockets live here: a short path, as unix socket paths are limited to 107 bytes.
  const execRoot = path.join(os.tmpdir(), `seance-dockerd-${crypto.createHash('sha256').update(DOCKER_CACHE).digest('hex').slice(0, 8)}`);
  fs.writeFileSync(logFile, '');
  const args = ['--data-root', path.join(DOCKER_CACHE, 'data'), '--exec-root', execRoot, '--pidfile', path.join(execRoot, 'dockerd.pid'), '--host', host];
  // Niced, and with it every container and build: images build in the background while the
  // rest of the suite runs, without slowing its timing-sensitive tests.
  const proc: Spawned = spawnLogged('nice', ['-n', String(NICENESS), dockerd, ...args], { cwd: PROJECT_ROOT, logFile });
  const stop = async () => {
    await stopProcess(proc, 'SIGTERM', STOP_GRACE_MS);
    fs.rmSync(socket, { force: true });
  };
  try {
    await waitUntil('dockerd', () => answers(host), { timeoutMs: READY_TIMEOUT_MS, intervalMs: 500, proc, logFile });
  } catch (err) {
    await stop();
    throw new DockerUnavailable(`dockerd cannot run here: ${(err as Error).message.split('\n')[0]}\n${tailFile(logFile, 5)}`);
  }
  return { host, ours: true, docker: dockerCli(host), stop };
}

export interface ContainerState {
  running: boolean;
  exitCode: number;
  /** starting, healthy or unhealthy; null without a healthcheck. */
  health: string | null;
}

export async function inspectContainer(engine: DockerEngine, name: string): Promise<ContainerState> {
  const out = await engine.docker(['inspect', '--format', '{{json .State}}', name]);
  const state = JSON.parse(out) as { Running: boolean; ExitCode: number; Health?: { Status: string } };
  return { running: state.Running, exitCode: state.ExitCode, health: state.Health?.Status ?? null };
}

/** Waits for the container's healthcheck to pass; fails early when it exits, with its log. */
export async function waitHealthy(engine: DockerEngine, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await inspectContainer(engine, name);
    if (state.health === 'healthy') return;
    if (!state.running || Date.now() > deadline) {
      const logs = await engine.docker(['logs', '--tail', '30', name]).catch((err: Error) => err.message);
      throw new Error(`${name}: ${state.running ? `not healthy after ${timeoutMs} ms (${state.health})` : `exited with ${state.exitCode}`}\n${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
