import { SeanceError } from './errors';
import { JOIN_RETRY_CODES, type ErrorView, type EventErrorCode, type JoinRefusalCode, ParticipantView, type ServerToClientEvents, type SessionJoinedData, type SessionView } from './events';
import { InOrder, type SeanceMessage } from './ordering';

export interface ConnectOptions {
  /** The server or its load balancer: `https://seance.example` (same origin in a browser: `location.origin`). */
  url: string;
  sessionId: string;
  /** The participant's display name (1–50 characters). */
  name: string;
  /** The same `userId` from two tabs is one participant; the server makes one when absent. */
  userId?: string;
  /** A token of `userId` (POST /api/auth/token, or an earlier `room.token`). */
  token?: string;
  /** `'socket.io'` (default) or `'ws'`, the raw `/ws/{id}` protocol for places without Socket.IO. */
  transport?: 'socket.io' | 'ws';
  /** Resume after this `seq` (say, kept across a page reload): only later messages are handed on. */
  lastSeq?: number;
  /** How long `send()` waits for the server's answer (default 10 000 ms). */
  sendTimeoutMs?: number;
}

export type RoomStatus = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** What `on()` can listen to. `message` replaces `message_received`/`spirit_response`: once each, in `seq` order. */
export interface RoomEvents {
  /** Every (re)join: the session, yourself, who is present. Its messages come through `message`. */
  joined: (data: SessionJoinedData) => void;
  message: (message: SeanceMessage) => void;
  status: (status: RoomStatus) => void;
  /** The join was refused for good; the room is closed (`room.ready` rejects with the same error). */
  refused: (error: SeanceError) => void;
  user_joined: ServerToClientEvents['user_joined'];
  user_left: ServerToClientEvents['user_left'];
  user_typing: ServerToClientEvents['user_typing'];
  spirit_thinking: ServerToClientEvents['spirit_thinking'];
  session_ended: ServerToClientEvents['session_ended'];
  /** An `error` event the server sent this connection (a refused `send` also rejects its promise). */
  error: ServerToClientEvents['error'];
}

export interface SentMessage {
  id: number;
  seq: number;
}

/** The join a transport sends on every (re)connect. */
export interface JoinRequest {
  session_id: string;
  name: string;
  user_id?: string;
  token?: string;
  last_seq?: number;
}

/** What a transport does for the room; the room keeps the state and the guarantees. */
export interface Transport {
  open(): void;
  /** Answers with the stored message's `{id, seq}`, or rejects with a SeanceError (TIMEOUT after `timeoutMs`). */
  sendMessage(text: string, timeoutMs: number): Promise<SentMessage>;
  typing(): void;
  /** `leave`: say so (leave_session) before closing. */
  close(leave: boolean): void;
}

/** How a transport reports to its room. */
export interface TransportEvents {
  status(status: 'connecting' | 'reconnecting'): void;
  joined(data: SessionJoinedData): void;
  stored(message: SeanceMessage): void;
  event<E extends 'user_joined' | 'user_left' | 'user_typing' | 'spirit_thinking' | 'session_ended' | 'error'>(event: E, data: Parameters<ServerToClientEvents[E]>[0]): void;
  /** A refused join. Returns whether to try again (a passing refusal) rather than give up. */
  refused(error: ErrorView): boolean;
}

/** Refusals worth another try on a reconnect: they pass (the old connection's check, a rate window). */
const PASSING_REFUSALS: ReadonlySet<string> = new Set<JoinRefusalCode>(['RATE_LIMITED', 'USER_ID_TAKEN']);
const RETRY_CODES: ReadonlySet<string> = new Set(JOIN_RETRY_CODES);

/**
 * One participant's presence in one session, over either transport: it joins, rejoins after
 * every drop resuming from the last `seq` handed on, and keeps the token the server gave.
 */
export class SeanceRoom {
  /** Resolves at the first join; rejects with a SeanceError (`refused`) when the join is refused. */
  readonly ready: Promise<SessionJoinedData>;
  private readonly listeners = new Map<keyof RoomEvents, Set<(...args: never[]) => void>>();
  private readonly order: InOrder;
  private readonly transport: Transport;
  private readonly sendTimeoutMs: number;
  private settleReady!: { resolve: (d: SessionJoinedData) => void; reject: (e: SeanceError) => void };
  private currentStatus: RoomStatus = 'connecting';
  private joinedOnce = false;
  private keptToken: string | undefined;
  private you: ParticipantView | null = null;
  private sessionView: SessionView | null = null;

