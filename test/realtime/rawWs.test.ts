import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import WebSocket from 'ws';
import { http, joinSocket, RawClient, sendWithAck, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

describe('raw WebSocket /ws/{id}', () => {
  let server: TestServer;
  const open: Array<RawClient | TestSocket> = [];
  const track = <T extends RawClient | TestSocket>(c: T) => (open.push(c), c);

  before(async () => {
    server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '1000', WS_JOIN_TIMEOUT_MS: '700', WS_PING_INTERVAL_MS: '300' } });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => server?.close());

  it("runs the existing frontend's exact flow", async () => {
    const session = await createSession(server.url);
    const observer = track(await RawClient.join(server.wsUrl, session.id, { user_id: 'observer', name: 'Observer' }));

    // The frontend: connect, send {user_id, name}, then {event: send_message, data: {user_name, message}}.
    const frontend = track(new RawClient(new WebSocket(`${server.wsUrl}/ws/${session.id}`)));
    await frontend.opened;
    frontend.send({ user_id: 'front-1', name: 'Madame Z' });
    frontend.send({ event: 'send_message', data: { user_name: 'Madame Z', message: 'Are you with us?' } });

    expect((await observer.inbox.waitFor('user_joined', (u) => u.id !== 'observer')).id).to.equal('front-1');
    const received = await frontend.inbox.waitFor('message_received');
    expect(received).to.include({ user_name: 'Madame Z', message: 'Are you with us?' });
    expect(received.timestamp).to.match(/Z$/);
    const answer = await frontend.inbox.waitFor('spirit_response');
    expect(answer.message).to.be.a('string').and.not.empty;
    expect(answer.letter_timings).to.be.an('array').with.length(answer.message.length);
    for (const frame of frontend.frames) {
      expect(frame).to.have.all.keys('event', 'data', 'timestamp');
      expect(frame.timestamp).to.match(/^\d{4}-\d{2}-\d{2}T.*Z$/);
    }
    frontend.close();
    expect((await observer.inbox.waitFor('user_left')).id).to.equal('front-1');
  });

  it('accepts the join_session form and a server-made user id', async () => {
    const session = await createSession(server.url);
    const client = track(await RawClient.join(server.wsUrl, session.id, { event: 'join_session', data: { name: 'Ada' } }));
    const joined = client.inbox.of('session_joined')[0];
    expect(joined.you.name).to.equal('Ada');
    expect(joined.you.id).to.match(/^[0-9a-f-]{36}$/);
    expect(joined.session.id).to.equal(session.id);
  });

  it('ignores a user_name sent beside the message: identity comes from the join', async () => {
    const session = await createSession(server.url);
    const client = track(await RawClient.join(server.wsUrl, session.id, { user_id: 'real', name: 'Real Name' }));
    client.send({ event: 'send_message', data: { user_name: 'Impostor', message: 'hello' } });
    expect(await client.inbox.waitFor('message_received')).to.include({ user_id: 'real', user_name: 'Real Name' });
  });

  const closes: Array<[string, (sid: string) => { path?: string; frame: unknown }, number, string]> = [
    ['an unknown session', () => ({ path: randomUUID(), frame: { name: 'A' } }), 4004, 'SESSION_NOT_FOUND'],
    ['a malformed session id', () => ({ path: 'x'.repeat(300), frame: { name: 'A' } }), 4004, 'SESSION_NOT_FOUND'],
    ['a missing name', () => ({ frame: { user_id: 'abc' } }), 4000, 'VALIDATION_ERROR'],
    ['a blank name', () => ({ frame: { name: '   ' } }), 4000, 'VALIDATION_ERROR'],
    ['a bad user_id', () => ({ frame: { name: 'A', user_id: 'a b' } }), 4000, 'VALIDATION_ERROR'],
    ['a message before identifying', () => ({ frame: { event: 'send_message', data: { message: 'hi' } } }), 4000, 'VALIDATION_ERROR'],
    ['a bad token', () => ({ frame: { name: 'A', token: 'garbage' } }), 4001, 'UNAUTHORIZED'],
  ];
  for (const [label, make, code, errorCode] of closes) {
    it(`refuses ${label}: error frame ${errorCode}, then close ${code}`, async () => {
      const session = await createSession(server.url);
      const { path, frame } = make(session.id);
      const client = track(await RawClient.connect(server.wsUrl, path ?? session.id));
      client.send(frame);
      const closed = await client.closed;
      expect(closed.code).to.equal(code);
      expect(client.inbox.of('error')[0].code).to.equal(errorCode);
    });
  }

  it('refuses a full session with 4009 and an ended one with 4010', async () => {
    const session = await createSession(server.url, { max_users: 2 });
    track(await RawClient.join(server.wsUrl, session.id, { name: 'A' }));
    track(await RawClient.join(server.wsUrl, session.id, { name: 'B' }));
    const third = track(await RawClient.connect(server.wsUrl, session.id));
    third.send({ name: 'C' });
    expect((await third.closed).code).to.equal(4009);
    expect(third.inbox.of('error')[0].code).to.equal('SESSION_FULL');

    const ended = await createSession(server.url);
    const del = await http(server.url, 'DELETE', `/api/sessions/${ended.id}`, { headers: { authorization: `Bearer ${ended.creator_token}` } });
    expect(del.status).to.equal(200);
    const late = track(await RawClient.connect(server.wsUrl, ended.id));
    late.send({ name: 'Late' });
    expect((await late.closed).code).to.equal(4010);
    expect(late.inbox.of('error')[0].code).to.equal('SESSION_INACTIVE');
  });

  it('closes with 4008 when no identification arrives in time', async () => {
    const session = await createSession(server.url);
    const client = track(await RawClient.connect(server.wsUrl, session.id));
    expect((await client.closed).code).to.equal(4008);
  });

  it('answers non-JSON, non-object and binary frames with INVALID_PAYLOAD and stays open', async () => {
    const session = await createSession(server.url);
    const client = track(await RawClient.connect(server.wsUrl, session.id));
    client.send('this is not json');
    client.send('[1,2,3]');
    client.send('"a string"');
    client.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { binary: true });
    await client.inbox.waitForCount('error', 4);
    expect(client.inbox.of('error').map((e) => e.code)).to.deep.equal(Array(4).fill('INVALID_PAYLOAD'));
    client.send({ name: 'Still Here' });
    await client.inbox.waitFor('session_joined');
    client.send('{"event": "send_message", "data": ');
    client.send({ event: 'conjure', data: {} });
    client.send({ data: {} });
    client.send({ event: 'send_message', data: { message: '' } });
    client.send({ event: 'send_message', data: { message: 'y'.repeat(501) } });
    client.send({ event: 'send_message', data: 'text' });
    client.send({ event: 'send_message', data: { message: 'finally' } });
    await client.inbox.waitFor('message_received');
    expect(
      client.inbox
        .of('error')
        .slice(4)
        .map((e) => e.code),
    ).to.deep.equal(['INVALID_PAYLOAD', 'UNKNOWN_EVENT', 'INVALID_PAYLOAD', 'EMPTY_MESSAGE', 'MESSAGE_TOO_LONG', 'INVALID_PAYLOAD']);
    expect(client.inbox.of('message_received').map((m) => m.message)).to.deep.equal(['finally']);
    expect(client.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it('closes a connection that sends a frame over 16 KiB with 1009', async () => {
    const session = await createSession(server.url);
    const client = track(await RawClient.join(server.wsUrl, session.id, { name: 'Big' }));
    client.send({ event: 'send_message', data: { message: 'x'.repeat(17 * 1024) } });
    expect((await client.closed).code).to.equal(1009);
  });

  it('pings, and drops a connection that stops answering pongs', async () => {
    const session = await createSession(server.url);
    const watcher = track(await RawClient.join(server.wsUrl, session.id, { user_id: 'watcher', name: 'W' }));
    // Counted from the start: the first ping may come while the join is still under way.
    const silent = track(await RawClient.connect(server.wsUrl, session.id, { autoPong: false } as any));
    let pings = 0;
    silent.ws.on('ping', () => pings++);
    silent.send({ user_id: 'silent', name: 'S' });
    await silent.inbox.waitFor('session_joined');
    expect((await watcher.inbox.waitFor('user_left', (u) => u.id === 'silent')).id).to.equal('silent');
    expect(pings).to.be.at.least(1);
    // The watcher answers pongs (ws does so by default) and is still there.
    expect(watcher.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it('leave_session closes normally', async () => {
    const session = await createSession(server.url);
    const client = track(await RawClient.join(server.wsUrl, session.id, { name: 'Bye' }));
    client.send({ event: 'leave_session', data: {} });
    expect((await client.closed).code).to.equal(1000);
  });

  it('answers an upgrade on an unknown path with 404', async () => {
    const ws = new WebSocket(`${server.wsUrl}/elsewhere`);
    const status = await new Promise((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode)));
    expect(status).to.equal(404);
  });
});

describe('mixed transports in one session', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '1000' } });
  });
  after(async () => server?.close());

  it('shows a raw client and a socket.io client the same events with the same data', async () => {
    const session = await createSession(server.url);
    const raw = await RawClient.join(server.wsUrl, session.id, { user_id: 'raw', name: 'Raw' });
    const sio = await joinSocket(server.url, { session_id: session.id, user_id: 'sio', name: 'Sio' });
    expect(await raw.inbox.waitFor('user_joined', (u) => u.id === 'sio')).to.deep.equal(sio.inbox.of('session_joined')[0].you);

    const ack = await sendWithAck(sio, { message: 'from socket.io' });
    raw.send({ event: 'send_message', data: { message: 'from raw' } });
    raw.send({ event: 'typing', data: {} });
    for (const inbox of [raw.inbox, sio.inbox]) {
      await inbox.waitForCount('message_received', 2);
      await inbox.waitForCount('spirit_response', 2);
    }
    expect(await sio.inbox.waitFor('user_typing')).to.deep.equal({ id: 'raw', name: 'Raw' });
    for (const event of ['message_received', 'spirit_thinking', 'spirit_response']) {
      const byId = (list: any[]) => [...list].sort((a, b) => (a.id ?? a.in_reply_to) - (b.id ?? b.in_reply_to));
      expect(byId(raw.inbox.of(event)), event).to.deep.equal(byId(sio.inbox.of(event)));
    }
    expect(raw.inbox.of('message_received').find((m) => m.id === ack.id).message).to.equal('from socket.io');

    sio.close();
    expect((await raw.inbox.waitFor('user_left')).id).to.equal('sio');
    raw.close();
  });

  it('lets one participant hold a raw and a socket.io connection at once', async () => {
    const session = await createSession(server.url);
    const other = await joinSocket(server.url, { session_id: session.id, user_id: 'other', name: 'Other' });
    const raw = await RawClient.join(server.wsUrl, session.id, { user_id: 'dual', name: 'Dual' });
    const { token } = raw.inbox.of('session_joined')[0];
    const sio = await joinSocket(server.url, { session_id: session.id, user_id: 'dual', name: 'Dual', token });
    expect(other.inbox.of('user_joined').map((u) => u.id)).to.deep.equal(['dual']);
    raw.close();
    await sendWithAck(sio, { message: 'still in' });
    await other.inbox.waitFor('message_received');
    expect(other.inbox.of('user_left')).to.deep.equal([]);
    sio.close();
    expect((await other.inbox.waitFor('user_left')).id).to.equal('dual');
    other.close();
  });
});
