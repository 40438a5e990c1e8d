/**
 * The load generator: S sessions x U users on socket.io-client and/or `ws`, each user on its
 * own 127.x.y.z source address (so nginx's `hash $remote_addr` spreads them), each sending M
 * messages at R per second with its send time inside the text. Every receiver measures the
 * latency to `message_received` and to `spirit_response` and counts what was expected,
 * received, lost, duplicated and out of order.
 *
 * The work runs in W forked worker processes (one core each at most) so that the generator
 * is not the bottleneck it measures; each reports its own CPU so a saturated one shows.
 *
 *   parent (LoadGenerator)            worker (this file, --worker)
 *     plan ------------------------->   connect + join every user
 *     <----------------------- joined
 *     go {t0} ---------------------->   send on schedule, receive, count
 *     <------------------------- done   (all expected arrived, or drain timeout)
 *     close ------------------------>   disconnect, exit
 *
 * Times are CLOCK_MONOTONIC (process.hrtime), which Linux shares across processes, so a
 * send time written by one worker is comparable with a receive time in another.
 *
 * Standalone (e.g. against `npm run cluster`):
 *   tsx bench/load.ts --url http://127.0.0.1:PORT [--sessions 50 --users 6 --rate 2 --messages 20 --transport sio|ws|mixed]
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { percentiles, type Percentiles } from './lib/stats';

export type Transport = 'sio' | 'ws';
export type TransportMix = Transport | 'mixed';

export interface PlannedUser {
  /** Global index: the sender id written in messages and the source address. */
  index: number;
  sessionId: string;
  userId: string;
  name: string;
  transport: Transport;
  /** http://host:port of the node or nginx this user connects to. */
  baseUrl: string;
  localAddress: string;
  /** Users in this user's session (each receives every one's messages). */
  sessionSize: number;
}

export interface WorkerPlan {
  users: PlannedUser[];
  messages: number;
  /** Messages per second per user. */
  rate: number;
  /** How long to wait for stragglers after the last scheduled send. */
  drainMs: number;
  joinTimeoutMs: number;
  /** Joins in flight at once per worker. */
  joinConcurrency: number;
  /** Socket.IO transports, default websocket only. */
  sioTransports: string[];
  /** Socket.IO clients name their session in the handshake query (nginx then routes them by session). */
  sessionInQuery?: boolean;
  /**
   * Messages sent in the first this many ms count for loss and order but not for the
   * latency percentiles (cold JIT, the join storm's after-effects), as the judge does.
   */
  warmupMs: number;
}

export interface WorkerResult {
  joined: number;
  joinFailed: number;
  joinErrors: string[];
  joinMs: number;
  sent: number;
  /** message_received deliveries: what every receiver should get, and what it got. */
  expected: number;
  received: number;
  duplicated: number;
  outOfOrder: number;
  spiritExpected: number;
  spiritReceived: number;
  spiritDuplicated: number;
  /** spirit_response that reached a receiver before the message_received it answers. */
  spiritBeforeQuestion: number;
  thinkingReceived: number;
  errors: number;
  disconnects: number;
  latencies: number[];
  spiritLatencies: number[];
  /** Latencies of the messages sent during the warm-up, kept apart. */
  warmupLatencies: number[];
  /** How late sends went out against their schedule (ms): a busy generator shows here. */
  sendLagMs: number[];
  firstSendAt: number;
  lastReceiveAt: number;
  cpuUserS: number;
  cpuSystemS: number;
  /** CPU of the worker since it got its plan (joins included). */
  cpuTotalS: number;
  wallS: number;
}

type ToWorker = { type: 'plan'; plan: WorkerPlan } | { type: 'go'; t0: number; senders: Record<string, number> } | { type: 'close' };
type FromWorker =
  { type: 'joined'; joined: number; failed: number; errors: string[]; ms: number; sessions: Record<string, number> } | { type: 'done'; result: WorkerResult } | { type: 'fatal'; message: string };

