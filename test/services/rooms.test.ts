/**
 * The rules of the contract's realtime section, on RoomService alone: in-memory stores and
 * presence, an in-process rate limiter and a broadcaster that records what it was asked to
 * send. Each case runs in milliseconds; the transports and the real database are covered by
 * the realtime, db and cluster suites.
 */
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { createTokenVerifier } from '../../server/auth/passport';
import { TokenService } from '../../server/auth/tokens';
import type { AppError } from '../../server/errors';
import type { ServerEventData, ServerEventName } from '../../server/events';
import { createLogger } from '../../server/logger';
import type { Broadcaster } from '../../server/services/ports';
import { MemoryPresence } from '../../server/services/presence/memory';
import type { Holder } from '../../server/services/presence/types';
import { RateLimits } from '../../server/services/rateLimits';
import { RoomService, type JoinOutcome } from '../../server/services/rooms';
import { SessionService } from '../../server/services/sessions';
import { createSpiritService } from '../../server/services/spirit';
import { SpiritAnswers } from '../../server/services/spiritAnswers';
import { memoryStores } from '../../server/storage/memory';
import type { Stores } from '../../server/storage/ports';

interface Sent {
  sessionId: string;
  event: ServerEventName;
  data: any;
  exceptUserId?: string;
}

class RecordingBroadcaster implements Broadcaster {
  readonly sent: Sent[] = [];
  /** Called on every broadcast, before it is recorded (to look at the store at that moment). */
  onSend: (sent: Sent) => void = () => undefined;

  toSession<E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts: { exceptUserId?: string } = {}): void {
    const sent = { sessionId, event, data, exceptUserId: opts.exceptUserId };
    this.onSend(sent);
    this.sent.push(sent);
  }

  endSession(sessionId: string, data: ServerEventData<'session_ended'>): void {
    this.toSession(sessionId, 'session_ended', data);
    this.sent.push({ sessionId, event: 'session_ended', data: { closed: true } });
  }

  events(): ServerEventName[] {
    return this.sent.map((s) => s.event);
  }
}

function world(env: Record<string, string> = {}) {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', MESSAGE_RATE_LIMIT: '5', SPIRIT_ORACLE_DELAY_MS: '0', ...env });
  const logger = createLogger(config);
  const stores: Stores = memoryStores();
  const presence = new MemoryPresence();
  const broadcaster = new RecordingBroadcaster();
  const secret = 'rooms-unit-test-secret-'.repeat(2);
  const tokens = new TokenService(config.auth, secret);
  // The transports' pings are liveness.ts's (covered by the realtime suites): here the answer is set by the test.
  const holders = { answer: true, asked: [] as Holder[][], dropped: [] as Holder[] };
  const sessions = new SessionService(stores.sessions, presence);
  const spirit = createSpiritService(config.spirit, logger);
  const audioUrl = (sessionId: string, messageId: number) => `/audio/${sessionId}/${messageId}`;
  const answers = new SpiritAnswers({ nodeId: config.nodeId, messages: stores.messages, spirit, broadcaster, logger, audioUrl });
  const rooms = new RoomService({
    config,
    logger,
    sessions,
    messages: stores.messages,
    users: stores.users,
    presence,
    spirit,
    tokens,
    verifier: createTokenVerifier(config.auth, secret),
    holders: {
      anyAlive: async (held) => {
        holders.asked.push([...held]);
        return holders.answer;
      },
      drop: (held) => void holders.dropped.push(...held),
    },
    limits: new RateLimits(config.limits, null, config.nodeId, logger),
    broadcaster,
    audioUrl,
    answers,
  });
  const direct: Array<{ connectionId: string; event: string; data: unknown }> = [];
  let connections = 0;
  const join = (sessionId: string, body: Record<string, unknown>, token?: string): Promise<JoinOutcome> => {
    const connectionId = `c${++connections}`;
    return rooms.join({ sessionId, body, token }, connectionId, (event, data) => direct.push({ connectionId, event, data }));
  };
  return { config, stores, presence, broadcaster, tokens, holders, sessions, rooms, join, direct };
}

async function refusal(work: Promise<unknown>): Promise<AppError> {
  try {
    await work;
  } catch (err) {
    return err as AppError;
  }
  throw new Error('expected a refusal');
}

