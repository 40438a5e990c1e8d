/**
 * One realtime connection's life, the same for both transports: rate limit → join →
 * listen → `session_joined` → announce; then client events one at a time in arrival order;
 * errors classified, logged once and sent back in the contract's shape; and the leave when
 * the connection closes, also when it closes while the join is still under way. The
 * transports (socketio.ts, rawWs.ts) only decode frames, encode events and map refusals to
 * their own form (a `connect_error`, a close code).
 */
import type { Config } from '../../config';
import { AppError, classifyError, isServerFault } from '../errors';
import { type ClientEventName, type ErrorView, type SendMessageAck, type ServerEventData, type ServerEventName } from '../events';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { SessionFeeds } from '../ordering/sessionFeeds';
import type { Liveness } from './liveness';
import { JOIN_HISTORY, type JoinOutcome, type JoinRequestInput, type Participation, type RoomService } from '../services/rooms';
import type { AddressSlots } from './addressSlots';
import { EventBudget } from './eventBudget';

/** What a transport gives the core for one connection. */
export interface ConnectionLink {
  /** Sends an event to this connection only. */
  send<E extends ServerEventName>(event: E, data: ServerEventData<E>): void;
  /** Makes the session's broadcasts reach this connection (its rooms, or the raw hub). */
  listen(p: Participation): void;
  /** Stops them, before the leave is announced. */
  unlisten(p: Participation): void;
  /** The client asked to leave: close the connection normally. */
  end(): void;
  /** Right after `session_joined`, before the others hear of the join (the raw path's roster). */
  welcomed?(welcome: ServerEventData<'session_joined'>): void;
  /** Pings the client now: true when it answers this ping within `timeoutMs` (liveness.ts). */
  ping(timeoutMs: number): Promise<boolean>;
  /** Closes the connection at once, without waiting for the client: it gave no sign of life. */
  terminate(): void;
}

export interface ConnectionCoreDeps {
  rooms: RoomService;
  feeds: SessionFeeds;
  liveness: Pick<Liveness, 'register'>;
  logger: Logger;
  config: Pick<Config, 'clients'>;
  /** This node's open connections per client address. */
  addresses: AddressSlots;
  metrics?: Metrics;
}

export class Connection {
  private outcome: JoinOutcome | null = null;
  private live = false;
  private closed = false;
  /** Client events are handled one after another, so one sender's messages fan out in the order sent. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly budget: EventBudget;
  /** The address whose slot this connection holds, until it closes. */
  private address: string | null = null;
  private readonly unregister: () => void;

  constructor(
    private readonly deps: ConnectionCoreDeps,
    private readonly link: ConnectionLink,
    readonly id: string,
    private readonly log: Logger,
  ) {
    this.budget = new EventBudget(deps.config.clients.eventRate, deps.config.clients.eventBurst);
    // Reachable by a probe from the moment presence may name it (the join).
    this.unregister = deps.liveness.register(id, { ping: (ms) => link.ping(ms), drop: () => link.terminate() });
  }

  /** Counts the connection against its address's cap on this node; throws RATE_LIMITED past it. */
  holdAddress(address: string): void {
    if (this.address !== null || this.closed) return;
    if (!this.deps.addresses.take(address)) {
      this.deps.metrics?.refused('connections_per_address');
      this.log.info({ client_address: address, rule: 'connections_per_address' }, 'connection refused: too many from this address');
      throw new AppError('RATE_LIMITED', `Too many connections from this address (${this.deps.config.clients.maxConnectionsPerAddress})`, undefined, 1);
    }
    this.address = address;
  }

  /**
   * Spends one of the connection's event budget, before the event is queued. False: drop the
   * event (the client got RATE_LIMITED, at most once a second).
   */
  admitEvent(): boolean {
    if (this.budget.take()) return true;
    this.deps.metrics?.refused('event_budget');
    if (this.budget.shouldNotify() && !this.closed) {
      const p = this.outcome?.participation;
      this.log.info({ session_id: p?.sessionId, user_id: p?.participant.id, rule: 'event_budget' }, 'client events dropped: over budget');
      this.link.send('error', { code: 'RATE_LIMITED', message: `Too many events: at most ${this.deps.config.clients.eventRate} per second` });
    }
    return false;
  }

  /** Counts and logs a refusal the transport made on its own (a heartbeat broken, for instance). */
  refuse(rule: string, what: string): void {
    const p = this.outcome?.participation;
    this.deps.metrics?.refused(rule);
    this.log.info({ session_id: p?.sessionId, user_id: p?.participant.id, rule }, what);
  }

  /** The transport closed this connection as a slow reader: it leaves its session now. */
  closeSlowReader(unsentBytes: number): void {
    if (this.closed) return;
    const p = this.outcome?.participation;
    this.deps.metrics?.refused('slow_reader');
    this.log.warn({ session_id: p?.sessionId, user_id: p?.participant.id, unsent_bytes: unsentBytes, rule: 'slow_reader' }, 'slow reader closed');
    this.close();
  }