/** The first second of sending is left out of the latency percentiles (kept apart as the warm-up's). */
export const WARMUP_MS = 1_000;

/** Monotonic milliseconds, comparable across processes on one Linux machine. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A distinct loopback address per user: 127.10.0.1, 127.10.0.2, ... never .0 or .255. */
export function sourceAddress(index: number): string {
  const c = (index % 250) + 1;
  const b = (Math.floor(index / 250) % 250) + 1;
  const a = 10 + Math.floor(index / 62_500);
  return `127.${a}.${b}.${c}`;
}

let builtWorker: string | null = null;

/**
 * What the workers run: this file, transpiled once per parent process when the parent runs it
 * from TypeScript. A worker under tsx carried its loader in every process that shares the
 * machine with the system under test (memory, start-up, and the CPU of its hooks).
 */
async function workerEntry(): Promise<string> {
  if (!__filename.endsWith('.ts')) return __filename;
  if (!builtWorker) {
    // Loaded here only: the compiled worker never needs the compiler.
    const { transpile } = await import('./lib/transpile');
    transpile('lib/stats');
    builtWorker = transpile('load');
  }
  return builtWorker;
}

// ---------------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------------

export interface LoadSummary {
  users: number;
  joined: number;
  joinFailed: number;
  joinErrors: string[];
  joinS: number;
  sent: number;
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  spiritExpected: number;
  spiritReceived: number;
  spiritLost: number;
  spiritDuplicated: number;
  spiritBeforeQuestion: number;
  thinkingReceived: number;
  errors: number;
  disconnects: number;
  latency: Percentiles;
  spiritLatency: Percentiles;
  /** The warm-up's messages (left out of `latency`). */
  warmupLatency: Percentiles;
  sendLag: Percentiles;
  /** From the first send to the last receipt. */
  activeS: number;
  /** message_received deliveries per second over activeS. */
  deliveredPerS: number;
  generatorCpuS: number;
  /** The same, joins included. */
  generatorTotalCpuS: number;
  /** The busiest worker's CPU share of one core while it ran (near 1 = saturated). */
  generatorMaxCoreShare: number;
}

/** Drives W worker processes through one load run: start() → join() → go() → close(). */
export class LoadGenerator {
  private readonly children: ChildProcess[] = [];
  private readonly inbox = new Map<ChildProcess, FromWorker[]>();
  private readonly waiters = new Map<ChildProcess, (msg: FromWorker) => void>();
  /** Joined users per session, across workers. */
  private readonly senders: Record<string, number> = {};

  constructor(
    private readonly users: PlannedUser[],
    private readonly opts: Omit<WorkerPlan, 'users'> & { workers: number },
  ) {}