  constructor(
    private readonly options: ConnectOptions,
    makeTransport: (room: TransportEvents, join: () => JoinRequest) => Transport,
  ) {
    this.sendTimeoutMs = options.sendTimeoutMs ?? 10_000;
    this.keptToken = options.token;
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    // An application that never awaits `ready` still hears of a refusal through `refused`.
    this.ready.catch(() => undefined);
    this.order = new InOrder(
      options.lastSeq ?? null,
      (m) => this.emit('message', m),
      (after) => this.historyAfter(after),
      (err) => this.emit('error', { code: 'INTERNAL_ERROR', message: `Could not read the missed messages: ${String(err)}` }),
    );
    this.transport = makeTransport(this.transportEvents(), () => this.joinRequest());
    this.transport.open();
  }

  get status(): RoomStatus {
    return this.currentStatus;
  }
  /** The highest `seq` handed on through `message` (null before the first join). */
  get lastSeq(): number | null {
    return this.order.lastSeq;
  }
  /** The token of the last join (or the one given): another tab connects with it as the same participant. */
  get token(): string | undefined {
    return this.keptToken;
  }
  get me(): ParticipantView | null {
    return this.you;
  }
  get session(): SessionView | null {
    return this.sessionView;
  }

  on<E extends keyof RoomEvents>(event: E, listener: RoomEvents[E]): () => void {
    const set = this.listeners.get(event) ?? new Set();
    this.listeners.set(event, set);
    set.add(listener);
    return () => void set.delete(listener);
  }

  /** Sends a chat message: resolves with its `{id, seq}` once stored, or rejects with a SeanceError. */
  send(text: string): Promise<SentMessage> {
    if (this.currentStatus === 'closed') return Promise.reject(new SeanceError('closed', 'CLOSED', 'The room is closed'));
    return this.transport.sendMessage(text, this.sendTimeoutMs);
  }

  typing(): void {
    if (this.currentStatus === 'connected') this.transport.typing();
  }

  /** Leaves the session (the others get `user_left` when this was your last connection) and closes. */
  leave(): void {
    this.shutDown(true);
  }

  /** Closes the connection without saying goodbye (the server notices it went). */
  close(): void {
    this.shutDown(false);
  }

  private shutDown(leave: boolean): void {
    if (this.currentStatus === 'closed') return;
    this.transport.close(leave);
    this.setStatus('closed');
    this.settleReady.reject(new SeanceError('closed', 'CLOSED', 'The room was closed before it joined'));
  }

  private joinRequest(): JoinRequest {
    const join: JoinRequest = { session_id: this.options.sessionId, name: this.options.name };
    // After a join, come back as the participant the server made (it chose the id when none was given).
    const userId = this.you?.id ?? this.options.userId;
    if (userId !== undefined) join.user_id = userId;
    if (this.keptToken !== undefined) join.token = this.keptToken;
    if (this.order.lastSeq !== null) join.last_seq = this.order.lastSeq;
    return join;
  }

  private transportEvents(): TransportEvents {
    return {
      status: (status) => this.setStatus(status),
      joined: (data) => {
        this.joinedOnce = true;
        this.you = data.you;
        this.sessionView = data.session;
        this.keptToken = data.token;
        this.setStatus('connected');
        this.settleReady.resolve(data);
        this.emit('joined', data);
        this.order.joined(data.messages);
      },
      stored: (message) => this.order.add(message),
      event: (event, data) => {
        if (event === 'session_ended') this.transport.close(false);
        (this.emit as (e: string, d: unknown) => void)(event, data);
        if (event === 'session_ended') this.setStatus('closed');
      },
      refused: (error) => {
        if (RETRY_CODES.has(error.code) || (this.joinedOnce && PASSING_REFUSALS.has(error.code))) return true;
        const refusal = new SeanceError('refused', error.code as JoinRefusalCode, error.message);
        this.transport.close(false);
        this.setStatus('closed');
        this.settleReady.reject(refusal);
        this.emit('refused', refusal);
        return false;
      },
    };
  }

  /** The REST history after `afterSeq`: what a join that could not resume left out. */
  private async historyAfter(afterSeq: number): Promise<SeanceMessage[]> {
    const base = this.options.url.replace(/\/+$/, '');
    const res = await fetch(`${base}/api/sessions/${encodeURIComponent(this.options.sessionId)}/history?after_seq=${afterSeq}&limit=100`);
    const body = (await res.json()) as { success: boolean; data?: SeanceMessage[] };
    if (!res.ok || !body.success || !body.data) throw new Error(`history answered ${res.status}`);
    return body.data;
  }

  private setStatus(status: RoomStatus): void {
    if (this.currentStatus === status || this.currentStatus === 'closed') return;
    this.currentStatus = status;
    this.emit('status', status);
  }

  private emit<E extends keyof RoomEvents>(event: E, ...args: Parameters<RoomEvents[E]>): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as unknown as (...a: Parameters<RoomEvents[E]>) => void)(...args);
      } catch (err) {
        // One application listener that throws must not stop the others, nor the stream.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

/** A server `error` the room turns into a rejected send. */
export function rejection(error: ErrorView): SeanceError {
  return new SeanceError('rejected', error.code as EventErrorCode, error.message);
}
