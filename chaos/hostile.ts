/**
 * Hostile clients for a chaos run (`--hostile`): beside the well-behaved sitters, clients
 * that impersonate a connected participant, never read, flood `typing` and messages, open
 * connection after connection, and spoof `X-Forwarded-For`. Each actor counts what it
 * tried and what the cluster refused, by rule; every loop is bounded in count and time.
 */
import fs from 'node:fs';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

/** The rules a hostile action runs into, as the table names them. */
export const HOSTILE_RULES = ['impersonation', 'never-read', 'typing-flood', 'message-flood', 'connection-flood', 'spoofed-address'] as const;
export type HostileRule = (typeof HOSTILE_RULES)[number];

export interface HostileCount {
  /** Actions tried (joins, frames, requests). */
  tried: number;
  /** Refused or cut off by the rule that protects the others. */
  refused: number;
  /** Let through although the rule should have refused them (an impostor admitted while its holder answered). */
  wrongly: number;
  /** How the cluster refused, e.g. "USER_ID_TAKEN", "close 1008". */
  how: Set<string>;
}

/** A well-behaved client the impersonators may target: who it is and whether it is in its session now. */
export interface Target {
  sessionId: string;
  userId: string;
  joined: () => boolean;
}

export interface HostileOptions {
  /** nginx's URL. */
  url: string;
  /** The well-behaved sessions (never-readers and typing flooders join them). */
  sessions: string[];
  targets: Target[];
  /** Sessions of their own for the message and connection floods (not judged by the checker). */
  hostileSessions: string[];
  random: () => number;
  /** The limits the nodes run with, so the floods are sized past them. */
  maxConnectionsPerAddress: number;
  sessionCreatesPerMinute: number;
}