  /** Forks the workers and has every user connect and join; resolves with the join tally. */
  async join(): Promise<{ joined: number; failed: number; errors: string[]; s: number }> {
    const count = Math.max(1, Math.min(this.opts.workers, this.users.length || 1));
    const parts: PlannedUser[][] = Array.from({ length: count }, () => []);
    const entry = await workerEntry();
    this.users.forEach((u, i) => parts[i % count].push(u));
    for (const part of parts) {
      // The workers run this very file, compiled, under plain node (see workerEntry).
      const child = fork(entry, ['--worker'], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
      this.children.push(child);
      this.inbox.set(child, []);
      child.on('message', (msg: FromWorker) => {
        const waiter = this.waiters.get(child);
        if (waiter) {
          this.waiters.delete(child);
          waiter(msg);
        } else this.inbox.get(child)!.push(msg);
      });
      child.once('exit', (code) => {
        const waiter = this.waiters.get(child);
        if (waiter) {
          this.waiters.delete(child);
          waiter({ type: 'fatal', message: `load worker exited with code ${code}` });
        }
      });
      const { workers: _workers, ...rest } = this.opts;
      this.send(child, { type: 'plan', plan: { ...rest, users: part } });
    }
    const replies = await Promise.all(this.children.map((c) => this.next(c, this.opts.joinTimeoutMs + 120_000)));
    let joined = 0;
    let failed = 0;
    let ms = 0;
    const errors: string[] = [];
    for (const r of replies) {
      if (r.type === 'fatal') throw new Error(r.message);
      if (r.type !== 'joined') throw new Error(`load worker: unexpected ${r.type}`);
      for (const [id, n] of Object.entries(r.sessions)) this.senders[id] = (this.senders[id] ?? 0) + n;
      joined += r.joined;
      failed += r.failed;
      ms = Math.max(ms, r.ms);
      errors.push(...r.errors);
    }
    return { joined, failed, errors: [...new Set(errors)].slice(0, 10), s: ms / 1000 };
  }

  /** Starts sending everywhere at once and resolves when every worker is done. */
  async go(): Promise<LoadSummary> {
    const t0 = nowMs() + 100;
    for (const c of this.children) this.send(c, { type: 'go', t0, senders: this.senders });
    const sendSpanMs = this.opts.rate > 0 ? ((this.opts.messages - 1) / this.opts.rate) * 1000 + 1000 / this.opts.rate : 0;
    const limit = sendSpanMs + this.opts.drainMs + 60_000;
    const replies = await Promise.all(this.children.map((c) => this.next(c, limit)));
    const results: WorkerResult[] = [];
    for (const r of replies) {
      if (r.type === 'fatal') throw new Error(r.message);
      if (r.type !== 'done') throw new Error(`load worker: unexpected ${r.type}`);
      results.push(r.result);
    }
    return summarise(results, this.users.length);
  }

  /** Disconnects every client and waits for the workers to exit. */
  async close(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (c.connected) this.send(c, { type: 'close' });
            else c.kill('SIGKILL');
          }),
      ),
    );
  }

  private send(child: ChildProcess, msg: ToWorker): void {
    child.send(msg);
  }

  private next(child: ChildProcess, timeoutMs: number): Promise<FromWorker> {
    const queued = this.inbox.get(child)!.shift();
    if (queued) return Promise.resolve(queued);
    if (child.exitCode !== null || child.signalCode !== null) {
      return Promise.resolve({ type: 'fatal', message: `load worker exited with code ${child.exitCode}` });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(child);
        resolve({ type: 'fatal', message: `load worker did not answer within ${Math.round(timeoutMs / 1000)} s` });
      }, timeoutMs);
      this.waiters.set(child, (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  }
}

