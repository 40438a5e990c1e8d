/**
 * One chaos run: a 3-node cluster behind nginx on real PostgreSQL and Redis, clients on
 * both transports chatting and reconnecting with `last_seq`, faults injected at random for
 * the given time; then the faults stop, the cluster settles, and the checker judges what
 * the database kept against what every client logged. Used by `npm run chaos` and by the
 * 60-second run in `npm test`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startCluster, type ClusterHandle } from '../harness/cluster';
import { check, type ChaosReport, type ClientOutcome, type PresenceView } from './check';
import { RawClient, SocketIoClient, type ChaosClient, type ClientSpec, type Transport } from './clients';
import { FaultInjector, ProcessWatch, waitAllHealthy } from './faults';
import { readHistory, readParticipants, type StoredMessage } from './history';
import { HostileCrowd, MemoryWatch, deliveryLatency, formatHostile, hostileFailures, hostileReport, type HostileReport } from './hostile';
import { formatReport, table as markdownTable } from './table';

export interface ChaosOptions {
  durationMs: number;
  /** Default 10 sessions of 6 clients: per session 2 Socket.IO (websocket), 1 Socket.IO (polling first), 3 raw. */
  sessions?: number;
  clientsPerSession?: number;
  /** Seeds the fault schedule and the clients' timing. Default: the time. */
  seed?: number;
  /** Node presence TTL; a SIGSTOP lasts longer than it. Default 3000. */
  presenceTtlMs?: number;
  /** Node logs, client logs and the report go here (created). */
  dir: string;
  /** Progress lines. */
  log?: (line: string) => void;
  messageEveryMs?: number;
  dropEveryMs?: number;
  /** Hostile clients join from 40 % of the faults' time on (see hostile.ts). */
  hostile?: boolean;
}

export interface ChaosResult {
  report: ChaosReport;
  hostile: HostileReport | null;
  table: string;
  seed: number;
  dir: string;
}

/** mulberry32: a small seeded generator, so a schedule can be replayed with --seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A distinct loopback address per client (nginx hashes Socket.IO clients on it). */
function sourceAddress(index: number): string {
  return `127.77.${Math.floor(index / 250) + 1}.${(index % 250) + 1}`;
}

/** The oracle's default pause: answers are stored apart from their questions, as with a real model. */
const ANSWER_DELAY_MS = 1500;

const TRANSPORT_MIX: Transport[] = ['sio', 'raw', 'sio', 'raw', 'sio-polling', 'raw'];

/** Limits the nodes run with in a hostile run: low enough that the floods pass them within seconds. */
const HOSTILE_LIMITS = { maxConnectionsPerAddress: 20, sessionCreatesPerMinute: 40 };

