/**
 * A live séance: joining, speaking, typing and leaving. Both transports call these
 * functions and only translate their results; every event reaches a session through the
 * one `Broadcaster`, whichever transport its listeners use.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config';
import type { TokenClaims, TokenService } from '../auth/tokens';
import { AppError } from '../errors';
import type { ChatMessageView, HistoryMessageView, ParticipantView, ServerEventData, ServerEventName, SessionView } from '../events';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { MessageStore, UserStore } from '../storage/ports';
import { isStoredNumber, schemas, validate, validateChatMessage } from '../validation/schemas';
import type { Broadcaster, SessionSubscriptions } from './ports';
import type { AdmitResult, Holder, Presence } from './presence/types';
import { messageLimitKey, type RateLimits } from './rateLimits';
import type { SessionService } from './sessions';
import { spiritResponse } from './messageEvents';
import type { SpiritService } from './spirit';
import type { SpiritAnswers } from './spiritAnswers';
import { TypingGate } from './typingGate';

/** What a transport knows about one joined connection. */
export interface Participation {
  sessionId: string;
  connectionId: string;
  participant: ParticipantView;
  /** Sends an event to this connection only (errors, mostly). */
  send<E extends ServerEventName>(event: E, data: ServerEventData<E>): void;
}

export interface JoinOutcome {
  participation: Participation;
  isNewParticipant: boolean;
  welcome: ServerEventData<'session_joined'>;
  /** The seq the welcome's messages reach: live events continue after it. */
  knownSeq: number;
}

/**
 * Keeps this node listening to a session while it has a connection in it: opened before the
 * join reads history (so nothing stored after the read can pass this node by), closed on leave.
 */
export interface JoinRequestInput {
  sessionId: unknown;
  /** The client's join object: Socket.IO `auth` or the raw path's first frame. */
  body: unknown;
  /** Where the connection comes from: the connection rate limit's key (absent: not limited). */
  clientAddress?: string;
  /** A token from elsewhere (the raw path's `?token=`), used when the body has none. */
  token?: string;
}

/**
 * Asks the connections that hold a user id, wherever they are, for a sign of life
 * (realtime/liveness.ts): how a reconnect after a network drop is told from an impostor.
 */
export interface HolderChecks {
  /** True when one of them answers within the contract's 3 s. */
  anyAlive(holders: readonly Holder[]): Promise<boolean>;
  /** Closes them (they gave no sign of life). */
  drop(holders: readonly Holder[]): void;
}

/** Who a join says it is; `proven` when a valid token says so. */
interface Identity {
  id: string;
  name: string;
  proven: boolean;
}

/** A join object as validated: Socket.IO `auth` or the raw path's first frame. */
type JoinBody = { name?: string; user_id?: string; token?: string; last_seq?: unknown };

/** What an ordinary join is shown: the last 50 messages. */
export const JOIN_HISTORY = 50;
/** A resume that missed more than this is an ordinary join (docs/protocol.md: Order, resume and repair). */
const MAX_RESUME = 1000;

export interface RoomDeps {
  config: Pick<Config, 'auth' | 'clients'>;
  logger: Logger;
  sessions: SessionService;
  messages: MessageStore;
  users: UserStore;
  presence: Presence;
  spirit: SpiritService;
  /** Issues `session_joined.token`. */
  tokens: TokenService;
  /** Verifies a join's token (auth/passport.ts: the one verification path). */
  verifier: { verify(token: unknown): Promise<TokenClaims> };
  holders: HolderChecks;
  limits: RateLimits;
  broadcaster: Broadcaster;
  /** Absent in unit tests, where every event reaches everyone at once. */
  subscriptions?: SessionSubscriptions;
  metrics?: Metrics;
  /** Where an answer's audio is served, or null when speech is off. */
  audioUrl: (sessionId: string, messageId: number) => string | null;
  /** Answers the questions this node owes (those asked here, stored as owed by it). */
  answers: SpiritAnswers;
}

export class RoomService {
  /** Messages being stored (shutdown lets them finish and be acknowledged before closing connections). */
  private readonly sending = new Set<Promise<unknown>>();
  private accepting = true;
  private readonly log: Logger;
  private readonly typingGate = new TypingGate();