  get joined(): boolean {
    return this.outcome !== null;
  }

  /**
   * Admits the connection (rate limit, validation, auth, capacity: RoomService.join). Throws the classified
   * refusal, already logged when it is the server's fault; the transport maps its code.
   */
  async join(clientAddress: string, input: JoinRequestInput): Promise<void> {
    try {
      const outcome = await this.deps.rooms.join({ ...input, clientAddress }, this.id, (event, data) => this.link.send(event, data));
      // Closed while joining: the seat just taken goes back at once.
      if (this.closed) return await this.deps.rooms.leave(outcome.participation);
      this.outcome = outcome;
    } catch (err) {
      throw this.classify(err, 'join refused');
    }
  }

  /** Queued: the connection starts listening before any of its client events is handled. */
  attach(): Promise<void> {
    return this.enqueue(() => this.attachNow());
  }

  /**
   * The connection now listens: it gets `session_joined`, then the others hear of it. It waits
   * until this node has delivered every message its history holds, then, in one tick, adds
   * what was delivered beyond it to `session_joined.messages` and starts listening: nothing
   * stored is missed or shown twice in between (ordering/sessionFeeds.ts).
   */
  async attachNow(): Promise<void> {
    const outcome = this.outcome;
    if (!outcome || this.closed || this.live) return;
    const { sessionId } = outcome.participation;
    const welcome = outcome.welcome;
    for (;;) {
      await this.deps.feeds.settle(sessionId, outcome.knownSeq);
      if (this.closed) return;
      const beyond = this.deps.feeds.since(sessionId, outcome.knownSeq);
      if (beyond) {
        welcome.messages.push(...beyond);
        break;
      }
      // This node delivered more since the history was read than it keeps: read the rest.
      const rows = await this.deps.rooms.messagesAfter(sessionId, outcome.knownSeq);
      if (this.closed) return;
      welcome.messages.push(...rows);
      outcome.knownSeq = rows.at(-1)?.seq ?? outcome.knownSeq;
    }
    if (!welcome.resumed && welcome.messages.length > JOIN_HISTORY) welcome.messages.splice(0, welcome.messages.length - JOIN_HISTORY);
    this.live = true;
    this.link.listen(outcome.participation);
    this.link.send('session_joined', welcome);
    this.link.welcomed?.(welcome);
    this.deps.rooms.announceJoin(outcome);
  }

  /** Runs `task` after every earlier one of this connection. */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A client event of a joined connection, queued; resolves with what a Socket.IO acknowledgement carries. */
  handle(event: unknown, data: unknown): Promise<SendMessageAck | undefined> {
    return this.enqueue(() => this.handleNow(event, data));
  }

  /** The same, for a caller already running in this connection's queue. */
  async handleNow(event: unknown, data: unknown): Promise<SendMessageAck | undefined> {
    if (this.closed || !this.outcome) return undefined;
    try {
      return await this.dispatch(event, data);
    } catch (err) {
      return { ok: false as const, error: this.fail(err) };
    }
  }

  /** Sends an error to this connection (a frame the transport could not decode, for instance), from within its queue. */
  rejectNow(err: AppError): void {
    if (!this.closed) this.fail(err);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The transport closed: once the work queued before is done, the participant's connection leaves. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unregister();
    if (this.address !== null) this.deps.addresses.release(this.address);
    void this.queue.then(async () => {
      if (!this.outcome) return;
      if (this.live) this.link.unlisten(this.outcome.participation);
      await this.deps.rooms.leave(this.outcome.participation);
    });
  }

  /** One handler per client event: the type makes every event of the protocol have one. */
  private readonly handlers: Record<ClientEventName, (p: Participation, data: unknown) => Promise<SendMessageAck | undefined> | undefined> = {
    send_message: async (p, data) => {
      const message = await this.deps.rooms.sendMessage(p, data);
      return { ok: true, id: message.id, seq: message.seq };
    },
    typing: (p) => void this.deps.rooms.typing(p),
    leave_session: () => void this.link.end(),
  };

  private async dispatch(event: unknown, data: unknown): Promise<SendMessageAck | undefined> {
    if (typeof event !== 'string' || !Object.hasOwn(this.handlers, event)) {
      throw new AppError('UNKNOWN_EVENT', `Unknown event ${JSON.stringify(String(event).slice(0, 64))}`);
    }
    return this.handlers[event as ClientEventName](this.outcome!.participation, data);
  }

  private fail(err: unknown): ErrorView {
    const error = this.classify(err, 'client event failed');
    const view = { code: error.code, message: error.message };
    this.link.send('error', view);
    return view;
  }

  private classify(err: unknown, what: string): AppError {
    const error = classifyError(err);
    if (isServerFault(error)) {
      const p = this.outcome?.participation;
      this.log.error({ err, session_id: p?.sessionId, user_id: p?.participant.id }, what);
    }
    return error;
  }
}
