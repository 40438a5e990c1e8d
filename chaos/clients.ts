/**
 * Chaos participants: real socket.io-client and raw `ws` clients that chat, drop and come
 * back the way browsers do, resuming with the last `seq` they saw. Each keeps a log of what
 * it sent, what was acknowledged and every stored message it received; the checker judges
 * the run from these logs alone.
 */
import http from 'node:http';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

export type Transport = 'sio' | 'sio-polling' | 'raw';

/** One line of a client's log. `t` is ms since the run started. */
export type ClientLogEntry =
  | { t: number; type: 'connecting'; last_seq: number | null }
  | { t: number; type: 'joined'; resumed: boolean | null; last_seq: number | null; messages: SeenMessage[] }
  | { t: number; type: 'message'; m: SeenMessage }
  | { t: number; type: 'sent'; token: string }
  /** The same message sent again after a reconnect: the node it went to never stored it. */
  | { t: number; type: 'resent'; token: string }
  | { t: number; type: 'ack'; token: string; ok: boolean; id?: number; seq?: number; code?: string }
  | { t: number; type: 'error'; code: string }
  | { t: number; type: 'refused'; code: string }
  | { t: number; type: 'disconnected'; reason: string }
  | { t: number; type: 'drop'; ms: number };

/** A stored message as one client saw it. */
export interface SeenMessage {
  id: number;
  seq: number | null;
  spirit: boolean;
  /** The sender's token (`[c12-7]`) for participants' messages, else null. */
  token: string | null;
  /** A live spirit_response's question (history items do not carry it). */
  reply_to?: number;
}

export interface ClientSpec {
  index: number;
  transport: Transport;
  sessionId: string;
  userId: string;
  name: string;
  /** nginx's URL. */
  url: string;
  /** A distinct loopback source address, so nginx's hash spreads Socket.IO clients over the nodes. */
  localAddress: string;
}

export interface ClientTiming {
  /** Mean gap between two messages. */
  messageEveryMs: number;
  /** Mean gap between two voluntary drops (a phone losing its network); Infinity for none. */
  dropEveryMs: number;
  /** Longest voluntary drop. */
  dropMaxMs: number;
}

/** The wire's objects, as loosely as a client must read them (any field may be missing). */
interface WireMessage {
  id?: number;
  seq?: number;
  in_reply_to?: number;
  message?: string;
  is_spirit?: boolean;
}
interface WireJoined {
  messages?: WireMessage[];
  resumed?: boolean;
  token?: string;
}
interface WireAck {
  ok?: boolean;
  id?: number;
  seq?: number;
  error?: { code?: string };
}
interface WireError {
  code?: string;
}
interface WireFrame {
  event?: string;
  data?: unknown;
}

const TOKEN = /\[(c\d+-\d+)\]/;

function messageText(token: string): string {
  return `is anyone there? [${token}]`;
}

export function tokenOf(text: unknown): string | null {
  if (typeof text !== 'string') return null;
  return TOKEN.exec(text)?.[1] ?? null;
}

function seen(data: WireMessage | undefined, spirit: boolean): SeenMessage {
  return {
    id: Number(data?.id),
    seq: typeof data?.seq === 'number' && Number.isInteger(data.seq) ? data.seq : null,
    spirit,
    token: spirit ? null : tokenOf(data?.message),
    ...(spirit && typeof data?.in_reply_to === 'number' ? { reply_to: data.in_reply_to } : {}),
  };
}

/** Time since the run started, shared by every log. */
export type Clock = () => number;

export interface ClientBehaviour {
  /**
   * After a reconnect, send again what the last connection left unconfirmed and the session
   * does not hold (a message refused by a node that is restarting, or whose acknowledgement
   * went down with the connection), as an app should. Only safe where nodes drain (SIGTERM):
   * a frozen node can still store the first copy after its client gave up on it, so the
   * chaos run leaves this off and counts such messages as unconfirmed instead.
   */
  resendUnconfirmed?: boolean;
}