  constructor(private readonly deps: RoomDeps) {
    this.log = deps.logger.child({ component: 'rooms' });
    // Joins and leaves nobody's own connection caused (a dead node reaped, an outage healed).
    deps.presence.onChange(({ sessionId, participant, kind }) =>
      deps.broadcaster.toSession(sessionId, kind === 'joined' ? 'user_joined' : 'user_left', participant, {
        exceptUserId: kind === 'joined' ? participant.id : undefined,
      }),
    );
  }

  /**
   * Rate-limits (by client address), validates, authenticates and admits a connection; throws
   * the contract's refusal codes, the rate limit's first. A join is three steps of round trips
   * to Redis and the database, each step's in parallel (a whole node's clients join again at
   * once after a failover): the limit and the session; the seat and the subscription; the
   * participants, the history and the user's row.
   */
  async join(input: JoinRequestInput, connectionId: string, send: Participation['send']): Promise<JoinOutcome> {
    const limited = input.clientAddress === undefined ? Promise.resolve() : this.deps.limits.consume('connection', input.clientAddress);
    const [limit, request] = await Promise.allSettled([limited, this.readJoinRequest(input)]);
    if (limit.status === 'rejected') throw limit.reason;
    if (request.status === 'rejected') throw request.reason;
    const { body, identity, session } = request.value;
    if (!session.is_active) throw new AppError('SESSION_INACTIVE', 'This session has ended');

    const candidate: ParticipantView = { id: identity.id, name: identity.name, joined_at: new Date().toISOString() };
    const subscriptions = this.deps.subscriptions;
    // Subscribed before the history is read (so nothing stored after the read passes this node by), while the seat is taken.
    const [seat, subscription] = await Promise.allSettled([this.takeSeat(session, candidate, connectionId, identity.proven), subscriptions?.open(session.id)]);
    const subscribed = subscription.status === 'fulfilled';
    if (seat.status === 'rejected' || !seat.value.admitted) {
      if (subscribed) subscriptions?.close(session.id);
      if (seat.status === 'rejected') throw seat.reason;
      if (!seat.value.admitted && seat.value.reason === 'USER_ID_TAKEN')
        throw new AppError('USER_ID_TAKEN', 'This user_id is connected in this session: join with its token (session_joined.token), or without a user_id');
      if (!seat.value.admitted && seat.value.reason === 'TOO_MANY_CONNECTIONS') {
        const max = this.deps.config.clients.maxConnectionsPerParticipant;
        this.deps.metrics?.refused('connections_per_participant');
        this.log.info({ session_id: session.id, user_id: candidate.id, rule: 'connections_per_participant' }, 'connection refused: participant has too many');
        throw new AppError('RATE_LIMITED', `This participant already has ${max} connections in this session`, undefined, 1);
      }
      throw new AppError('SESSION_FULL', `This session is full (${session.max_users} participants)`);
    }
    const admission = seat.value;
    const participation: Participation = { sessionId: session.id, connectionId, participant: admission.participant, send };
    try {
      if (subscription.status === 'rejected') throw subscription.reason;
      const [users, history] = await Promise.all([
        this.deps.presence.list(session.id),
        this.history(session.id, body.last_seq),
        admission.isNew ? this.deps.users.recordJoin(admission.participant) : undefined,
      ]);
      this.log.info({ session_id: session.id, user_id: admission.participant.id, connection_id: connectionId, resumed: history.resumed }, 'participant joined');
      return {
        participation,
        isNewParticipant: admission.isNew,
        welcome: { session, you: admission.participant, users, messages: history.messages, resumed: history.resumed, token: this.deps.tokens.createAccessToken(admission.participant) },
        knownSeq: history.knownSeq,
      };
    } catch (err) {
      if (subscribed) subscriptions?.close(session.id);
      await this.deps.presence.release(session.id, admission.participant.id, connectionId).catch(() => undefined);
      throw err;
    }
  }

  /** The join's body validated, the participant identified, the session looked up (a refusal rejects). */
  private async readJoinRequest(input: JoinRequestInput): Promise<{ body: JoinBody; identity: Identity; session: SessionView }> {
    const body = validate<JoinBody>(schemas.join, input.body ?? {});
    const identity = await this.identify(body, body.token ?? input.token);
    return { body, identity, session: await this.deps.sessions.get(input.sessionId) };
  }