/** Source addresses apart from the sitters' 127.77.x.y, one per actor. */
const address = (n: number) => `127.66.0.${n}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const wsUrl = (url: string, sessionId: string) => `${url.replace(/^http/, 'ws')}/ws/${sessionId}`;

async function participantIds(url: string, sessionId: string): Promise<string[] | null> {
  try {
    const res = await fetch(`${url}/api/sessions/${sessionId}/participants`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { data?: Array<{ id: string }> };
    return res.ok && Array.isArray(body.data) ? body.data.map((p) => p.id) : null;
  } catch {
    return null;
  }
}

interface RawOutcome {
  joined: boolean;
  /** The error frame's code or the close code, whichever came. */
  code: string | null;
  ws: WebSocket;
  token?: string;
}

/** Opens a raw connection and sends its first frame; resolves at session_joined or at the refusal. */
function rawJoin(url: string, sessionId: string, first: object, localAddress: string, timeoutMs = 10_000): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl(url, sessionId), { localAddress, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    let code: string | null = null;
    const done = (outcome: RawOutcome) => {
      clearTimeout(timer);
      ws.removeAllListeners('message');
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      done({ joined: false, code: 'timeout', ws });
    }, timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify(first)));
    ws.on('message', (raw) => {
      let frame: { event?: string; data?: { code?: string; token?: string } };
      try {
        frame = JSON.parse((raw as Buffer).toString()) as typeof frame;
      } catch {
        return;
      }
      if (frame.event === 'session_joined') done({ joined: true, code: null, ws, token: frame.data?.token });
      else if (frame.event === 'error') code = String(frame.data?.code);
    });
    ws.on('close', (closeCode) => done({ joined: false, code: code ?? `close ${closeCode}`, ws }));
    ws.on('error', () => undefined);
  });
}

export class HostileCrowd {
  readonly counts = new Map<HostileRule, HostileCount>(HOSTILE_RULES.map((r) => [r, { tried: 0, refused: 0, wrongly: 0, how: new Set<string>() }]));
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly sockets = new Set<WebSocket>();
  private readonly ioSockets = new Set<Socket>();

  constructor(private readonly opts: HostileOptions) {}

  private count(rule: HostileRule, refused: boolean, how?: string, wrongly = false): void {
    const c = this.counts.get(rule)!;
    c.tried++;
    if (refused) c.refused++;
    if (wrongly) c.wrongly++;
    if (how) c.how.add(how);
  }

  start(): void {
    this.running = true;
    this.loops.push(this.impersonate(), this.neverRead(), this.floodTyping(), this.floodMessages(), this.floodConnections(), this.spoofAddress());
  }

  /** Stops every actor and closes what they opened (so presence ends true). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.allSettled(this.loops);
    for (const ws of this.sockets) ws.terminate();
    for (const s of this.ioSockets) s.close();
    this.sockets.clear();
    this.ioSockets.clear();
  }

  /** Joins like rawJoin, again and again while a fault keeps the session's node away (bounded). */
  private async joinRetrying(sessionId: string, first: object, localAddress: string): Promise<RawOutcome | null> {
    for (let attempt = 0; attempt < 10 && this.running; attempt++) {
      const outcome = await rawJoin(this.opts.url, sessionId, first, localAddress);
      if (outcome.joined) return outcome;
      outcome.ws.terminate();
      await sleep(1000);
    }
    return null;
  }

  private keep(ws: WebSocket): WebSocket {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    return ws;
  }

  /** Every 1.5 s, joins as a sitter who is in its session right now, without its token, on either transport. */
  private async impersonate(): Promise<void> {
    let n = 0;
    while (this.running && n < 400) {
      await sleep(1500);
      const present = this.opts.targets.filter((t) => t.joined());
      if (present.length === 0) continue;
      const target = present[Math.floor(this.opts.random() * present.length)];
      const first = { user_id: target.userId, name: 'Impostor' };
      let code: string | null;
      let joined: boolean;
      if (n++ % 2 === 0) {
        const outcome = await rawJoin(this.opts.url, target.sessionId, first, address(1));
        outcome.ws.terminate();
        ({ code, joined } = outcome);
      } else {
        ({ code, joined } = await this.ioJoin(target.sessionId, first, address(1)));
      }
      // Admitted is right only when the sitter's connections were gone (it dropped meanwhile):
      // the cluster then takes the newcomer for the same participant. Counted, not judged.
      // A refusal for another reason (a node draining, a timeout) says nothing of this rule.
      if (!joined && code !== 'USER_ID_TAKEN' && code !== 'close 4409') continue;
      this.count('impersonation', !joined, code ?? undefined, joined && target.joined());
    }
  }

  private ioJoin(sessionId: string, auth: object, localAddress: string): Promise<{ joined: boolean; code: string | null }> {
    return new Promise((resolve) => {
      const socket = ioClient(this.opts.url, { auth: { session_id: sessionId, ...auth }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 8000, localAddress } as object);
      const done = (joined: boolean, code: string | null) => {
        clearTimeout(timer);
        socket.close();
        resolve({ joined, code });
      };
      const timer = setTimeout(() => done(false, 'timeout'), 10_000);
      socket.on('session_joined', () => done(true, null));
      socket.on('connect_error', (err: Error & { data?: { code?: string } }) => done(false, String(err.data?.code ?? err.message)));
    });
  }

  /**
   * Raw participants of the sitters' sessions that stop reading at once. Whether the node cuts
   * them off within the run depends on how fast the kernel's buffers fill (counted, not
   * judged); what is judged is that the node's memory stays bounded meanwhile.
   */
  private async neverRead(): Promise<void> {
    const readers = this.opts.sessions.slice(0, 5).map(async (sessionId, i) => {
      const userId = `never-read-${i}`;
      const outcome = await this.joinRetrying(sessionId, { user_id: userId, name: 'Never reads' }, address(2));
      if (!outcome) return;
      const ws = this.keep(outcome.ws);
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      // A paused socket does not see its own close: ask the cluster whether it is still a participant.
      let cutOff = false;
      while (this.running && !cutOff) {
        await sleep(2000);
        const listed = await participantIds(this.opts.url, sessionId);
        cutOff = listed !== null && !listed.includes(userId);
      }
      this.count('never-read', cutOff, cutOff ? 'cut off' : undefined);
    });
    await Promise.allSettled(readers);
  }

  /** One raw participant per sitters' session sending `typing` far past its event budget. */
  private async floodTyping(): Promise<void> {
    const floods = this.opts.sessions.slice(0, 3).map(async (sessionId, i) => {
      const outcome = await this.joinRetrying(sessionId, { user_id: `typist-${i}`, name: 'Typist' }, address(3));
      if (!outcome) return;
      const ws = this.keep(outcome.ws);
      let refusals = 0;
      ws.on('message', (raw) => {
        if ((raw as Buffer).toString().includes('"RATE_LIMITED"')) refusals++;
      });
      // 50 frames every 100 ms (500/s, 25 times the budget), at most 10,000.
      for (let sent = 0; this.running && sent < 10_000 && ws.readyState === WebSocket.OPEN; sent += 50) {
        for (let k = 0; k < 50; k++) ws.send('{"event":"typing","data":{}}');
        await sleep(100);
      }
      const c = this.counts.get('typing-flood')!;
      // Tried: the frames; refused: the RATE_LIMITED answers (at most one a second is promised).
      c.tried += 1;
      if (refusals > 0) {
        c.refused += 1;
        c.how.add(`RATE_LIMITED ×${refusals}`);
      }
    });
    await Promise.allSettled(floods);
  }

  /** A participant of a hostile session sending messages as fast as its socket takes them. */
  private async floodMessages(): Promise<void> {
    const sessionId = this.opts.hostileSessions[0];
    const outcome = await this.joinRetrying(sessionId, { user_id: 'flooder', name: 'Flooder' }, address(4));
    if (!outcome) return;
    const ws = this.keep(outcome.ws);
    let refusals = 0;
    ws.on('message', (raw) => {
      if ((raw as Buffer).toString().includes('"RATE_LIMITED"')) refusals++;
    });
    let sent = 0;
    // 10 messages every 100 ms (100/s, five times the event budget), at most 3,000.
    for (; this.running && sent < 3000 && ws.readyState === WebSocket.OPEN; sent += 10) {
      for (let k = 0; k < 10; k++) ws.send(JSON.stringify({ event: 'send_message', data: { message: `flood ${sent + k}` } }));
      await sleep(100);
    }
    const c = this.counts.get('message-flood')!;
    c.tried += sent;
    c.refused += Math.min(refusals, sent);
    if (refusals) c.how.add('RATE_LIMITED');
  }

  /** One address opening connection after connection: past the per-address and per-participant caps. */
  private async floodConnections(): Promise<void> {
    const sessions = this.opts.hostileSessions;
    // The same participant again and again (with its token), then many participants from one address.
    const first = await this.joinRetrying(sessions[1], { user_id: 'many-tabs', name: 'Tabs' }, address(5));
    if (first) {
      this.keep(first.ws);
      for (let i = 0; i < 10 && this.running; i++) {
        const again = await rawJoin(this.opts.url, sessions[1], { user_id: 'many-tabs', name: 'Tabs', token: first.token }, address(5));
        if (again.joined) this.keep(again.ws);
        this.count('connection-flood', !again.joined, again.code ?? undefined);
      }
    }
    const budget = this.opts.maxConnectionsPerAddress * 3 + 10;
    for (let i = 0; i < budget && this.running; i++) {
      const sessionId = sessions[2 + (i % (sessions.length - 2))];
      const outcome = await rawJoin(this.opts.url, sessionId, { user_id: `crowd-${i}`, name: 'Crowd' }, address(6));
      if (outcome.joined) this.keep(outcome.ws);
      // A full session is the session's limit, not this rule's: not counted.
      if (outcome.code === 'SESSION_FULL' || outcome.code === 'timeout') continue;
      this.count('connection-flood', !outcome.joined, outcome.code ?? undefined);
    }
  }

  /** Session creations from one address, each claiming another in X-Forwarded-For. */
  private async spoofAddress(): Promise<void> {
    // Past the limit until it refuses a few: a Redis restart meanwhile starts the count again
    // (and the node's insurance limiter counts alone while Redis is away), so no fixed number
    // of tries is surely enough. Bounded all the same.
    const c = this.counts.get('spoofed-address')!;
    for (let i = 0; i < this.opts.sessionCreatesPerMinute * 6 && c.refused < 5 && this.running; i++) {
      try {
        const res = await fetch(`${this.opts.url}/api/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.${(i % 250) + 1}` },
          body: JSON.stringify({ name: 'Spoofed' }),
          signal: AbortSignal.timeout(5000),
        });
        await res.arrayBuffer();
        if (res.status === 201 || res.status === 429) this.count('spoofed-address', res.status === 429, res.status === 429 ? '429' : undefined);
      } catch {
        // A node dying mid-request: not the rule's doing.
      }
      await sleep(50);
    }
  }
}

/** Samples each node's resident memory every second (by PID, from /proc), keeping each node's peak. */
export class MemoryWatch {
  readonly peakMb = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  start(nodes: () => Array<{ nodeId: string; pid: number }>): void {
    const sample = () => {
      for (const n of nodes()) {
        const mb = residentMb(n.pid);
        if (mb !== null && mb > (this.peakMb.get(n.nodeId) ?? 0)) this.peakMb.set(n.nodeId, mb);
      }
    };
    sample();
    this.timer = setInterval(sample, 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

function residentMb(pid: number): number | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Math.round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}

/** Peak resident memory a node may reach in a hostile run. */
export const PEAK_RSS_LIMIT_MB = 400;

export interface HostileReport {
  startedAtMs: number;
  rules: Array<{ rule: HostileRule; tried: number; refused: number; wrongly: number; how: string }>;
  peakRssMb: Record<string, number>;
  /** Sitters' delivery latency (a message sent to its arrival at each other sitter), before and after the hostile clients came. */
  delivery: { calm: Percentiles; hostile: Percentiles };
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p99: number | null;
}

/** Rules whose refusals do not depend on timing: each must refuse something in every run. */
const ALWAYS_REFUSED: HostileRule[] = ['impersonation', 'typing-flood', 'message-flood', 'connection-flood', 'spoofed-address'];

export function hostileFailures(r: HostileReport): string[] {
  const failures: string[] = [];
  for (const row of r.rules) {
    if (ALWAYS_REFUSED.includes(row.rule) && row.tried > 0 && row.refused === 0) failures.push(`hostile ${row.rule}: ${row.tried} tried, none refused`);
  }
  for (const [node, mb] of Object.entries(r.peakRssMb)) if (mb > PEAK_RSS_LIMIT_MB) failures.push(`${node} peaked at ${mb} MB resident (limit ${PEAK_RSS_LIMIT_MB})`);
  return failures;
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : null);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99) };
}

/**
 * Delivery latency from the sitters' own logs: a message's `sent` time at its sender to its
 * live arrival at each other sitter (both clocks are the run's), split at `splitMs`.
 */
export function deliveryLatency(logs: Array<ReadonlyArray<{ t: number; type: string; token?: string; m?: { token: string | null } }>>, splitMs: number): { calm: Percentiles; hostile: Percentiles } {
  const sentAt = new Map<string, number>();
  for (const log of logs) for (const e of log) if (e.type === 'sent' && e.token) sentAt.set(e.token, e.t);
  const calm: number[] = [];
  const hostile: number[] = [];
  for (const log of logs) {
    const own = new Set(log.filter((e) => e.type === 'sent').map((e) => e.token));
    for (const e of log) {
      const token = e.type === 'message' ? e.m?.token : null;
      if (!token || own.has(token)) continue;
      const t0 = sentAt.get(token);
      if (t0 === undefined) continue;
      (t0 < splitMs ? calm : hostile).push(e.t - t0);
    }
  }
  return { calm: percentiles(calm), hostile: percentiles(hostile) };
}

export function formatHostile(r: HostileReport, table: (head: string[], rows: Array<Array<string | number>>) => string): string {
  const ms = (v: number | null) => (v === null ? '-' : `${v}`);
  const out = [
    `Hostile clients from ${(r.startedAtMs / 1000).toFixed(0)} s`,
    '',
    table(
      ['hostile action', 'tried', 'refused', 'admitted while holder answered?', 'how'],
      r.rules.map((row) => [row.rule, row.tried, row.refused, row.wrongly, row.how || '-']),
    ),
    '',
    table(
      ['sitters, delivery ms', 'messages', 'p50', 'p99'],
      [
        ['before the hostile clients', r.delivery.calm.n, ms(r.delivery.calm.p50), ms(r.delivery.calm.p99)],
        ['with the hostile clients', r.delivery.hostile.n, ms(r.delivery.hostile.p50), ms(r.delivery.hostile.p99)],
      ],
    ),
    '',
    `peak resident memory, MB (limit ${PEAK_RSS_LIMIT_MB}): ${Object.entries(r.peakRssMb)
      .sort()
      .map(([n, mb]) => `${n} ${mb}`)
      .join(', ')}`,
  ];
  return out.join('\n');
}

export function hostileReport(crowd: HostileCrowd, startedAtMs: number, memory: MemoryWatch, delivery: HostileReport['delivery']): HostileReport {
  return {
    startedAtMs,
    rules: HOSTILE_RULES.map((rule) => {
      const c = crowd.counts.get(rule)!;
      return { rule, tried: c.tried, refused: c.refused, wrongly: c.wrongly, how: [...c.how].sort().join(', ') };
    }),
    peakRssMb: Object.fromEntries(memory.peakMb),
    delivery,
  };
}
