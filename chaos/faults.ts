/**
 * The faults a chaos run injects, one at a time in random order, into processes the harness
 * owns (always by PID): SIGKILL a node and start it again, SIGTERM a node (a rolling
 * restart), SIGSTOP a node for longer than the presence TTL then SIGCONT it, restart Redis,
 * restart PostgreSQL. A watcher records every process exit and whether a fault caused it.
 */
import type { ClusterHandle } from '../harness/cluster';
import type { NodeHandle } from '../harness/node';
import type { ServerProcess } from '../harness/processes';

export const FAULT_KINDS = ['node-sigkill', 'node-sigterm', 'node-sigstop', 'redis-restart', 'postgres-restart'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  /** ms since the run started. */
  at: number;
  durationMs: number;
  /** Exit code of a SIGTERMed node (0 expected), undefined for other faults. */
  exitCode?: number | null;
  /** How long a SIGTERMed node took to exit (its drain). */
  exitMs?: number;
  /** Time until every node answered /health 200 again, or null when it never did in the bound. */
  recoveredMs: number | null;
  note?: string;
}

export interface ProcessExit {
  process: string;
  pid: number;
  at: number;
  code: number | null;
  /** Caused by a fault (or the final stop); false means a process died by itself. */
  expected: boolean;
}

/** Records every exit of the processes it watches; a fault announces the exits it causes. */
export class ProcessWatch {
  readonly exits: ProcessExit[] = [];
  private readonly expecting = new Set<number>();
  private readonly watched = new Set<number>();

  constructor(private readonly clock: () => number) {}

  watch(name: string, pid: number, exited: Promise<number | null>): void {
    if (!(pid > 0) || this.watched.has(pid)) return;
    this.watched.add(pid);
    void exited.then((code) => {
      this.exits.push({ process: name, pid, at: this.clock(), code, expected: this.expecting.delete(pid) });
    });
  }

  /** The next exit of `pid` is the fault's doing. */
  expect(pid: number): void {
    this.expecting.add(pid);
  }

  watchCluster(cluster: ClusterHandle): void {
    cluster.nodes.forEach((n) => this.watch(n.nodeId, n.pid, n.exited));
    this.watch('redis', cluster.redis.pid, cluster.redis.exited);
    this.watch('postgres', cluster.postgres.pid, cluster.postgres.exited);
    if (cluster.nginx) this.watch('nginx', cluster.nginx.pid, cluster.nginx.exited);
  }

  /** Every watched process will now be stopped on purpose. */
  expectAll(cluster: ClusterHandle): void {
    for (const pid of [...cluster.nodes.map((n) => n.pid), cluster.redis.pid, cluster.postgres.pid, cluster.nginx?.pid ?? -1]) this.expect(pid);
  }
}

export interface FaultOptions {
  presenceTtlMs: number;
  random: () => number;
  clock: () => number;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Polls every node's /health until all answer 200; resolves with the time taken, or null after `timeoutMs`. */
export async function waitAllHealthy(cluster: ClusterHandle, timeoutMs: number): Promise<number | null> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const all = await Promise.all(cluster.nodes.map((n) => healthy(n.url)));
    if (all.every(Boolean)) return Date.now() - started;
    await sleep(200);
  }
  return null;
}

function exitWithin(node: NodeHandle, ms: number): Promise<number | null | 'timeout'> {
  return Promise.race([node.exited, sleep(ms).then(() => 'timeout' as const)]);
}

/**
 * Injects faults until stop() is called: each round runs every kind once, in random order,
 * on random nodes, then waits for the cluster to be healthy and pauses a little.
 */
export class FaultInjector {
  readonly faults: FaultRecord[] = [];
  private stopping = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly cluster: ClusterHandle,
    private readonly watch: ProcessWatch,
    private readonly opts: FaultOptions,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  /** Lets the fault under way finish (and the cluster recover), then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const round = [...FAULT_KINDS];
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(this.opts.random() * (i + 1));
        [round[i], round[j]] = [round[j], round[i]];
      }
      for (const kind of round) {
        if (this.stopping) return;
        await this.inject(kind);
        // A short calm between faults, so clients reconnect and talk in between.
        await sleep(1500 + this.opts.random() * 2500);
      }
    }
  }

  private async inject(kind: FaultKind): Promise<void> {
    const { cluster, watch, opts } = this;
    const at = opts.clock();
    const started = Date.now();
    const record: FaultRecord = { kind, target: '', at, durationMs: 0, recoveredMs: null };
    const index = Math.floor(opts.random() * cluster.nodes.length);
    const node = cluster.nodes[index];
    try {
      switch (kind) {
        case 'node-sigkill': {
          record.target = node.nodeId;
          watch.expect(node.pid);
          node.kill('SIGKILL');
          await node.exited;
          // Down for a moment, as a crashed container would be before its restart.
          await sleep(this.opts.random() * 2000);
          await this.restart(index);
          break;
        }
        case 'node-sigterm': {
          record.target = node.nodeId;
          watch.expect(node.pid);
          node.kill('SIGTERM');
          const code = await exitWithin(node, 12_000);
          record.exitMs = Date.now() - started;
          record.exitCode = code === 'timeout' ? null : code;
          if (code === 'timeout') record.note = 'did not exit within 12 s of SIGTERM';
          await this.restart(index);
          break;
        }
        case 'node-sigstop': {
          record.target = node.nodeId;
          node.kill('SIGSTOP');
          // Longer than the TTL plus a reaper's round: the other nodes reap it while it is frozen.
          await sleep(opts.presenceTtlMs * 1.5 + 1000 + this.opts.random() * 1000);
          node.kill('SIGCONT');
          break;
        }
        case 'redis-restart':
          record.target = 'redis';
          await this.restartServer('redis', cluster.redis);
          break;
        case 'postgres-restart':
          record.target = 'postgres';
          await this.restartServer('postgres', cluster.postgres);
          break;
      }
    } catch (err) {
      record.note = `fault failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    }
    record.durationMs = Date.now() - started;
    await this.reviveDead();
    record.recoveredMs = await waitAllHealthy(cluster, 30_000);
    this.faults.push(record);
    opts.log(
      `fault ${kind.padEnd(16)} ${record.target.padEnd(8)} ${String(record.durationMs).padStart(5)} ms` +
        `${record.exitCode !== undefined ? `, exit ${record.exitCode} after ${record.exitMs} ms` : ''}, healthy again after ${record.recoveredMs ?? 'never'} ms${record.note ? ` (${record.note})` : ''}`,
    );
  }

  /** Stops Redis or PostgreSQL (an expected exit), keeps it down a moment, starts it again and watches the new process. */
  private async restartServer(name: string, server: ServerProcess & { stop(): Promise<void>; start(): Promise<void> }): Promise<void> {
    this.watch.expect(server.pid);
    await server.stop();
    await sleep(300 + this.opts.random() * 1500);
    await server.start();
    this.watch.watch(name, server.pid, server.exited);
  }

  private async restart(index: number): Promise<void> {
    const node = await this.cluster.restartNode(index);
    this.watch.watch(node.nodeId, node.pid, node.exited);
  }

  /** A node that died by itself is started again, so the run goes on (the watch has counted it). */
  async reviveDead(): Promise<void> {
    for (let i = 0; i < this.cluster.nodes.length; i++) {
      const node = this.cluster.nodes[i];
      let alive = true;
      try {
        process.kill(node.pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) {
        this.opts.log(`${node.nodeId} (pid ${node.pid}) is not running: starting it again`);
        await this.restart(i).catch((err) => this.opts.log(`restart of ${node.nodeId} failed: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
  }
}