  /**
   * Nobody becomes somebody else: a user id connected right now is joined only with its token,
   * unless none of its connections answers a ping within 3 s (a reconnect after a network drop).
   * Then the join takes the participant over, and only after that are the dead connections
   * dropped: the participant is never without a connection, so nobody hears it leave or join.
   */
  private async takeSeat(session: SessionView, candidate: ParticipantView, connectionId: string, proven: boolean): Promise<AdmitResult> {
    const { presence, holders } = this.deps;
    const maxConnections = this.deps.config.clients.maxConnectionsPerParticipant;
    const seat = await presence.admit(session.id, candidate, connectionId, session.max_users, { exclusive: !proven, maxConnections });
    if (seat.admitted || seat.reason !== 'USER_ID_TAKEN') return seat;
    if (await holders.anyAlive(seat.holders)) return seat;
    // No cap here: the dead holders it replaces are evicted right after.
    const taken = await presence.admit(session.id, candidate, connectionId, session.max_users);
    if (taken.admitted) {
      this.log.info({ session_id: session.id, user_id: candidate.id, dropped: seat.holders.length }, 'holders gave no sign of life: the join takes the participant over');
      holders.drop(seat.holders);
      await Promise.all(seat.holders.map((h) => presence.evict(session.id, candidate.id, h)));
    }
    return taken;
  }

  /**
   * What a joining connection is shown: on a resume (a valid `last_seq`, at most 1,000 missed)
   * every message after it, else the last 50; and the seq that reaches.
   */
  private async history(sessionId: string, lastSeq: unknown): Promise<{ messages: HistoryMessageView[]; resumed: boolean; knownSeq: number }> {
    const { messages } = this.deps;
    // Past what the database holds, a last_seq names no message: an ordinary join.
    if (typeof lastSeq === 'number' && (lastSeq === 0 || isStoredNumber(lastSeq))) {
      const [missed, latest] = await Promise.all([messages.after(sessionId, lastSeq, MAX_RESUME + 1), messages.latestSeq(sessionId)]);
      if (lastSeq <= latest && missed.length <= MAX_RESUME) {
        const items = missed.map(({ in_reply_to: _answered, ...item }) => item);
        return { messages: items, resumed: true, knownSeq: items.at(-1)?.seq ?? lastSeq };
      }
    }
    const recent = await messages.recent(sessionId, JOIN_HISTORY);
    return { messages: recent, resumed: false, knownSeq: recent.at(-1)?.seq ?? 0 };
  }

  /** Up to 1,000 messages after `seq`, as history items (a join catching up). */
  async messagesAfter(sessionId: string, seq: number): Promise<HistoryMessageView[]> {
    return (await this.deps.messages.after(sessionId, seq, MAX_RESUME)).map(({ in_reply_to: _answered, ...item }) => item);
  }

  /** Called by a transport once the connection listens to the session: tells the others. */
  announceJoin(outcome: JoinOutcome): void {
    if (!outcome.isNewParticipant) return;
    const { sessionId, participant } = outcome.participation;
    this.deps.broadcaster.toSession(sessionId, 'user_joined', participant, { exceptUserId: participant.id });
  }

  async leave(p: Participation): Promise<void> {
    this.deps.subscriptions?.close(p.sessionId);
    try {
      const left = await this.deps.presence.release(p.sessionId, p.participant.id, p.connectionId);
      if (left) this.deps.broadcaster.toSession(p.sessionId, 'user_left', left);
      this.log.info({ session_id: p.sessionId, user_id: p.participant.id, connection_id: p.connectionId, last: Boolean(left) }, 'participant connection closed');
    } catch (err) {
      this.log.error({ err, session_id: p.sessionId, user_id: p.participant.id }, 'could not release presence');
    }
  }