async function createSession(url: string, name: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url}/api/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, max_users: 12 }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { data?: { id: string } };
    if (res.status === 201 && body.data) return body.data.id;
    if (attempt >= 5) throw new Error(`POST /api/sessions: HTTP ${res.status}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Waits on every client at once; returns how many did not get there in time. */
async function waitClients(clients: ChaosClient[], what: string, check: (c: ChaosClient) => boolean, timeoutMs: number): Promise<number> {
  const results = await Promise.allSettled(clients.map((c) => c.waitFor(what, () => check(c), timeoutMs)));
  return results.filter((r) => r.status === 'rejected').length;
}

/** Polls until `done` holds or the time is up; resolves with whether it held. */
async function pollUntil(done: () => Promise<boolean>, timeoutMs: number, intervalMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const seed = opts.seed ?? Date.now() % 2 ** 31;
  // Separate streams, so the fault schedule and each client's timing replay with the seed
  // whatever order their timers fire in.
  const faultRandom = seeded(seed);
  const log = opts.log ?? (() => undefined);
  const sessions = opts.sessions ?? 10;
  const perSession = opts.clientsPerSession ?? 6;
  const presenceTtlMs = opts.presenceTtlMs ?? 3000;
  fs.mkdirSync(path.join(opts.dir, 'clients'), { recursive: true });
  const t0 = Date.now();
  const clock = () => Date.now() - t0;
  const stamp = (line: string) => log(`[${(clock() / 1000).toFixed(1).padStart(6)} s] ${line}`);

  stamp(`seed ${seed}; starting PostgreSQL, Redis, 3 nodes and nginx (logs in ${opts.dir})`);
  const cluster: ClusterHandle = await startCluster({
    nodes: 3,
    logDir: opts.dir,
    env: {
      LOG_LEVEL: 'info',
      PRESENCE_TTL_MS: String(presenceTtlMs),
      // The run is about delivery, not about the rate limit: nobody here floods.
      MESSAGE_RATE_LIMIT: '1000',
      CONNECT_RATE_LIMIT: '100000',
      SPIRIT_ORACLE_DELAY_MS: String(ANSWER_DELAY_MS),
      ...(opts.hostile
        ? {
            MAX_CONNECTIONS_PER_ADDRESS: String(HOSTILE_LIMITS.maxConnectionsPerAddress),
            SESSION_CREATE_RATE_LIMIT: String(HOSTILE_LIMITS.sessionCreatesPerMinute),
          }
        : {}),
    },
  });
  const watch = new ProcessWatch(clock);
  watch.watchCluster(cluster);
  const clients: ChaosClient[] = [];
  let faults: FaultInjector | null = null;
  let crowd: HostileCrowd | null = null;
  const memory = new MemoryWatch();
  memory.start(() => cluster.nodes);
  try {
    const sessionIds: string[] = [];
    for (let s = 0; s < sessions; s++) sessionIds.push(await createSession(cluster.url, `Chaos ${s + 1}`));
    const hostileSessions: string[] = [];
    if (opts.hostile) for (let s = 0; s < 10; s++) hostileSessions.push(await createSession(cluster.url, `Hostile ${s + 1}`));
    for (let s = 0; s < sessions; s++) {
      for (let u = 0; u < perSession; u++) {
        const index = s * perSession + u;
        const spec: ClientSpec = {
          index,
          transport: TRANSPORT_MIX[u % TRANSPORT_MIX.length],
          sessionId: sessionIds[s],
          userId: `chaos-${index}`,
          name: `Sitter ${index}`,
          url: cluster.url,
          localAddress: sourceAddress(index),
        };
        const random = seeded(seed + 1 + index);
        clients.push(spec.transport === 'raw' ? new RawClient(spec, clock, random) : new SocketIoClient(spec, clock, random));
      }
    }
    stamp(`${clients.length} clients joining ${sessions} sessions`);
    for (const c of clients) c.start();
    const late = await waitClients(clients, 'first join', (c) => c.joined, 30_000);
    if (late) throw new Error(`${late} clients could not join before the faults started`);

    const timing = { messageEveryMs: opts.messageEveryMs ?? 4000, dropEveryMs: opts.dropEveryMs ?? 25_000, dropMaxMs: 4000 };
    for (const c of clients) c.startChatting(timing);
    faults = new FaultInjector(cluster, watch, { presenceTtlMs, random: faultRandom, clock, log: stamp });
    stamp(`chatting; faults for ${(opts.durationMs / 1000).toFixed(0)} s`);
    faults.start();
    let hostileFromMs = Infinity;
    if (opts.hostile) {
      await new Promise((resolve) => setTimeout(resolve, opts.durationMs * 0.4));
      hostileFromMs = clock();
      crowd = new HostileCrowd({
        url: cluster.url,
        sessions: sessionIds,
        hostileSessions,
        targets: clients.map((c) => ({ sessionId: c.spec.sessionId, userId: c.spec.userId, joined: () => c.joined })),
        random: seeded(seed + 7919),
        ...HOSTILE_LIMITS,
      });
      stamp('hostile clients join in');
      crowd.start();
      await new Promise((resolve) => setTimeout(resolve, opts.durationMs * 0.6));
    } else {
      await new Promise((resolve) => setTimeout(resolve, opts.durationMs));
    }
    await faults.stop();
    const faultsEndedMs = clock();
    stamp('faults stopped; letting the cluster settle');
    // The hostile clients leave first, so the settled presence is the sitters' alone.
    await crowd?.stop();

    // Settle: everyone stops talking, is answered, is back in its session and has caught up.
    for (const c of clients) c.stopChatting();
    await faults.reviveDead();
    await waitAllHealthy(cluster, 30_000);
    const socketIo = clients.filter((c) => c.spec.transport !== 'raw');
    await waitClients(socketIo, 'acknowledgements', (c) => c.unacknowledged === 0, 15_000);
    const notBack = await waitClients(clients, 'rejoin', (c) => c.joined, 45_000);
    if (notBack) stamp(`${notBack} clients not back in their session`);

    // The database is the truth: wait until no session's history grows and every question has
    // its answer (late ones, taken over from a node that went), bounded; then read it.
    const lastSeqs = async () => {
      const tops: number[] = [];
      let unanswered = 0;
      for (const id of sessionIds) {
        const { messages } = await readHistory(cluster.url, id);
        tops.push(messages.length);
        for (const m of messages) unanswered += m.is_spirit ? -1 : 1;
      }
      return { tops: tops.join(','), unanswered };
    };
    let previous = '';
    await pollUntil(
      async () => {
        const now = await lastSeqs();
        const same = now.tops === previous && now.unanswered <= 0;
        previous = now.tops;
        return same;
      },
      20_000,
      2000,
    );
    const history = new Map<string, StoredMessage[]>();
    let pagedBy = '';
    for (const id of sessionIds) {
      const read = await readHistory(cluster.url, id);
      history.set(id, read.messages);
      pagedBy = read.pagedBy;
    }
    const lastOf = (id: string) => (history.get(id) ?? []).reduce((top, m) => Math.max(top, m.seq ?? 0), 0);
    // Every client that is back should catch up with its session's last message (bounded: the checker counts what is still missing).
    await waitClients(
      clients.filter((c) => c.joined),
      'catching up',
      (c) => (c.lastSeq ?? 0) >= lastOf(c.spec.sessionId),
      20_000,
    );

    // Presence: every node's list against who is really connected, once reaping and re-registration had their time.
    const presenceViews = async (): Promise<PresenceView[]> =>
      Promise.all(
        sessionIds.map(async (sessionId) => {
          const byNode: Record<string, string[] | null> = {};
          for (const n of cluster.nodes) byNode[n.nodeId] = await readParticipants(n.url, sessionId);
          const connected = clients
            .filter((c) => c.spec.sessionId === sessionId && c.joined)
            .map((c) => c.spec.userId)
            .sort();
          return { sessionId, connected, byNode };
        }),
      );
    let presence: PresenceView[] = [];
    await pollUntil(
      async () => {
        presence = await presenceViews();
        return presence.every((v) => Object.values(v.byNode).every((l) => l !== null && l.join() === v.connected.join()));
      },
      presenceTtlMs * 2 + 20_000,
      500,
    );
    stamp('settled; reading logs and checking');

    const outcomes: ClientOutcome[] = clients.map((c) => ({ spec: c.spec, log: [...c.log], connectedAtEnd: c.joined }));
    for (const c of clients) fs.writeFileSync(path.join(opts.dir, 'clients', `c${c.spec.index}.jsonl`), c.log.map((e) => JSON.stringify(e)).join('\n') + '\n');

    for (const c of clients) c.close();
    memory.stop();
    watch.expectAll(cluster);
    await cluster.stop();
    // Exits are recorded from the processes' exit events: let the last ones land.
    await new Promise((resolve) => setImmediate(resolve));

    const report = check({
      durationMs: faultsEndedMs,
      clients: outcomes,
      history,
      pagedBy,
      presence,
      exits: watch.exits,
      faults: faults.faults,
      startedAt: t0,
      answerDelayMs: ANSWER_DELAY_MS,
    });
    let hostile: HostileReport | null = null;
    let table = formatReport(report);
    if (crowd) {
      hostile = hostileReport(
        crowd,
        hostileFromMs,
        memory,
        deliveryLatency(
          outcomes.map((o) => o.log),
          hostileFromMs,
        ),
      );
      report.failures.push(...hostileFailures(hostile));
      table = `${table}\n\n${formatHostile(hostile, markdownTable)}`;
    }
    fs.writeFileSync(path.join(opts.dir, 'report.md'), `${table}\n\nseed ${seed}\n\n${formatReport(report, { allClients: true })}\n`);
    fs.writeFileSync(path.join(opts.dir, 'report.json'), JSON.stringify({ seed, ...report, hostile }, null, 2));
    return { report, hostile, table, seed, dir: opts.dir };
  } catch (err) {
    memory.stop();
    await crowd?.stop().catch(() => undefined);
    for (const c of clients) c.close();
    if (faults) await faults.stop().catch(() => undefined);
    await cluster.stop().catch(() => undefined);
    throw err;
  }
}