function summarise(results: WorkerResult[], users: number): LoadSummary {
  const sum = (f: (r: WorkerResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const cat = (f: (r: WorkerResult) => number[]) => {
    const out: number[] = [];
    for (const r of results) for (const x of f(r)) out.push(x);
    return out;
  };
  const firstSend = Math.min(...results.map((r) => r.firstSendAt).filter((t) => t > 0));
  const lastReceive = Math.max(...results.map((r) => r.lastReceiveAt));
  const activeS = Number.isFinite(firstSend) && lastReceive > firstSend ? (lastReceive - firstSend) / 1000 : NaN;
  const received = sum((r) => r.received);
  const spiritReceived = sum((r) => r.spiritReceived);
  return {
    users,
    joined: sum((r) => r.joined),
    joinFailed: sum((r) => r.joinFailed),
    joinErrors: [...new Set(results.flatMap((r) => r.joinErrors))].slice(0, 10),
    joinS: Math.max(...results.map((r) => r.joinMs)) / 1000,
    sent: sum((r) => r.sent),
    expected: sum((r) => r.expected),
    received,
    lost: sum((r) => r.expected) - received,
    duplicated: sum((r) => r.duplicated),
    outOfOrder: sum((r) => r.outOfOrder),
    spiritExpected: sum((r) => r.spiritExpected),
    spiritReceived,
    spiritLost: sum((r) => r.spiritExpected) - spiritReceived,
    spiritDuplicated: sum((r) => r.spiritDuplicated),
    spiritBeforeQuestion: sum((r) => r.spiritBeforeQuestion),
    thinkingReceived: sum((r) => r.thinkingReceived),
    errors: sum((r) => r.errors),
    disconnects: sum((r) => r.disconnects),
    latency: percentiles(cat((r) => r.latencies)),
    spiritLatency: percentiles(cat((r) => r.spiritLatencies)),
    warmupLatency: percentiles(cat((r) => r.warmupLatencies)),
    sendLag: percentiles(cat((r) => r.sendLagMs)),
    activeS,
    deliveredPerS: received / activeS,
    generatorCpuS: sum((r) => r.cpuUserS + r.cpuSystemS),
    generatorTotalCpuS: sum((r) => r.cpuTotalS),
    generatorMaxCoreShare: Math.max(...results.map((r) => (r.cpuUserS + r.cpuSystemS) / Math.max(1e-9, r.wallS))),
  };
}

// ---------------------------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------------------------

/** One connected user: its receive-side bookkeeping and a way to send. */
interface Client {
  user: PlannedUser;
  send(text: string): void;
  close(): void;
  /** Per sender: which sequence numbers arrived, and the highest so far. */
  seen: Map<number, { bits: Uint8Array; last: number }>;
  questions: Set<number>;
  spirits: Set<number>;
  received: number;
  spiritReceived: number;
}

interface WorkerState {
  plan: WorkerPlan;
  clients: Client[];
  /** message id -> send time, filled by whichever local receiver sees it first. */
  sentAt: Map<number, number>;
  /** Sends before this (monotonic ms) are the warm-up's. */
  measureFrom: number;
  r: WorkerResult;
  startedAt: number;
  cpuStart: NodeJS.CpuUsage;
  onProgress: (() => void) | null;
}

const PAD = ' the planchette drifts toward the letters in the candlelight';

function messageText(sender: number, seq: number): string {
  return `bench ${sender} ${seq} ${Math.round(nowMs() * 1000)}${PAD}`;
}

function onMessageReceived(st: WorkerState, c: Client, data: { id: number; message: string }): void {
  const now = nowMs();
  const parts = data.message.split(' ', 4);
  if (parts[0] !== 'bench') return;
  const sender = Number(parts[1]);
  const seq = Number(parts[2]);
  const sentAt = Number(parts[3]) / 1000;
  let track = c.seen.get(sender);
  if (!track) c.seen.set(sender, (track = { bits: new Uint8Array(st.plan.messages), last: -1 }));
  if (track.bits[seq]) {
    st.r.duplicated++;
    return;
  }
  track.bits[seq] = 1;
  if (seq < track.last) st.r.outOfOrder++;
  else track.last = seq;
  c.received++;
  st.r.received++;
  (sentAt < st.measureFrom ? st.r.warmupLatencies : st.r.latencies).push(now - sentAt);
  st.r.lastReceiveAt = now;
  c.questions.add(data.id);
  if (!st.sentAt.has(data.id)) st.sentAt.set(data.id, sentAt);
  st.onProgress?.();
}

function onSpiritResponse(st: WorkerState, c: Client, data: { in_reply_to: number }): void {
  const now = nowMs();
  if (c.spirits.has(data.in_reply_to)) {
    st.r.spiritDuplicated++;
    return;
  }
  c.spirits.add(data.in_reply_to);
  if (!c.questions.has(data.in_reply_to)) st.r.spiritBeforeQuestion++;
  c.spiritReceived++;
  st.r.spiritReceived++;
  const sentAt = st.sentAt.get(data.in_reply_to);
  if (sentAt !== undefined && sentAt >= st.measureFrom) st.r.spiritLatencies.push(now - sentAt);
  st.r.lastReceiveAt = now;
  st.onProgress?.();
}

function connectSio(st: WorkerState, user: PlannedUser): Promise<Client> {
  const polling = st.plan.sioTransports.includes('polling');
  const opts: Record<string, unknown> = {
    auth: { session_id: user.sessionId, name: user.name, user_id: user.userId },
    transports: st.plan.sioTransports,
    reconnection: false,
    forceNew: true,
    timeout: st.plan.joinTimeoutMs,
    localAddress: user.localAddress,
  };
  if (polling) opts.agent = new http.Agent({ localAddress: user.localAddress, keepAlive: true });
  if (st.plan.sessionInQuery) opts.query = { session_id: user.sessionId };
  const socket: Socket = ioClient(user.baseUrl, opts);
  const client: Client = {
    user,
    send: (text) => socket.emit('send_message', { message: text }),
    close: () => socket.close(),
    seen: new Map(),
    questions: new Set(),
    spirits: new Set(),
    received: 0,
    spiritReceived: 0,
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('join timeout'));
    }, st.plan.joinTimeoutMs);
    socket.once('session_joined', () => {
      clearTimeout(timer);
      resolve(client);
    });
    socket.once('connect_error', (err: Error) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`connect_error ${err.message}`));
    });
    socket.on('message_received', (d: { id: number; message: string }) => onMessageReceived(st, client, d));
    socket.on('spirit_thinking', () => st.r.thinkingReceived++);
    socket.on('spirit_response', (d: { in_reply_to: number }) => onSpiritResponse(st, client, d));
    socket.on('error', () => st.r.errors++);
    socket.on('disconnect', (reason: string) => {
      if (reason !== 'io client disconnect') st.r.disconnects++;
    });
  });
}