export abstract class ChaosClient {
  readonly log: ClientLogEntry[] = [];
  /** Highest seq seen: what a reconnect resumes from (null before the first join). */
  lastSeq: number | null = null;
  /** True between session_joined and the end of that connection. */
  joined = false;
  protected sent = 0;
  private chatting = false;
  private chatTimer: NodeJS.Timeout | null = null;
  private dropTimer: NodeJS.Timeout | null = null;
  protected closedForGood = false;
  private readonly pendingAcks = new Set<string>();
  /** Unconfirmed when their connection ended: settled on the next join (resendUnconfirmed). */
  private readonly inDoubt = new Set<string>();
  /** This client's own messages as the session stored them, by token. */
  private readonly ownStored = new Map<string, SeenMessage>();
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly spec: ClientSpec,
    protected readonly clock: Clock,
    protected readonly random: () => number,
    private readonly behaviour: ClientBehaviour = {},
  ) {}

  protected record(entry: ClientLogEntry): void {
    this.log.push(entry);
    for (const wake of this.waiters) wake();
  }

  /** Resolves when `check` holds, re-checked on every log entry; rejects after `timeoutMs`. */
  waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`client ${this.spec.index}: ${what} not within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  get unacknowledged(): number {
    return this.pendingAcks.size;
  }

  protected onJoined(data: WireJoined | undefined, lastSeqSent: number | null): void {
    const messages = Array.isArray(data?.messages) ? data.messages.map((m) => seen(m, m?.is_spirit === true)) : [];
    this.joined = true;
    this.record({ t: this.clock(), type: 'joined', resumed: typeof data?.resumed === 'boolean' ? data.resumed : null, last_seq: lastSeqSent, messages });
    let top = this.lastSeq ?? 0;
    for (const m of messages) if (m.seq !== null && m.seq > top) top = m.seq;
    this.lastSeq = top;
  }

  protected onStored(data: WireMessage | undefined, spirit: boolean): void {
    const m = seen(data, spirit);
    this.record({ t: this.clock(), type: 'message', m });
    if (m.token) this.ownStored.set(m.token, m);
    if (m.token && this.pendingAcks.has(m.token) && this.spec.transport === 'raw') {
      // The raw protocol has no acknowledgement: a client's own message coming back is one.
      this.pendingAcks.delete(m.token);
      this.record({ t: this.clock(), type: 'ack', token: m.token, ok: true, id: m.id, seq: m.seq ?? undefined });
    }
    if (m.seq !== null && (this.lastSeq === null || m.seq > this.lastSeq)) this.lastSeq = m.seq;
  }

  protected onResumeMessages(messages: SeenMessage[]): void {
    // A raw client learns that a message it sent before a drop was stored when the resume returns it.
    for (const m of messages) {
      if (m.token) this.ownStored.set(m.token, m);
      if (m.token && this.pendingAcks.has(m.token) && this.spec.transport === 'raw') {
        this.pendingAcks.delete(m.token);
        this.record({ t: this.clock(), type: 'ack', token: m.token, ok: true, id: m.id, seq: m.seq ?? undefined });
      }
    }
    if (this.behaviour.resendUnconfirmed) this.settleInDoubt();
  }

  /** Each message in doubt is either in the session (then that is its acknowledgement) or sent again. */
  private settleInDoubt(): void {
    for (const token of this.inDoubt) {
      if (!this.pendingAcks.has(token)) continue;
      const stored = this.ownStored.get(token);
      if (stored) {
        this.pendingAcks.delete(token);
        this.record({ t: this.clock(), type: 'ack', token, ok: true, id: stored.id, seq: stored.seq ?? undefined });
      } else {
        this.record({ t: this.clock(), type: 'resent', token });
        this.emitMessage(token, messageText(token));
      }
    }
    this.inDoubt.clear();
  }

  /** The connection ended: what it left unconfirmed is in doubt until the next join. */
  protected onDisconnected(reason: string): void {
    this.joined = false;
    this.record({ t: this.clock(), type: 'disconnected', reason });
    for (const token of this.pendingAcks) this.inDoubt.add(token);
  }

  /** Starts chatting and dropping at random until stopChatting(). */
  startChatting(timing: ClientTiming): void {
    this.chatting = true;
    const nextMessage = () => {
      if (!this.chatting) return;
      this.chatTimer = setTimeout(
        () => {
          if (this.joined) this.sendOne();
          nextMessage();
        },
        timing.messageEveryMs * (0.5 + this.random()),
      );
    };
    const nextDrop = () => {
      if (!this.chatting || !Number.isFinite(timing.dropEveryMs)) return;
      this.dropTimer = setTimeout(
        () => {
          if (this.joined) {
            const ms = Math.round(200 + this.random() * (timing.dropMaxMs - 200));
            this.record({ t: this.clock(), type: 'drop', ms });
            this.drop(ms);
          }
          nextDrop();
        },
        timing.dropEveryMs * (0.5 + this.random()),
      );
    };
    nextMessage();
    nextDrop();
  }

  stopChatting(): void {
    this.chatting = false;
    if (this.chatTimer) clearTimeout(this.chatTimer);
    if (this.dropTimer) clearTimeout(this.dropTimer);
  }

  private sendOne(): void {
    const token = `c${this.spec.index}-${++this.sent}`;
    this.pendingAcks.add(token);
    this.record({ t: this.clock(), type: 'sent', token });
    this.emitMessage(token, messageText(token));
  }

  protected onAck(token: string, reply: WireAck | undefined): void {
    if (this.behaviour.resendUnconfirmed && reply?.ok !== true && reply?.error?.code === 'SERVICE_UNAVAILABLE' && this.pendingAcks.has(token)) {
      // The node is restarting and did not store it: send it again once reconnected elsewhere.
      this.record({ t: this.clock(), type: 'error', code: 'SERVICE_UNAVAILABLE' });
      this.inDoubt.add(token);
      return;
    }
    if (!this.pendingAcks.delete(token)) return;
    if (reply?.ok === true) this.record({ t: this.clock(), type: 'ack', token, ok: true, id: reply.id, seq: reply.seq });
    else this.record({ t: this.clock(), type: 'ack', token, ok: false, code: String(reply?.error?.code ?? 'NO_CODE') });
  }

  abstract start(): void;
  protected abstract emitMessage(token: string, text: string): void;
  /** Drops the connection (as a network loss would) and reconnects after `ms`. */
  protected abstract drop(ms: number): void;
  /** Leaves for good. */
  abstract close(): void;
}

/** socket.io-client with `auth` as a function: every automatic reconnect resumes by itself. */
export class SocketIoClient extends ChaosClient {
  private socket: Socket | null = null;
  private lastSeqSent: number | null = null;
  /** session_joined's token: a reconnect proves it is the same participant, as a typed client does. */
  private token: string | null = null;

  start(): void {
    const polling = this.spec.transport === 'sio-polling';
    const opts: Record<string, unknown> = {
      auth: (cb: (data: object) => void) => {
        this.lastSeqSent = this.lastSeq;
        this.record({ t: this.clock(), type: 'connecting', last_seq: this.lastSeq });
        cb({
          session_id: this.spec.sessionId,
          user_id: this.spec.userId,
          name: this.spec.name,
          ...(this.lastSeq !== null ? { last_seq: this.lastSeq } : {}),
          ...(this.token !== null ? { token: this.token } : {}),
        });
      },
      // Long-polling first, then the upgrade, as a browser does by default.
      transports: polling ? ['polling', 'websocket'] : ['websocket'],
      forceNew: true,
      reconnection: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 2000,
      timeout: 8000,
      localAddress: this.spec.localAddress,
    };
    if (polling) opts.agent = new http.Agent({ localAddress: this.spec.localAddress, keepAlive: true });
    const socket = ioClient(this.spec.url, opts);
    this.socket = socket;
    socket.on('session_joined', (data: WireJoined) => {
      if (typeof data?.token === 'string') this.token = data.token;
      this.onJoined(data, this.lastSeqSent);
      this.onResumeMessages((this.log.at(-1) as { messages: SeenMessage[] }).messages);
    });
    socket.on('message_received', (data: WireMessage) => this.onStored(data, false));
    socket.on('spirit_response', (data: WireMessage) => this.onStored(data, true));
    socket.on('error', (data: WireError) => this.record({ t: this.clock(), type: 'error', code: String(data?.code) }));
    socket.on('connect_error', (err: Error & { data?: WireError }) => {
      this.record({ t: this.clock(), type: 'refused', code: String(err.data?.code ?? err.message) });
      // A refused join (not a network error) is final for socket.io-client; try again like an app would.
      if (err.data?.code && !this.closedForGood) setTimeout(() => !this.closedForGood && socket.connect(), 1000);
    });
    socket.on('disconnect', (reason: string) => {
      this.onDisconnected(reason);
      // The server ended this connection on purpose ("io server disconnect"): the client must reconnect itself.
      if (reason === 'io server disconnect' && !this.closedForGood) setTimeout(() => !this.closedForGood && socket.connect(), 500);
    });
  }

  protected emitMessage(token: string, text: string): void {
    this.socket?.emit('send_message', { message: text }, (reply: WireAck) => this.onAck(token, reply));
  }

  protected drop(ms: number): void {
    const socket = this.socket;
    if (!socket) return;
    if (this.random() < 0.5) {
      // The network goes away: the transport closes and socket.io-client reconnects by itself.
      socket.io.engine?.close();
    } else {
      // The app goes to the background and comes back.
      socket.disconnect();
      setTimeout(() => !this.closedForGood && socket.connect(), ms);
    }
  }

  close(): void {
    this.closedForGood = true;
    this.stopChatting();
    this.socket?.close();
  }
}

/** The raw protocol as the web frontend speaks it, plus `last_seq` in the first frame on a reconnect. */
export class RawClient extends ChaosClient {
  private ws: WebSocket | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private attempt = 0;

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.closedForGood) return;
    const lastSeq = this.lastSeq;
    this.record({ t: this.clock(), type: 'connecting', last_seq: lastSeq });
    const ws = new WebSocket(`${this.spec.url.replace(/^http/, 'ws')}/ws/${this.spec.sessionId}`, {
      localAddress: this.spec.localAddress,
      perMessageDeflate: false,
      handshakeTimeout: 8000,
    });
    this.ws = ws;
    let ended = false;
    // A join that hangs (its node frozen) is given up like a browser's would be.
    const joinTimer = setTimeout(() => ws.terminate(), 10_000);
    ws.on('open', () => {
      ws.send(JSON.stringify({ user_id: this.spec.userId, name: this.spec.name, ...(lastSeq !== null ? { last_seq: lastSeq } : {}) }));
    });
    ws.on('message', (raw) => {
      let frame: WireFrame;
      try {
        frame = JSON.parse((raw as Buffer).toString('utf8')) as WireFrame;
      } catch {
        this.record({ t: this.clock(), type: 'error', code: 'UNPARSEABLE_FRAME' });
        return;
      }
      switch (frame?.event) {
        case 'session_joined':
          clearTimeout(joinTimer);
          this.attempt = 0;
          this.onJoined(frame.data as WireJoined, lastSeq);
          this.onResumeMessages((this.log.at(-1) as { messages: SeenMessage[] }).messages);
          break;
        case 'message_received':
          this.onStored(frame.data as WireMessage, false);
          break;
        case 'spirit_response':
          this.onStored(frame.data as WireMessage, true);
          break;
        case 'error':
          this.record({ t: this.clock(), type: this.joined ? 'error' : 'refused', code: String((frame.data as WireError | undefined)?.code) });
          break;
        default:
          break;
      }
    });
    const ended_ = (reason: string) => {
      if (ended) return;
      ended = true;
      clearTimeout(joinTimer);
      this.onDisconnected(reason);
      this.scheduleReconnect();
    };
    ws.on('close', (code) => ended_(`close ${code}`));
    ws.on('error', (err) => ended_(`error ${err.message}`));
  }

  private scheduleReconnect(delayMs?: number): void {
    if (this.closedForGood || this.reconnectTimer) return;
    // Backoff like socket.io-client's: 250 ms doubling to 2 s, with jitter.
    const base = delayMs ?? Math.min(2000, 250 * 2 ** this.attempt++);
    this.reconnectTimer = setTimeout(
      () => {
        this.reconnectTimer = null;
        this.connect();
      },
      base * (0.5 + this.random()),
    );
  }

  protected emitMessage(_token: string, text: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ event: 'send_message', data: { message: text } }));
  }

  protected drop(ms: number): void {
    const ws = this.ws;
    if (!ws) return;
    // Reconnect after the drop rather than after the usual backoff.
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, ms);
    ws.terminate();
  }

  close(): void {
    this.closedForGood = true;
    this.stopChatting();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.ws?.close();
  }
}