describe('RoomService (in memory)', () => {
  describe('joining', () => {
    it('welcomes with the session, the participant, who is here and the last 50 messages, oldest first', async () => {
      const w = world({ MESSAGE_RATE_LIMIT: '1000' });
      const session = await w.sessions.create({ name: 'Circle', max_users: 6 });
      const first = await w.join(session.id, { user_id: 'a', name: 'Ada' });
      for (let i = 1; i <= 30; i += 1) await w.rooms.sendMessage(first.participation, { message: `m${i}` });
      const second = await w.join(session.id, { user_id: 'b', name: ' Bo ' });
      const { welcome } = second;
      expect(welcome.session).to.deep.equal(session);
      expect(welcome.you).to.include({ id: 'b', name: 'Bo' });
      expect(welcome.users.map((u) => u.id)).to.deep.equal(['a', 'b']);
      expect(welcome.messages).to.have.length(50);
      expect(welcome.messages.at(-1)).to.include({ is_spirit: true });
      expect(welcome.messages.at(-2)).to.include({ message: 'm30', user_id: 'a', user_name: 'Ada', is_spirit: false });
      const ids = welcome.messages.map((m) => m.id);
      expect(ids).to.deep.equal([...ids].sort((x, y) => x - y));
    });

    it('refuses an unknown or malformed session, an ended one and a full one with their codes', async () => {
      const w = world();
      expect((await refusal(w.join('00000000-0000-4000-8000-000000000000', { name: 'A' }))).code).to.equal('SESSION_NOT_FOUND');
      expect((await refusal(w.join('not-a-uuid', { name: 'A' }))).code).to.equal('SESSION_NOT_FOUND');
      const full = await w.sessions.create({ name: 'Two', max_users: 2 });
      await w.join(full.id, { user_id: 'a', name: 'A' });
      await w.join(full.id, { user_id: 'b', name: 'B' });
      expect((await refusal(w.join(full.id, { user_id: 'c', name: 'C' }))).code).to.equal('SESSION_FULL');
      const ended = await w.sessions.create({ name: 'Over', max_users: 6 });
      await w.rooms.end(ended.id, { typ: 'creator', sid: ended.id });
      expect((await refusal(w.join(ended.id, { name: 'A' }))).code).to.equal('SESSION_INACTIVE');
    });

    it('refuses a join with no name or a bad user_id, naming the field', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const noName = await refusal(w.join(session.id, {}));
      expect(noName.code).to.equal('VALIDATION_ERROR');
      expect(noName.details).to.have.property('name');
      const badId = await refusal(w.join(session.id, { name: 'A', user_id: 'no spaces' }));
      expect(badId.details).to.have.property('user_id');
      expect(await w.presence.count(session.id)).to.equal(0);
    });

    it('counts a second connection of one user_id as the same participant: no seat taken, no second user_joined', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'Two', max_users: 2 });
      const tab1 = await w.join(session.id, { user_id: 'a', name: 'A' });
      w.rooms.announceJoin(tab1);
      const tab2 = await w.join(session.id, { user_id: 'a', name: 'A', token: tab1.welcome.token });
      w.rooms.announceJoin(tab2);
      expect(tab2.isNewParticipant).to.equal(false);
      expect(w.broadcaster.sent.filter((s) => s.event === 'user_joined')).to.have.length(1);
      expect(w.broadcaster.sent[0]).to.include({ exceptUserId: 'a' });
      await w.join(session.id, { user_id: 'b', name: 'B' });
      expect(await w.presence.count(session.id)).to.equal(2);
    });

    it('sends user_left only when the last connection of a participant closes', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const tab1 = await w.join(session.id, { user_id: 'a', name: 'A' });
      const tab2 = await w.join(session.id, { name: 'A' }, tab1.welcome.token);
      await w.rooms.leave(tab1.participation);
      expect(w.broadcaster.events()).not.to.include('user_left');
      await w.rooms.leave(tab2.participation);
      expect(w.broadcaster.sent.filter((s) => s.event === 'user_left').map((s) => s.data.id)).to.deep.equal(['a']);
    });

    it('refuses a join naming a connected user_id without its token when a holder answers (USER_ID_TAKEN), disturbing nobody', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const alice = await w.join(session.id, { user_id: 'alice', name: 'Alice' });
      const sent = w.broadcaster.sent.length;
      const impostor = await refusal(w.join(session.id, { user_id: 'alice', name: 'Mallory' }));
      expect(impostor.code).to.equal('USER_ID_TAKEN');
      expect(w.holders.asked).to.deep.equal([[{ node: 'local', connectionId: alice.participation.connectionId }]]);
      expect(w.holders.dropped).to.deep.equal([]);
      expect(w.broadcaster.sent.length).to.equal(sent);
      expect(await w.presence.list(session.id)).to.deep.equal([alice.participation.participant]);
      // A token of another id proves nothing about this one; two people may share a name.
      const bob = w.tokens.createAccessToken({ id: 'bob', name: 'Alice' });
      const joined = await w.join(session.id, { user_id: 'alice', name: 'Alice' }, bob);
      expect(joined.participation.participant.id).to.equal('bob');
    });

    it('admits the join as the same participant when no holder answers, dropping the holders, with no user_left or user_joined', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const dead = await w.join(session.id, { user_id: 'alice', name: 'Alice' });
      w.holders.answer = false;
      const back = await w.join(session.id, { user_id: 'alice', name: 'Alice' });
      w.rooms.announceJoin(back);
      expect(back.isNewParticipant).to.equal(false);
      expect(back.participation.participant).to.deep.equal(dead.participation.participant);
      expect(w.holders.dropped).to.deep.equal([{ node: 'local', connectionId: dead.participation.connectionId }]);
      // The dropped connection's close, when its transport reports it, is no leave.
      await w.rooms.leave(dead.participation);
      expect(w.broadcaster.events().filter((e) => e === 'user_left' || e === 'user_joined')).to.deep.equal([]);
      expect(await w.presence.count(session.id)).to.equal(1);
    });

    it('gives every joining connection a token of its participant, which admits another tab without asking the holders', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const tab1 = await w.join(session.id, { name: 'Alice' });
      const tab2 = await w.join(session.id, { name: 'Alice', token: tab1.welcome.token });
      expect(tab2.participation.participant).to.deep.equal(tab1.participation.participant);
      expect(tab2.isNewParticipant).to.equal(false);
      expect(w.holders.asked).to.deep.equal([]);
      expect(tab2.welcome.token).to.be.a('string');
    });

    it('takes identity from a token over what the client claims, and refuses creator tokens and tokenless joins under REQUIRE_AUTH', async () => {
      const w = world({ REQUIRE_AUTH: 'true' });
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const token = w.tokens.createAccessToken({ id: 'real', name: 'Real' });
      const joined = await w.join(session.id, { user_id: 'fake', name: 'Fake', token });
      expect(joined.participation.participant).to.include({ id: 'real', name: 'Real' });
      expect((await refusal(w.join(session.id, { name: 'A' }))).code).to.equal('UNAUTHORIZED');
      expect((await refusal(w.join(session.id, { name: 'A' }, w.tokens.createCreatorToken(session.id)))).code).to.equal('UNAUTHORIZED');
      expect((await refusal(w.join(session.id, { name: 'A', token: 'not.a.jwt' }))).code).to.equal('UNAUTHORIZED');
    });
  });

  describe('speaking', () => {
    it('stores, then broadcasts message_received, spirit_thinking and spirit_response, in that order', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const { participation } = await w.join(session.id, { user_id: 'a', name: 'Ada' });
      // What history held at the moment message_received left.
      let storedWhenSent: Promise<number[]> | null = null;
      w.broadcaster.onSend = (sent) => {
        if (sent.event === 'message_received') storedWhenSent = w.stores.messages.recent(session.id, 5).then((stored) => stored.map((m) => m.id));
      };
      const stored = await w.rooms.sendMessage(participation, { message: '  Is anyone there?  ', user_name: 'Impostor' });
      expect(await (storedWhenSent as Promise<number[]> | null)).to.include(stored.id);
      expect(w.broadcaster.events()).to.deep.equal(['message_received', 'spirit_thinking', 'spirit_response']);
      const [received, thinking, answer] = w.broadcaster.sent.map((s) => s.data);
      expect(received).to.deep.equal(stored);
      expect(received).to.include({ session_id: session.id, user_id: 'a', user_name: 'Ada', message: 'Is anyone there?' });
      expect(thinking).to.deep.equal({ session_id: session.id, in_reply_to: stored.id });
      expect(answer.in_reply_to).to.equal(stored.id);
      expect(answer.audio_url).to.equal(`/audio/${session.id}/${answer.id}`);
      expect(answer.letter_timings).to.have.length(answer.message.length);
      expect(answer.word_count).to.be.at.most(30);
      const history = await w.stores.messages.recent(session.id, 10);
      expect(history.map((m) => m.id)).to.deep.equal([stored.id, answer.id]);
    });

    for (const [payload, code] of [
      [{ message: '   ' }, 'EMPTY_MESSAGE'],
      [{}, 'EMPTY_MESSAGE'],
      [{ message: 'x'.repeat(501) }, 'MESSAGE_TOO_LONG'],
      [{ message: 42 }, 'INVALID_PAYLOAD'],
      ['hello', 'INVALID_PAYLOAD'],
      [null, 'INVALID_PAYLOAD'],
    ] as const) {
      it(`refuses ${JSON.stringify(payload).slice(0, 24)} with ${code}, and neither stores nor broadcasts it`, async () => {
        const w = world();
        const session = await w.sessions.create({ name: 'S', max_users: 6 });
        const { participation } = await w.join(session.id, { user_id: 'a', name: 'A' });
        expect((await refusal(w.rooms.sendMessage(participation, payload))).code).to.equal(code);
        expect(w.broadcaster.sent).to.have.length(0);
        expect(await w.stores.messages.recent(session.id, 10)).to.have.length(0);
      });
    }

    it('accepts exactly 500 characters, and refuses past the rate limit with RATE_LIMITED and a wait', async () => {
      const w = world({ MESSAGE_RATE_LIMIT: '2' });
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const { participation } = await w.join(session.id, { user_id: 'a', name: 'A' });
      await w.rooms.sendMessage(participation, { message: 'x'.repeat(500) });
      await w.rooms.sendMessage(participation, { message: 'two' });
      const limited = await refusal(w.rooms.sendMessage(participation, { message: 'three' }));
      expect(limited.code).to.equal('RATE_LIMITED');
      expect(limited.retryAfterSeconds).to.be.at.least(1);
      expect((await w.stores.messages.recent(session.id, 10)).filter((m) => !m.is_spirit)).to.have.length(2);
    });

    it('sends user_typing to everyone else', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const { participation } = await w.join(session.id, { user_id: 'a', name: 'A' });
      w.rooms.typing(participation);
      expect(w.broadcaster.sent).to.deep.equal([{ sessionId: session.id, event: 'user_typing', data: { id: 'a', name: 'A' }, exceptUserId: 'a' }]);
    });
  });

  it('takes a session id in any case as the same session (a UUID is case-insensitive): same room, same id in events', async () => {
    const w = world();
    const session = await w.sessions.create({ name: 'Case', max_users: 6 });
    const upper = session.id.toUpperCase();
    expect(await w.sessions.get(upper)).to.deep.equal(session);
    const joined = await w.join(upper, { user_id: 'a', name: 'A' });
    expect(joined.participation.sessionId).to.equal(session.id);
    expect(joined.welcome.session.id).to.equal(session.id);
    const ended = await w.rooms.end(upper, { typ: 'creator', sid: session.id });
    expect(ended.id).to.equal(session.id);
    expect(w.broadcaster.sent.find((sent) => sent.event === 'session_ended')!.data).to.include({ session_id: session.id });
  });

  describe('ending', () => {
    it('lets only the creator end a session; everyone gets session_ended, then is closed, and presence is cleared', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      await w.join(session.id, { user_id: 'a', name: 'A' });
      const other = await w.sessions.create({ name: 'Other', max_users: 6 });
      expect((await refusal(w.rooms.end(session.id, { typ: 'creator', sid: other.id }))).code).to.equal('FORBIDDEN');
      expect((await refusal(w.rooms.end(session.id, { typ: 'access' }))).code).to.equal('FORBIDDEN');
      const ended = await w.rooms.end(session.id, { typ: 'creator', sid: session.id });
      expect(ended.is_active).to.equal(false);
      expect(w.broadcaster.sent.map((s) => [s.event, s.data.closed ?? false])).to.deep.equal([
        ['session_ended', false],
        ['session_ended', true],
      ]);
      expect(w.broadcaster.sent[0].data).to.include({ session_id: session.id });
      expect(await w.presence.count(session.id)).to.equal(0);
    });
  });

  describe('draining (graceful shutdown)', () => {
    it('lets a message being stored finish, then refuses new ones with SERVICE_UNAVAILABLE, storing and sending nothing', async () => {
      const w = world();
      const session = await w.sessions.create({ name: 'S', max_users: 6 });
      const { participation } = await w.join(session.id, { user_id: 'a', name: 'A' });
      const inFlight = w.rooms.sendMessage(participation, { message: 'just in time' });
      await w.rooms.stopAccepting();
      const stored = await inFlight;
      expect(w.broadcaster.sent.filter((s) => s.event === 'message_received').map((s) => s.data.id)).to.deep.equal([stored.id]);
      const sentBefore = w.broadcaster.sent.length;
      const refused = await refusal(w.rooms.sendMessage(participation, { message: 'too late' }));
      expect(refused.code).to.equal('SERVICE_UNAVAILABLE');
      expect(w.broadcaster.sent).to.have.length(sentBefore);
      expect((await w.stores.messages.recent(session.id, 10)).map((m) => m.message)).to.not.include('too late');
    });
  });
});
