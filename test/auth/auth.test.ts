import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { http, joinSocket, RawClient, socketClient } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

const SECRET = 'test-secret-that-is-long-enough-for-prod!';

describe('auth: tokens, ending sessions, joins', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { JWT_SECRET: SECRET, CORS_ORIGINS: 'http://allowed.test' } });
  });
  after(async () => server?.close());

  describe('POST /api/auth/token', () => {
    it('issues a guest token with the contract shape', async () => {
      const reply = await http(server.url, 'POST', '/api/auth/token', { json: { name: ' Ada ' } });
      expect(reply.status).to.equal(201);
      expect(reply.body.data).to.include({ token_type: 'Bearer', expires_in: 1800 });
      expect(reply.body.data.user).to.deep.include({ name: 'Ada' });
      expect(jwt.verify(reply.body.data.access_token, SECRET)).to.include({ sub: reply.body.data.user.id, name: 'Ada' });
    });

    it('names a user_id only for its holder: without a token of that id it is 403 FORBIDDEN; with one, a refresh', async () => {
      const issue = (json: object, token?: string) => http(server.url, 'POST', '/api/auth/token', { json, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
      const bob = (await issue({ name: 'Bob' })).body.data;
      const session = await createSession(server.url);
      const refusals = [
        await issue({ name: 'M', user_id: bob.user.id }),
        await issue({ name: 'M', user_id: bob.user.id }, 'not.a.jwt'),
        await issue({ name: 'M', user_id: bob.user.id }, (await issue({ name: 'Mallory' })).body.data.access_token),
        await issue({ name: 'M', user_id: bob.user.id }, session.creator_token),
        await issue({ name: 'M', user_id: bob.user.id }, jwt.sign({ typ: 'access', name: 'Bob' }, 'a-secret-anyone-could-have-read-somewhere', { subject: bob.user.id })),
      ];
      for (const reply of refusals) {
        expect(reply.status).to.equal(403);
        expect(reply.body.error.code).to.equal('FORBIDDEN');
        expect(reply.body.data).to.equal(undefined);
      }
      const refreshed = await issue({ name: 'Robert', user_id: bob.user.id }, bob.access_token);
      expect(refreshed.status).to.equal(201);
      expect(refreshed.body.data.user).to.deep.equal({ id: bob.user.id, name: 'Robert' });
      expect(jwt.verify(refreshed.body.data.access_token, SECRET)).to.include({ sub: bob.user.id });
      // Without user_id, a token changes nothing: the server chooses a new id.
      const fresh = await issue({ name: 'Bob' }, bob.access_token);
      expect(fresh.body.data.user.id).not.to.equal(bob.user.id);
    });

    it('makes a user id when none is given', async () => {
      const reply = await http(server.url, 'POST', '/api/auth/token', { json: { name: 'Ada' } });
      expect(reply.body.data.user.id).to.match(/^[0-9a-f-]{36}$/);
    });

    for (const body of [{}, { name: '' }, { name: 'x'.repeat(51) }, { name: 'A', user_id: 'bad id' }, { name: 'A', admin: true }, { name: 5 }]) {
      it(`refuses ${JSON.stringify(body)} with 400`, async () => {
        const reply = await http(server.url, 'POST', '/api/auth/token', { json: body });
        expect(reply.status).to.equal(400);
        expect(reply.body.error.code).to.equal('VALIDATION_ERROR');
      });
    }
  });

  describe('DELETE /api/sessions/{id}', () => {
    const del = (id: string, token?: string) => http(server.url, 'DELETE', `/api/sessions/${id}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

    it('ends the session with its creator token, tells and disconnects everyone, refuses later joins', async () => {
      const session = await createSession(server.url);
      const sio = await joinSocket(server.url, { session_id: session.id, name: 'Sio' });
      const raw = await RawClient.join(server.wsUrl, session.id, { name: 'Raw' });
      const reply = await del(session.id, session.creator_token);
      expect(reply.status).to.equal(200);
      expect(reply.body.data).to.include({ id: session.id, is_active: false });
      for (const inbox of [sio.inbox, raw.inbox]) {
        const ended = await inbox.waitFor('session_ended');
        expect(ended.session_id).to.equal(session.id);
        expect(ended.ended_at).to.match(/Z$/);
        expect(ended.reason).to.equal('ended_by_creator');
      }
      expect(await sio.inbox.waitFor('disconnect')).to.equal('io server disconnect');
      expect((await raw.closed).code).to.equal(1000);
      const late = socketClient(server.url, { session_id: session.id, name: 'Late' });
      expect((await late.inbox.waitFor('connect_error')).message).to.equal('SESSION_INACTIVE');
      late.close();
      expect((await http(server.url, 'GET', `/api/sessions/${session.id}`)).body.data).to.include({ is_active: false, participant_count: 0 });
    });

    it('answers 401 without a token or with a bad one', async () => {
      const session = await createSession(server.url);
      for (const token of [undefined, 'garbage', jwt.sign({ typ: 'creator', sid: session.id, sub: 'x' }, 'wrong-secret')]) {
        const reply = await del(session.id, token);
        expect(reply.status).to.equal(401);
        expect(reply.body.error.code).to.equal('UNAUTHORIZED');
      }
      const noBearer = await http(server.url, 'DELETE', `/api/sessions/${session.id}`, { headers: { authorization: session.creator_token } });
      expect(noBearer.status).to.equal(401);
    });

    it("answers 403 for another session's creator token and for a guest token", async () => {
      const session = await createSession(server.url);
      const other = await createSession(server.url);
      const guest = (await http(server.url, 'POST', '/api/auth/token', { json: { name: 'G' } })).body.data.access_token;
      for (const token of [other.creator_token, guest]) {
        const reply = await del(session.id, token);
        expect(reply.status).to.equal(403);
        expect(reply.body.error.code).to.equal('FORBIDDEN');
      }
      expect((await http(server.url, 'GET', `/api/sessions/${session.id}`)).body.data.is_active).to.equal(true);
    });

    it('answers 404 for an unknown or malformed session', async () => {
      const session = await createSession(server.url);
      for (const id of [randomUUID(), 'bogus']) expect((await del(id, session.creator_token)).status).to.equal(404);
    });
  });

  describe('joins with tokens', () => {
    it('takes identity from a valid token on both transports, over what the client claims', async () => {
      const session = await createSession(server.url);
      const token = jwt.sign({ typ: 'access', name: 'Token Name' }, SECRET, { subject: 'token-user' });
      const sio = await joinSocket(server.url, { session_id: session.id, token, name: 'Liar', user_id: 'liar' });
      expect(sio.inbox.of('session_joined')[0].you).to.include({ id: 'token-user', name: 'Token Name' });
      const raw = await RawClient.join(server.wsUrl, session.id, { token, name: 'Liar' });
      expect(raw.inbox.of('session_joined')[0].you).to.include({ id: 'token-user', name: 'Token Name' });
      const viaQuery = await RawClient.join(server.wsUrl, session.id, { name: 'Liar' }, { query: `token=${token}` });
      expect(viaQuery.inbox.of('session_joined')[0].you.id).to.equal('token-user');
      for (const c of [sio, raw, viaQuery]) c.close();
    });

    const badTokens: Array<[string, () => string]> = [
      ['expired', () => jwt.sign({ typ: 'access', name: 'A', sub: 'a', exp: Math.floor(Date.now() / 1000) - 5 }, SECRET)],
      ['wrongly signed', () => jwt.sign({ typ: 'access', name: 'A', sub: 'a' }, 'not-the-secret-not-the-secret-not-the')],
      ['alg none', () => jwt.sign({ typ: 'access', name: 'A', sub: 'a' }, '', { algorithm: 'none' })],
      ['wrong algorithm', () => jwt.sign({ typ: 'access', name: 'A', sub: 'a' }, SECRET, { algorithm: 'HS384' })],
    ];
    for (const [label, make] of badTokens) {
      it(`refuses an ${label} token with UNAUTHORIZED on socket.io, the first frame and ?token=`, async () => {
        const session = await createSession(server.url);
        const sio = socketClient(server.url, { session_id: session.id, name: 'A', token: make() });
        expect((await sio.inbox.waitFor('connect_error')).message).to.equal('UNAUTHORIZED');
        sio.close();
        const raw = await RawClient.connect(server.wsUrl, session.id);
        raw.send({ name: 'A', token: make() });
        expect((await raw.closed).code).to.equal(4001);
        const query = await RawClient.connect(server.wsUrl, session.id, { query: `token=${encodeURIComponent(make())}` });
        query.send({ name: 'A' });
        expect((await query.closed).code).to.equal(4001);
      });
    }

    it('refuses a creator token as a participant identity', async () => {
      const session = await createSession(server.url);
      const sio = socketClient(server.url, { session_id: session.id, token: session.creator_token });
      expect((await sio.inbox.waitFor('connect_error')).message).to.equal('UNAUTHORIZED');
      sio.close();
    });
  });

  describe('origins', () => {
    it('refuses socket.io handshakes from a foreign Origin on websocket and polling, accepts the allowed one', async () => {
      const session = await createSession(server.url);
      for (const transports of [['websocket'], ['polling']]) {
        const evil = socketClient(server.url, { session_id: session.id, name: 'E' }, { transports, extraHeaders: { origin: 'http://evil.test' } });
        await evil.inbox.waitFor('connect_error');
        expect(evil.connected).to.equal(false);
        evil.close();
        const good = await joinSocket(server.url, { session_id: session.id, name: 'G' }, { transports, extraHeaders: { origin: 'http://allowed.test' } });
        good.close();
      }
    });

    it('refuses /ws handshakes from a foreign Origin, accepts the allowed one', async () => {
      const session = await createSession(server.url);
      const evil = new WebSocket(`${server.wsUrl}/ws/${session.id}`, { origin: 'http://evil.test' });
      const status = await new Promise((resolve) => evil.once('unexpected-response', (_req, res) => resolve(res.statusCode)));
      expect(status).to.equal(403);
      const good = await RawClient.join(server.wsUrl, session.id, { name: 'G' }, { origin: 'http://allowed.test' });
      good.close();
    });

    it("accepts the server's own origin (a page it served, like /play) on both transports, whatever CORS_ORIGINS says", async () => {
      const session = await createSession(server.url);
      const own = server.url; // http://127.0.0.1:PORT, not on CORS_ORIGINS
      for (const transports of [['websocket'], ['polling']]) {
        const sio = await joinSocket(server.url, { session_id: session.id, name: 'Own' }, { transports, extraHeaders: { origin: own } });
        sio.close();
      }
      const raw = await RawClient.join(server.wsUrl, session.id, { name: 'Own' }, { origin: own });
      raw.close();
      // Another port of the same host is another origin.
      const otherPort = own.replace(/:\d+$/, ':1');
      const refused = socketClient(server.url, { session_id: session.id, name: 'E' }, { transports: ['websocket'], extraHeaders: { origin: otherPort } });
      await refused.inbox.waitFor('connect_error');
      refused.close();
    });
  });
});

describe('REQUIRE_AUTH=true', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { JWT_SECRET: SECRET, REQUIRE_AUTH: 'true' } });
  });
  after(async () => server?.close());

  it('refuses joins without a token on both transports', async () => {
    const session = await createSession(server.url);
    const sio = socketClient(server.url, { session_id: session.id, name: 'Anon' });
    expect((await sio.inbox.waitFor('connect_error')).data.code).to.equal('UNAUTHORIZED');
    sio.close();
    const raw = await RawClient.connect(server.wsUrl, session.id);
    raw.send({ name: 'Anon' });
    expect((await raw.closed).code).to.equal(4001);
    expect(raw.inbox.of('error')[0].code).to.equal('UNAUTHORIZED');
  });

  it('admits a valid token, with the identity of its claims', async () => {
    const session = await createSession(server.url);
    const token = jwt.sign({ typ: 'access', name: 'Member' }, SECRET, { subject: 'm-1' });
    const sio = await joinSocket(server.url, { session_id: session.id, token });
    expect(sio.inbox.of('session_joined')[0].you).to.include({ id: 'm-1', name: 'Member' });
    sio.close();
  });
});