function connectWs(st: WorkerState, user: PlannedUser): Promise<Client> {
  const wsUrl = user.baseUrl.replace(/^http/, 'ws');
  const ws = new WebSocket(`${wsUrl}/ws/${user.sessionId}`, { localAddress: user.localAddress, perMessageDeflate: false });
  let closing = false;
  const client: Client = {
    user,
    send: (text) => ws.send(JSON.stringify({ event: 'send_message', data: { message: text } })),
    close: () => {
      closing = true;
      ws.close();
    },
    seen: new Map(),
    questions: new Set(),
    spirits: new Set(),
    received: 0,
    spiritReceived: 0,
  };
  return new Promise((resolve, reject) => {
    let joined = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('join timeout'));
    }, st.plan.joinTimeoutMs);
    ws.once('open', () => ws.send(JSON.stringify({ user_id: user.userId, name: user.name })));
    ws.on('message', (raw) => {
      const frame = JSON.parse((raw as Buffer).toString()) as { event: string; data: { id: number; message: string; in_reply_to: number } };
      switch (frame.event) {
        case 'message_received':
          return onMessageReceived(st, client, frame.data);
        case 'spirit_thinking':
          st.r.thinkingReceived++;
          return;
        case 'spirit_response':
          return onSpiritResponse(st, client, frame.data);
        case 'session_joined':
          joined = true;
          clearTimeout(timer);
          return resolve(client);
        case 'error':
          st.r.errors++;
          return;
        default:
          return;
      }
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      if (!joined) reject(new Error(`closed ${code} before joining`));
      else if (!closing) st.r.disconnects++;
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (err) => {
      if (!joined) {
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

async function joinAll(st: WorkerState): Promise<{ failed: number; errors: string[] }> {
  const errors: string[] = [];
  let failed = 0;
  let next = 0;
  const lane = async () => {
    while (next < st.plan.users.length) {
      const user = st.plan.users[next++];
      try {
        st.clients.push(await (user.transport === 'sio' ? connectSio(st, user) : connectWs(st, user)));
      } catch (err) {
        failed++;
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, st.plan.joinConcurrency) }, lane));
  return { failed, errors: [...new Set(errors)].slice(0, 10) };
}

/** Sends on schedule, then resolves once everything expected arrived or the drain ran out. */
function runTraffic(st: WorkerState, t0: number, senders: Record<string, number>): Promise<void> {
  const { plan, r } = st;
  const intervalMs = plan.rate > 0 ? 1000 / plan.rate : 0;
  // Every receiver is owed every message of every user that joined its session (on any
  // worker); a user whose join failed sends nothing and is reported as a join failure.
  for (const c of st.clients) {
    r.expected += (senders[c.user.sessionId] ?? 0) * plan.messages;
    r.spiritExpected += (senders[c.user.sessionId] ?? 0) * plan.messages;
  }
  const done = () => r.received >= r.expected && r.spiritReceived >= r.spiritExpected;

  return new Promise((resolve) => {
    let sendsLeft = plan.messages > 0 ? st.clients.length : 0;
    let drainTimer: NodeJS.Timeout | null = null;
    const finish = () => {
      if (drainTimer) clearTimeout(drainTimer);
      st.onProgress = null;
      resolve();
    };
    const maybeDrain = () => {
      if (sendsLeft > 0) return;
      if (done()) return finish();
      st.onProgress = () => {
        if (done()) finish();
      };
      drainTimer = setTimeout(finish, plan.drainMs);
    };
    if (sendsLeft === 0) return maybeDrain();
    st.clients.forEach((c, i) => {
      // Users start spread evenly over one interval, so sends do not come in bursts.
      const phase = intervalMs * ((i * 0.618034) % 1);
      let seq = 0;
      const tick = () => {
        const due = t0 + phase + seq * intervalMs;
        const lag = nowMs() - due;
        if (r.firstSendAt === 0 || due < r.firstSendAt) r.firstSendAt = Math.max(due, t0);
        r.sendLagMs.push(lag);
        c.send(messageText(c.user.index, seq));
        r.sent++;
        seq++;
        if (seq >= plan.messages) {
          sendsLeft--;
          maybeDrain();
          return;
        }
        setTimeout(tick, Math.max(0, t0 + phase + seq * intervalMs - nowMs()));
      };
      setTimeout(tick, Math.max(0, t0 + phase - nowMs()));
    });
  });
}

function workerMain(): void {
  let st: WorkerState | null = null;
  const reply = (msg: FromWorker) => process.send!(msg);
  process.on('message', (msg: ToWorker) => {
    void (async () => {
      try {
        if (msg.type === 'plan') {
          const started = nowMs();
          st = {
            plan: msg.plan,
            clients: [],
            sentAt: new Map(),
            measureFrom: Infinity,
            startedAt: started,
            cpuStart: process.cpuUsage(),
            onProgress: null,
            r: {
              joined: 0,
              joinFailed: 0,
              joinErrors: [],
              joinMs: 0,
              sent: 0,
              expected: 0,
              received: 0,
              duplicated: 0,
              outOfOrder: 0,
              spiritExpected: 0,
              spiritReceived: 0,
              spiritDuplicated: 0,
              spiritBeforeQuestion: 0,
              thinkingReceived: 0,
              errors: 0,
              disconnects: 0,
              latencies: [],
              spiritLatencies: [],
              warmupLatencies: [],
              sendLagMs: [],
              firstSendAt: 0,
              lastReceiveAt: 0,
              cpuUserS: 0,
              cpuSystemS: 0,
              cpuTotalS: 0,
              wallS: 0,
            },
          };
          const { failed, errors } = await joinAll(st);
          Object.assign(st.r, { joined: st.clients.length, joinFailed: failed, joinErrors: errors, joinMs: nowMs() - started });
          const sessions: Record<string, number> = {};
          for (const c of st.clients) sessions[c.user.sessionId] = (sessions[c.user.sessionId] ?? 0) + 1;
          reply({ type: 'joined', joined: st.clients.length, failed, errors, ms: nowMs() - started, sessions });
        } else if (msg.type === 'go' && st) {
          const wallStart = nowMs();
          const cpuStart = process.cpuUsage();
          st.measureFrom = msg.t0 + st.plan.warmupMs;
          await runTraffic(st, msg.t0, msg.senders);
          const cpu = process.cpuUsage(cpuStart);
          const total = process.cpuUsage(st.cpuStart);
          Object.assign(st.r, { cpuUserS: cpu.user / 1e6, cpuSystemS: cpu.system / 1e6, cpuTotalS: (total.user + total.system) / 1e6, wallS: (nowMs() - wallStart) / 1000 });
          reply({ type: 'done', result: st.r });
        } else if (msg.type === 'close') {
          for (const c of st?.clients ?? []) c.close();
          // Give close frames a moment to leave, then go.
          setTimeout(() => process.exit(0), 300);
        }
      } catch (err) {
        reply({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// Standalone CLI
// ---------------------------------------------------------------------------------------

/** Creates sessions over REST (project and floor answer the same envelope). */
export async function createSessions(baseUrl: string, count: number, maxUsers: number, concurrency = 16): Promise<string[]> {
  const ids = new Array<string>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const res = await fetch(`${baseUrl}/api/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `bench ${i}`, max_users: maxUsers }),
      });
      const body = (await res.json()) as { data?: { id?: string } };
      if (res.status !== 201 || !body.data?.id) throw new Error(`POST /api/sessions: HTTP ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      ids[i] = body.data.id;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return ids;
}

/** Users of S sessions: transports per the mix, targets (node or nginx URLs) round-robin. */
export function planUsers(sessionIds: string[], usersPerSession: number, mix: TransportMix, targets: string[], firstIndex = 0): PlannedUser[] {
  const users: PlannedUser[] = [];
  sessionIds.forEach((sessionId, s) => {
    for (let u = 0; u < usersPerSession; u++) {
      const index = firstIndex + s * usersPerSession + u;
      users.push({
        index,
        sessionId,
        userId: `bench-${index}`,
        name: `Bench ${index}`,
        transport: mix === 'mixed' ? (u % 2 === 0 ? 'sio' : 'ws') : mix,
        baseUrl: targets[index % targets.length],
        localAddress: sourceAddress(index),
        sessionSize: usersPerSession,
      });
    }
  });
  return users;
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      sessions: { type: 'string', default: '50' },
      users: { type: 'string', default: '6' },
      rate: { type: 'string', default: '2' },
      messages: { type: 'string', default: '20' },
      transport: { type: 'string', default: 'sio' },
      workers: { type: 'string', default: '1' },
    },
  });
  if (!values.url) throw new Error('usage: tsx bench/load.ts --url http://127.0.0.1:PORT [--sessions 50 --users 6 --rate 2 --messages 20 --transport sio|ws|mixed]');
  const users = Number(values.users);
  const ids = await createSessions(values.url, Number(values.sessions), Math.max(2, users));
  const gen = new LoadGenerator(planUsers(ids, users, values.transport as TransportMix, values.url.split(',')), {
    workers: Number(values.workers),
    messages: Number(values.messages),
    rate: Number(values.rate),
    drainMs: 5_000,
    joinTimeoutMs: 15_000,
    joinConcurrency: 50,
    sioTransports: ['websocket'],
    warmupMs: WARMUP_MS,
  });
  try {
    const joined = await gen.join();
    process.stdout.write(`joined ${joined.joined} (failed ${joined.failed}) in ${joined.s.toFixed(1)} s\n`);
    const s = await gen.go();
    const { latency, spiritLatency, sendLag, ...rest } = s;
    process.stdout.write(`${JSON.stringify({ ...rest, latency, spiritLatency, sendLag }, null, 2)}\n`);
  } finally {
    await gen.close();
  }
}

if (process.argv.includes('--worker') && process.send) workerMain();
else if (require.main === module) {
  cli().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
