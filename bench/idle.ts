/**
 * Idle connections: how many joined connections one node holds and what each costs in RSS.
 * A fresh node (no nginx: its worker_connections would be the limit, not the node) gets
 * connections in steps up to each level; RSS is read after the connections settle.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadGenerator, createSessions, planUsers, type Transport } from './load';
import { cpuSeconds, memory } from './lib/procstat';
import type { SystemHandle } from './systems';

export interface IdleLevel {
  target: number;
  joined: number;
  failed: number;
  errors: string[];
  /** Seconds to join this step's connections. */
  joinS: number;
  rssMb: number;
  /** (RSS now - RSS before any connection) / joined, KB. */
  rssPerConnKb: number;
  /** RSS added by this step's connections / their number, KB (heap slack of the first step excluded). */
  marginalKbPerConn: number;
  /** Node CPU spent joining this step's connections, ms per connection. */
  joinCpuMsPerConn: number;
}

export interface IdleResult {
  system: string;
  transport: Transport;
  baselineRssMb: number;
  levels: IdleLevel[];
}

const USERS_PER_SESSION = 10;
const SETTLE_MS = 3_000;

export async function runIdle(system: SystemHandle, transport: Transport, levels: number[], opts: { workers: number; log: (line: string) => void }): Promise<IdleResult> {
  const node = system.nodes[0];
  const top = Math.max(...levels);
  const sessions = await createSessions(node.url, Math.ceil(top / USERS_PER_SESSION), 12);
  const allUsers = planUsers(sessions, USERS_PER_SESSION, transport, [node.url]).slice(0, top);
  await sleep(1_000);
  const baseline = memory(node.pid)?.rss ?? 0;
  const generators: LoadGenerator[] = [];
  const result: IdleResult = { system: system.kind, transport, baselineRssMb: baseline / 2 ** 20, levels: [] };
  let connected = 0;
  try {
    for (const target of [...levels].sort((a, b) => a - b)) {
      const users = allUsers.slice(connected, target);
      const cpuBefore = cpuSeconds(node.pid) ?? 0;
      const gen = new LoadGenerator(users, {
        workers: opts.workers,
        messages: 0,
        rate: 0,
        drainMs: 0,
        joinTimeoutMs: 60_000,
        joinConcurrency: 64,
        sioTransports: ['websocket'],
        warmupMs: 0,
      });
      generators.push(gen);
      const joined = await gen.join();
      const cpuAfter = cpuSeconds(node.pid) ?? 0;
      connected = target;
      await sleep(SETTLE_MS);
      const rss = memory(node.pid)?.rss ?? 0;
      const previous = result.levels.at(-1);
      const total = (previous?.joined ?? 0) + joined.joined;
      const level: IdleLevel = {
        target,
        joined: total,
        failed: joined.failed + (previous?.failed ?? 0),
        errors: joined.errors,
        joinS: joined.s,
        rssMb: rss / 2 ** 20,
        rssPerConnKb: total > 0 ? (rss - baseline) / 1024 / total : NaN,
        marginalKbPerConn: joined.joined > 0 ? (rss - (previous ? previous.rssMb * 2 ** 20 : baseline)) / 1024 / joined.joined : NaN,
        joinCpuMsPerConn: users.length > 0 ? ((cpuAfter - cpuBefore) * 1000) / users.length : NaN,
      };
      result.levels.push(level);
      opts.log(
        `    idle ${system.kind} ${transport} ${target}: joined ${total} (failed ${level.failed}) in ${joined.s.toFixed(1)} s, ` +
          `RSS ${level.rssMb.toFixed(0)} MB, ${level.rssPerConnKb.toFixed(1)} KB/conn (this step ${level.marginalKbPerConn.toFixed(1)})`,
      );
      if (joined.failed > 0 && joined.joined === 0) break;
    }
  } finally {
    await Promise.all(generators.map((g) => g.close()));
  }
  return result;
}