  /** Validates, rate-limits, stores, then broadcasts; a provider other than the oracle answers in the background. */
  async sendMessage(p: Participation, data: unknown): Promise<ChatMessageView> {
    // Draining: the client sends it again once it has reconnected to another node.
    if (!this.accepting) throw new AppError('SERVICE_UNAVAILABLE', 'This server is restarting; send again after reconnecting');
    const work = this.storeAndBroadcast(p, data);
    this.sending.add(work);
    try {
      const message = await work;
      this.deps.metrics?.messageAccepted();
      return message;
    } catch (err) {
      this.deps.metrics?.messageRejected();
      throw err;
    } finally {
      this.sending.delete(work);
    }
  }

  private async storeAndBroadcast(p: Participation, data: unknown): Promise<ChatMessageView> {
    const text = validateChatMessage(data);
    await this.deps.limits.consume('message', messageLimitKey(p.sessionId, p.participant.id));
    const { messages, spirit, broadcaster, answers } = this.deps;
    // The built-in oracle answers at once: the question and the answer are stored together
    // and the three events leave in the same tick (one write per listener, see realtime/extensions/engineWrites.ts).
    const instant = spirit.instantReply(text);
    // Otherwise the question is stored as owed an answer by this node: should the node go before
    // it answers, the debt is in the database and another node pays it (see owedAnswers).
    const stored = instant
      ? await messages.storeExchange(p.sessionId, p.participant, text, instant.message)
      : { message: await messages.storeChat(p.sessionId, p.participant, text, { owesAnswer: answers.nodeId }), answer: null };
    const { message } = stored;
    broadcaster.toSession(p.sessionId, 'message_received', message);
    broadcaster.toSession(p.sessionId, 'spirit_thinking', { session_id: p.sessionId, in_reply_to: message.id });
    if (instant && stored.answer) broadcaster.toSession(p.sessionId, 'spirit_response', spiritResponse(stored.answer, message.id, instant, this.deps.audioUrl(p.sessionId, stored.answer.id)));
    else {
      void answers.answer(message).then((outcome) => {
        if (outcome === 'failed') p.send('error', { code: 'SPIRIT_ERROR', message: 'The spirit could not answer this time' });
      });
    }
    return message;
  }

  /** `user_typing` to the others, at most once per 2 s per participant (TypingGate). */
  typing(p: Participation): void {
    if (!this.typingGate.allow(p.sessionId, p.participant.id)) {
      this.deps.metrics?.refused('typing_throttle');
      return;
    }
    this.deps.broadcaster.toSession(p.sessionId, 'user_typing', { id: p.participant.id, name: p.participant.name }, { exceptUserId: p.participant.id });
  }

  /** Ends a session for its creator: tells everyone on every node, then disconnects them. */
  async end(sessionId: string, claims: { typ: string; sid?: string }): Promise<SessionView> {
    const { id } = await this.deps.sessions.get(sessionId);
    if (claims.typ !== 'creator' || claims.sid !== id) {
      throw new AppError('FORBIDDEN', "Only this session's creator token may end it");
    }
    const { session, endedAt } = await this.deps.sessions.end(id);
    await this.deps.presence.clear(id);
    this.deps.broadcaster.endSession(id, { session_id: id, ended_at: endedAt.toISOString(), reason: 'ended_by_creator' });
    this.log.info({ session_id: id }, 'session ended');
    return session;
  }

  /**
   * Graceful shutdown, first step: new messages are refused (SERVICE_UNAVAILABLE); resolves
   * once those already being stored are stored and broadcast, so their senders get the ack.
   */
  async stopAccepting(): Promise<void> {
    this.accepting = false;
    while (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }

  /** Resolves once every spirit answer under way has been stored and sent (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.sending.size > 0) await Promise.allSettled([...this.sending]);
    await this.deps.answers.drain();
  }

  private async identify(body: { name?: string; user_id?: string }, token: string | undefined): Promise<Identity> {
    if (token !== undefined) {
      const claims = await this.deps.verifier.verify(token);
      if (claims.typ !== 'access') throw new AppError('UNAUTHORIZED', 'Join with a participant token from POST /api/auth/token');
      return { id: claims.sub, name: claims.name, proven: true };
    }
    if (this.deps.config.auth.requireAuth) throw new AppError('UNAUTHORIZED', 'This server requires a token to join');
    if (!body.name) throw new AppError('VALIDATION_ERROR', 'Invalid name', { name: "'name' is required" });
    return { id: body.user_id ?? randomUUID(), name: body.name, proven: false };
  }
}
