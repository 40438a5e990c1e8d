import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { http, joinSocket, sendWithAck, socketClient, type TestSocket } from '../support/clients';
import { createSession, userId } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

describe('Socket.IO sessions', () => {
  let server: TestServer;
  const open: TestSocket[] = [];
  const join = async (auth: Record<string, unknown>) => {
    const socket = await joinSocket(server.url, auth);
    open.push(socket);
    return socket;
  };
  const refusal = async (auth: Record<string, unknown>) => {
    const socket = socketClient(server.url, auth);
    open.push(socket);
    return socket.inbox.waitFor('connect_error');
  };

  before(async () => {
    server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '1000', CLIENT_EVENT_RATE: '1000' } });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => server?.close());

  it('sends session_joined with session, you, users and history to the joiner only', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: ' Alice ', user_id: 'alice-1' });
    const joined = alice.inbox.of('session_joined')[0];
    expect(joined.session).to.deep.equal({ id: session.id, name: session.name, created_at: session.created_at, max_users: 6, is_active: true });
    expect(joined.you).to.include({ id: 'alice-1', name: 'Alice' });
    expect(joined.you.joined_at).to.match(/Z$/);
    expect(joined.users).to.deep.equal([joined.you]);
    expect(joined.messages).to.deep.equal([]);

    const bob = await join({ session_id: session.id, name: 'Bob' });
    const bobJoined = bob.inbox.of('session_joined')[0];
    expect(bobJoined.you.id).to.match(/^[0-9a-f-]{36}$/);
    expect(bobJoined.users.map((u: any) => u.id)).to.deep.equal(['alice-1', bobJoined.you.id]);
    expect(await alice.inbox.waitFor('user_joined')).to.deep.equal(bobJoined.you);
    expect(bob.inbox.of('user_joined')).to.deep.equal([]);
  });

  it('stores, acknowledges and broadcasts a message, then the spirit thinks and answers', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Alice', user_id: 'alice' });
    const bob = await join({ session_id: session.id, name: 'Bob', user_id: 'bob' });

    const ack = await sendWithAck(alice, { message: '  Is anyone there?  ', user_name: 'Mallory' });
    expect(ack).to.deep.equal({ ok: true, id: ack.id, seq: 1 });
    for (const socket of [alice, bob]) {
      const received = await socket.inbox.waitFor('message_received');
      expect(received).to.include({ id: ack.id, seq: 1, session_id: session.id, user_id: 'alice', user_name: 'Alice', message: 'Is anyone there?' });
      expect(received.timestamp).to.match(/Z$/);
      expect(await socket.inbox.waitFor('spirit_thinking')).to.deep.equal({ session_id: session.id, in_reply_to: ack.id });
      const answer = await socket.inbox.waitFor('spirit_response');
      expect(answer).to.include({ seq: 2, session_id: session.id, in_reply_to: ack.id, audio_url: `/api/sessions/${session.id}/messages/${answer.id}/audio` });
      expect(answer.message).to.be.a('string').and.not.empty;
      expect(answer.letter_timings).to.have.length(answer.message.length);
      expect(answer.word_count).to.be.within(1, 30);
      const order = socket.inbox.events.map((e) => e.event).filter((e) => e.startsWith('message_') || e.startsWith('spirit_'));
      expect(order).to.deep.equal(['message_received', 'spirit_thinking', 'spirit_response']);
    }
    const history = await http(server.url, 'GET', `/api/sessions/${session.id}/history`);
    expect(history.body.data.map((m: any) => [m.id, m.is_spirit, m.user_id])).to.deep.equal([
      [ack.id, false, 'alice'],
      [(await bob.inbox.waitFor('spirit_response')).id, true, null],
    ]);
  });

  const rejected: Array<[string, unknown, string]> = [
    ['an empty message', { message: '' }, 'EMPTY_MESSAGE'],
    ['a blank message', { message: '   \n\t ' }, 'EMPTY_MESSAGE'],
    ['a missing message', {}, 'EMPTY_MESSAGE'],
    ['a 501-character message', { message: 'x'.repeat(501) }, 'MESSAGE_TOO_LONG'],
    ['a numeric message', { message: 42 }, 'INVALID_PAYLOAD'],
    ['an object message', { message: { text: 'hi' } }, 'INVALID_PAYLOAD'],
    ['a string payload', 'hello', 'INVALID_PAYLOAD'],
    ['a null payload', null, 'INVALID_PAYLOAD'],
    ['an array payload', ['hi'], 'INVALID_PAYLOAD'],
  ];
  for (const [label, payload, code] of rejected) {
    it(`refuses ${label} with ${code}: acked, error event, not broadcast, not stored`, async () => {
      const session = await createSession(server.url);
      const alice = await join({ session_id: session.id, name: 'Alice' });
      const bob = await join({ session_id: session.id, name: 'Bob' });
      const ack = await sendWithAck(alice, payload);
      expect(ack.ok).to.equal(false);
      expect(ack.error.code).to.equal(code);
      expect((await alice.inbox.waitFor('error')).code).to.equal(code);
      // A valid message from the same sender arrives after the rejected one would have.
      const good = await sendWithAck(alice, { message: 'x'.repeat(500) });
      expect(good.ok).to.equal(true);
      await bob.inbox.waitFor('message_received', (m) => m.id === good.id);
      expect(bob.inbox.of('message_received')).to.have.length(1);
      const history = await http(server.url, 'GET', `/api/sessions/${session.id}/history`);
      expect(history.body.data.filter((m: any) => !m.is_spirit).map((m: any) => m.id)).to.deep.equal([good.id]);
      expect(alice.connected).to.equal(true);
    });
  }

  it('broadcasts and stores NUL and half surrogate pairs alike, as U+FFFD', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Al\u0000ice' });
    const ack = await sendWithAck(alice, { message: 'a\u0000b\ud800c' });
    const shown = await alice.inbox.waitFor('message_received');
    expect(shown).to.include({ id: ack.id, message: 'a\uFFFDb\uFFFDc', user_name: 'Al\uFFFDice' });
    const stored = (await http(server.url, 'GET', `/api/sessions/${session.id}/history`)).body.data[0];
    expect(stored).to.include({ message: shown.message, user_name: shown.user_name });
  });

  it('finds the acknowledgement in last place even after extra arguments', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Alice' });
    const ack = await new Promise<any>((resolve) => (alice.emit as any)('send_message', { message: 'hi' }, 'extra', resolve));
    expect(ack.ok).to.equal(true);
  });

  it('answers unknown events with UNKNOWN_EVENT and stays connected', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Alice' });
    (alice.emit as any)('summon_demon', { now: true });
    expect(await alice.inbox.waitFor('error')).to.include({ code: 'UNKNOWN_EVENT' });
    expect((await sendWithAck(alice, { message: 'still here' })).ok).to.equal(true);
  });

  it('tells the others when someone types, not the typist', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Alice', user_id: 'alice' });
    const bob = await join({ session_id: session.id, name: 'Bob', user_id: 'bob' });
    alice.emit('typing', {});
    expect(await bob.inbox.waitFor('user_typing')).to.deep.equal({ id: 'alice', name: 'Alice' });
    await sendWithAck(alice, { message: 'marker' });
    await alice.inbox.waitFor('message_received');
    expect(alice.inbox.of('user_typing')).to.deep.equal([]);
  });

  it('leave_session closes the connection and the others get user_left', async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Alice', user_id: 'alice' });
    const bob = await join({ session_id: session.id, name: 'Bob', user_id: 'bob' });
    const bobView = bob.inbox.of('session_joined')[0].you;
    bob.emit('leave_session', {});
    await bob.inbox.waitFor('disconnect');
    expect(await alice.inbox.waitFor('user_left')).to.deep.equal(bobView);
  });

  it('treats a second connection of one user_id as the same participant', async () => {
    const session = await createSession(server.url, { max_users: 2 });
    const alice = await join({ session_id: session.id, name: 'Alice', user_id: 'alice' });
    // The second tab proves it is Alice with the token her first one was given.
    const aliceTab2 = await join({ session_id: session.id, name: 'Alice', user_id: 'alice', token: alice.inbox.of('session_joined')[0].token });
    const bob = await join({ session_id: session.id, name: 'Bob', user_id: 'bob' });
    expect(bob.inbox.of('session_joined')[0].users.map((u: any) => u.id)).to.deep.equal(['alice', 'bob']);
    expect((await http(server.url, 'GET', `/api/sessions/${session.id}`)).body.data.participant_count).to.equal(2);

    aliceTab2.close();
    // Alice still has a tab: no user_left. Prove it by a later event from her first tab.
    await sendWithAck(alice, { message: 'one tab left' });
    await bob.inbox.waitFor('message_received');
    expect(bob.inbox.of('user_left')).to.deep.equal([]);
    alice.close();
    expect((await bob.inbox.waitFor('user_left')).id).to.equal('alice');
    expect(alice.inbox.of('user_joined')).to.deep.equal([{ ...bob.inbox.of('session_joined')[0].you }]);
  });

  it('lists participants and counts them', async () => {
    const session = await createSession(server.url);
    await join({ session_id: session.id, name: 'Alice', user_id: 'alice' });
    await join({ session_id: session.id, name: 'Bob', user_id: 'bob' });
    const participants = await http(server.url, 'GET', `/api/sessions/${session.id}/participants`);
    expect(participants.status).to.equal(200);
    expect(participants.body.data.map((p: any) => [p.id, p.name])).to.deep.equal([
      ['alice', 'Alice'],
      ['bob', 'Bob'],
    ]);
    expect(participants.body.data[0].joined_at).to.match(/Z$/);
    expect((await http(server.url, 'GET', `/api/sessions/${session.id}`)).body.data.participant_count).to.equal(2);
    expect((await http(server.url, 'GET', `/api/sessions/${randomUUID()}/participants`)).status).to.equal(404);
  });

  it('refuses SESSION_FULL beyond max_users', async () => {
    const session = await createSession(server.url, { max_users: 2 });
    await join({ session_id: session.id, name: 'A' });
    await join({ session_id: session.id, name: 'B' });
    const refused = await refusal({ session_id: session.id, name: 'C' });
    expect(refused).to.deep.equal({ message: 'SESSION_FULL', data: { code: 'SESSION_FULL', message: refused.data.message } });
  });

  const refusals: Array<[string, (sid: string) => Record<string, unknown>, string]> = [
    ['an unknown session', () => ({ session_id: randomUUID(), name: 'A' }), 'SESSION_NOT_FOUND'],
    ['a malformed session id', () => ({ session_id: "'; DROP TABLE sessions; --", name: 'A' }), 'SESSION_NOT_FOUND'],
    ['a missing session id', () => ({ name: 'A' }), 'VALIDATION_ERROR'],
    ['a missing name', (sid) => ({ session_id: sid }), 'VALIDATION_ERROR'],
    ['a 51-character name', (sid) => ({ session_id: sid, name: 'x'.repeat(51) }), 'VALIDATION_ERROR'],
    ['a bad user_id', (sid) => ({ session_id: sid, name: 'A', user_id: 'no spaces allowed' }), 'VALIDATION_ERROR'],
    ['a 65-character user_id', (sid) => ({ session_id: sid, name: 'A', user_id: 'x'.repeat(65) }), 'VALIDATION_ERROR'],
    ['a numeric name', (sid) => ({ session_id: sid, name: 7 }), 'VALIDATION_ERROR'],
    ['a bad token', (sid) => ({ session_id: sid, name: 'A', token: 'not.a.jwt' }), 'UNAUTHORIZED'],
  ];
  for (const [label, auth, code] of refusals) {
    it(`refuses ${label} with connect_error ${code}`, async () => {
      const session = await createSession(server.url);
      const refused = await refusal(auth(session.id));
      expect(refused.message).to.equal(code);
      expect(refused.data.code).to.equal(code);
      expect(refused.data.message).to.be.a('string');
    });
  }

  it('accepts a 64-character user_id and a 50-character name', async () => {
    const session = await createSession(server.url);
    const socket = await join({ session_id: session.id, name: 'n'.repeat(50), user_id: 'u'.repeat(64) });
    expect(socket.inbox.of('session_joined')[0].you).to.include({ id: 'u'.repeat(64), name: 'n'.repeat(50) });
  });

  it("delivers one sender's 50 messages in order to everyone", async () => {
    const session = await createSession(server.url);
    const alice = await join({ session_id: session.id, name: 'Alice', user_id: userId() });
    const bob = await join({ session_id: session.id, name: 'Bob' });
    for (let i = 0; i < 50; i++) alice.emit('send_message', { message: `question ${i}` });
    for (const socket of [alice, bob]) {
      const received = await socket.inbox.waitForCount('message_received', 50);
      expect(received.map((m) => m.message)).to.deep.equal(Array.from({ length: 50 }, (_, i) => `question ${i}`));
      const ids = received.map((m) => m.id);
      expect([...ids].sort((a, b) => a - b)).to.deep.equal(ids);
      const responses = await socket.inbox.waitForCount('spirit_response', 50);
      for (const response of responses) {
        const questionAt = socket.inbox.events.findIndex((e) => e.event === 'message_received' && e.data.id === response.in_reply_to);
        const answerAt = socket.inbox.events.findIndex((e) => e.event === 'spirit_response' && e.data.id === response.id);
        expect(questionAt).to.be.at.least(0).and.below(answerAt);
      }
    }
  });
});

describe('Socket.IO message rate limit', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '3', MESSAGE_RATE_WINDOW_S: '60' } });
  });
  after(async () => server?.close());

  it('refuses messages past the limit with RATE_LIMITED, stores none of them, stays connected', async () => {
    const session = await createSession(server.url);
    const alice = await joinSocket(server.url, { session_id: session.id, name: 'Alice' });
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await sendWithAck(alice, { message: `m${i}` }));
    expect(acks.map((a) => a.ok)).to.deep.equal([true, true, true, false, false]);
    expect(acks[3].error.code).to.equal('RATE_LIMITED');
    expect((await alice.inbox.waitFor('error')).code).to.equal('RATE_LIMITED');
    const history = await http(server.url, 'GET', `/api/sessions/${session.id}/history`);
    expect(history.body.data.filter((m: any) => !m.is_spirit).map((m: any) => m.message)).to.deep.equal(['m0', 'm1', 'm2']);
    expect(alice.connected).to.equal(true);
    // Another participant has a budget of its own.
    const bob = await joinSocket(server.url, { session_id: session.id, name: 'Bob' });
    expect((await sendWithAck(bob, { message: 'hello' })).ok).to.equal(true);
    alice.close();
    bob.close();
  });
});
