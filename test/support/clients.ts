/**
 * Real clients for tests: fetch for REST, socket.io-client, and `ws` for the raw path.
 * Every received event lands in an Inbox that tests await with a timeout, never a sleep.
 */
import { io as ioClient, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';
import type { ClientToServerEvents, ServerToClientEvents } from '../../server/events';

export interface HttpReply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export async function http(baseUrl: string, method: string, path: string, opts: { json?: unknown; body?: string; headers?: Record<string, string> } = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(baseUrl + path, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (HTML docs, empty redirects)
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export interface Received {
  event: string;
  data: any;
  /** Date.now() when it arrived. */
  at: number;
}

/** Everything one connection received, in order, with waits that fail loudly on timeout. */
export class Inbox {
  readonly events: Received[] = [];
  private waiters: Array<{ match: (r: Received) => boolean; resolve: (r: Received) => void }> = [];

  push(event: string, data: unknown): void {
    const received = { event, data, at: Date.now() };
    this.events.push(received);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(received)) return true;
      w.resolve(received);
      return false;
    });
  }

  /** When the first `event` whose data satisfies `predicate` arrived (it must have). */
  arrivalOf(event: string, predicate: (data: any) => boolean = () => true): number {
    const found = this.events.find((r) => r.event === event && predicate(r.data));
    if (!found) throw new Error(`no "${event}" received`);
    return found.at;
  }

  of(event: string): any[] {
    return this.events.filter((e) => e.event === event).map((e) => e.data);
  }

  /** The first `event` (already received or still to come) whose data satisfies `predicate`. */
  waitFor(event: string, predicate: (data: any) => boolean = () => true, timeoutMs = 5000): Promise<any> {
    const match = (r: Received) => r.event === event && predicate(r.data);
    const found = this.events.find(match);
    if (found) return Promise.resolve(found.data);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"; got: ${this.events.map((e) => e.event).join(', ') || 'nothing'}`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (r: Received) => {
          clearTimeout(timer);
          resolve(r.data);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Waits until `count` events of a kind have arrived; returns their data in order. */
  async waitForCount(event: string, count: number, timeoutMs = 10000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.of(event).length < count) {
      const seen = this.of(event).length;
      await this.waitFor(event, () => this.of(event).length > seen, Math.max(1, deadline - Date.now())).catch(() => {
        throw new Error(`timed out waiting for ${count} "${event}" events; got ${this.of(event).length}`);
      });
    }
    return this.of(event).slice(0, count);
  }
}

export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents> & { inbox: Inbox };

export function socketClient(url: string, auth: Record<string, unknown>, opts: Partial<ManagerOptions & SocketOptions> = {}): TestSocket {
  const socket = ioClient(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true, ...opts }) as TestSocket;
  socket.inbox = new Inbox();
  socket.onAny((event: string, data: unknown) => socket.inbox.push(event, data));
  socket.on('connect_error', (err: Error & { data?: unknown }) => socket.inbox.push('connect_error', { message: err.message, data: err.data }));
  socket.on('disconnect', (reason) => socket.inbox.push('disconnect', reason));
  return socket;
}

/** Connects and resolves once `session_joined` arrives; rejects with the refusal otherwise. */
export async function joinSocket(url: string, auth: Record<string, unknown>, opts: Partial<ManagerOptions & SocketOptions> = {}): Promise<TestSocket> {
  const socket = socketClient(url, auth, opts);
  const outcome = await Promise.race([socket.inbox.waitFor('session_joined', () => true, 8000).then(() => null), socket.inbox.waitFor('connect_error', () => true, 8000)]);
  if (outcome) {
    socket.close();
    const err = new Error(`join refused: ${outcome.message}`) as Error & { refusal: unknown };
    err.refusal = outcome;
    throw err;
  }
  return socket;
}

/** Emits send_message and resolves with the acknowledgement. */
export function sendWithAck(socket: TestSocket, data: unknown, timeoutMs = 5000): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no acknowledgement')), timeoutMs);
    (socket.emit as any)('send_message', data, (reply: unknown) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

export class RawClient {
  readonly inbox = new Inbox();
  readonly frames: any[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (raw) => {
      const frame = JSON.parse((raw as Buffer).toString());
      this.frames.push(frame);
      this.inbox.push(frame.event, frame.data);
    });
    ws.on('error', () => undefined);
  }

  static async connect(wsUrl: string, sessionId: string, opts: WebSocket.ClientOptions & { query?: string } = {}): Promise<RawClient> {
    const { query, ...wsOpts } = opts;
    const client = new RawClient(new WebSocket(`${wsUrl}/ws/${sessionId}${query ? `?${query}` : ''}`, wsOpts));
    await client.opened;
    return client;
  }

  /** Connects, identifies with `identity`, and resolves once `session_joined` arrived. */
  static async join(wsUrl: string, sessionId: string, identity: Record<string, unknown>, opts: WebSocket.ClientOptions & { query?: string } = {}): Promise<RawClient> {
    const client = await RawClient.connect(wsUrl, sessionId, opts);
    client.send(identity);
    await Promise.race([
      client.inbox.waitFor('session_joined'),
      client.closed.then((c) => {
        throw new Error(`join refused: close ${c.code} ${JSON.stringify(client.inbox.of('error'))}`);
      }),
    ]);
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(): void {
    this.ws.close();
  }
}

/** Every seq a connection was shown, in order: its welcome's messages, then the live events. */
export function seqsSeen(inbox: { events: Array<{ event: string; data: any }> }): number[] {
  const seqs: number[] = [];
  for (const { event, data } of inbox.events) {
    if (event === 'session_joined') seqs.push(...data.messages.map((m: any) => m.seq));
    if (event === 'message_received' || event === 'spirit_response') seqs.push(data.seq);
  }
  return seqs;
}
