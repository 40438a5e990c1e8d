/**
 * Nobody becomes somebody else, on both transports: a connected user_id is joined only with a
 * token of it (session_joined.token), else USER_ID_TAKEN (raw: close 4409), and the holder is
 * not disturbed; but a holder that is gone without saying so (a frozen process, a dropped
 * network) is replaced within about 3 s as the same participant, with no user_left or
 * user_joined, which is how the existing frontend comes back after a network drop.
 */
import { expect } from 'chai';
import { startChildClient, type ChildClient } from '../support/childClient';
import { http, joinSocket, RawClient, sendWithAck, socketClient, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

describe('identity: nobody becomes somebody else', function () {
  this.timeout(30_000);
  let server: TestServer;
  const open: Array<TestSocket | RawClient> = [];
  const children: ChildClient[] = [];
  const track = <T extends TestSocket | RawClient>(c: T) => (open.push(c), c);

  before(async () => {
    server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '1000' } });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
    while (children.length) children.pop()!.kill();
  });
  after(async () => server?.close());

  const participants = async (sessionId: string) => (await http(server.url, 'GET', `/api/sessions/${sessionId}/participants`)).body.data.map((p: { id: string; name: string }) => `${p.id}:${p.name}`);
  const joinsAndLeaves = (inbox: RawClient['inbox']) => inbox.events.filter((e) => e.event === 'user_joined' || e.event === 'user_left').map((e) => `${e.event} ${e.data.id}`);

  for (const holderTransport of ['raw', 'socket.io'] as const) {
    it(`refuses an impostor of a ${holderTransport} holder on both transports (USER_ID_TAKEN, raw close 4409); the holder is not disturbed`, async () => {
      const session = await createSession(server.url);
      const watcher = track(await joinSocket(server.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
      const alice =
        holderTransport === 'raw'
          ? track(await RawClient.join(server.wsUrl, session.id, { user_id: 'alice', name: 'Alice' }))
          : track(await joinSocket(server.url, { session_id: session.id, user_id: 'alice', name: 'Alice' }));
      await watcher.inbox.waitFor('user_joined', (u) => u.id === 'alice');

      const sio = track(socketClient(server.url, { session_id: session.id, user_id: 'alice', name: 'Mallory' }));
      const refusal = await sio.inbox.waitFor('connect_error');
      expect(refusal.message).to.equal('USER_ID_TAKEN');
      expect(refusal.data).to.include({ code: 'USER_ID_TAKEN' });

      const raw = track(await RawClient.connect(server.wsUrl, session.id));
      raw.send({ user_id: 'alice', name: 'Mallory' });
      expect((await raw.closed).code).to.equal(4409);
      expect(raw.inbox.of('error')).to.deep.equal([{ code: 'USER_ID_TAKEN', message: raw.inbox.of('error')[0].message }]);
      expect(raw.inbox.of('session_joined')).to.deep.equal([]);

      // Alice keeps her name, her seat and her voice; nobody heard of the attempts.
      if (alice instanceof RawClient) alice.send({ event: 'send_message', data: { message: 'still me' } });
      else await sendWithAck(alice, { message: 'still me' });
      expect(await watcher.inbox.waitFor('message_received')).to.include({ user_id: 'alice', user_name: 'Alice', message: 'still me' });
      expect(joinsAndLeaves(watcher.inbox)).to.deep.equal(['user_joined alice']);
      expect(await participants(session.id)).to.deep.equal(['watcher:Watcher', 'alice:Alice']);
    });
  }

  it('admits a second tab that carries session_joined.token as the same participant (no second user_joined), on both transports', async () => {
    const session = await createSession(server.url);
    const watcher = track(await joinSocket(server.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
    const tab1 = track(await RawClient.join(server.wsUrl, session.id, { user_id: 'alice', name: 'Alice' }));
    const { token, you } = tab1.inbox.of('session_joined')[0];
    expect(token).to.be.a('string');
    const tab2 = track(await joinSocket(server.url, { session_id: session.id, user_id: 'alice', name: 'Alice', token }));
    expect(tab2.inbox.of('session_joined')[0].you).to.deep.equal(you);
    const tab3 = track(await RawClient.join(server.wsUrl, session.id, { name: 'Alice' }, { query: `token=${encodeURIComponent(tab2.inbox.of('session_joined')[0].token)}` }));
    expect(tab3.inbox.of('session_joined')[0].you).to.deep.equal(you);
    await sendWithAck(tab2, { message: 'three tabs' });
    await watcher.inbox.waitFor('message_received');
    expect(joinsAndLeaves(watcher.inbox)).to.deep.equal(['user_joined alice']);
    // Two people may share a name: a name is not an identity.
    const otherAlice = track(await joinSocket(server.url, { session_id: session.id, name: 'Alice' }));
    expect(otherAlice.inbox.of('session_joined')[0].you.id).not.to.equal('alice');
  });

  for (const holderTransport of ['raw', 'socket.io'] as const) {
    it(`replaces a frozen ${holderTransport} holder within about 3 s, as the same participant, with no user_left or user_joined`, async () => {
      const session = await createSession(server.url);
      const watcher = track(await joinSocket(server.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
      const holder =
        holderTransport === 'raw'
          ? await startChildClient('raw', `${server.wsUrl}/ws/${session.id}`, { user_id: 'alice', name: 'Alice' })
          : await startChildClient('socket.io', server.url, { session_id: session.id, user_id: 'alice', name: 'Alice' });
      children.push(holder);
      const aliceView = await watcher.inbox.waitFor('user_joined', (u) => u.id === 'alice');
      holder.freeze();

      // The existing frontend coming back after a network drop: its own user_id, no token.
      const started = Date.now();
      const back = track(await RawClient.join(server.wsUrl, session.id, { user_id: 'alice', name: 'Alice' }));
      const waited = Date.now() - started;
      expect(waited, 'the holder had 3 s to answer').to.be.within(2_500, 8_000);
      expect(back.inbox.of('session_joined')[0].you).to.deep.equal(aliceView);
      back.send({ event: 'send_message', data: { message: 'back again' } });
      expect(await watcher.inbox.waitFor('message_received')).to.include({ user_id: 'alice', message: 'back again' });
      expect(joinsAndLeaves(watcher.inbox)).to.deep.equal(['user_joined alice']);
      expect(await participants(session.id)).to.deep.equal(['watcher:Watcher', 'alice:Alice']);
      // The frozen connection was dropped: the new one alone holds Alice, so its close is her leave.
      back.close();
      expect((await watcher.inbox.waitFor('user_left')).id).to.equal('alice');
      expect(joinsAndLeaves(watcher.inbox)).to.deep.equal(['user_joined alice', 'user_left alice']);
    });
  }
});
