/**
 * Three real node processes on PostgreSQL and Redis, behind nginx rendered from the shipped
 * nginx.conf. Clients talk to chosen nodes directly, or through nginx from distinct loopback
 * source addresses so that nginx spreads them. The cross-node cases run twice: on one Redis,
 * and on a real 3-shard Redis Cluster with sessions whose room channels live on each shard
 * (checked against the cluster's own slot map and subscription counts).
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import Redis from 'ioredis';
import WebSocket from 'ws';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { waitUntil } from '../../harness/processes';
import { http as request, joinSocket, RawClient, sendWithAck, socketClient, type TestSocket } from '../support/clients';
import { startChildClient } from '../support/childClient';
import { createSession } from '../support/factories';
import { nodeServing } from '../support/health';
import { sharedPostgres } from '../support/hooks';
import { redisView, sessionOnShard as onShard, type RedisView } from '../support/redisView';

const wsUrl = (url: string) => url.replace(/^http/, 'ws');
let nextAddress = 10;
/** A fresh 127.0.0.x source address: nginx hashes on it. */
const sourceAddress = () => `127.0.0.${(nextAddress++ % 250) + 2}`;

const MODES = [
  { mode: 'single', label: 'one Redis' },
  { mode: 'cluster', label: 'a Redis Cluster of 3 shards' },
] as const;

for (const { mode, label } of MODES)
  describe(`cluster: 3 nodes behind nginx, on ${label}`, function () {
    this.timeout(60_000);
    let cluster: ClusterHandle;
    let redis: RedisView;
    const open: Array<TestSocket | RawClient> = [];
    const track = <T extends TestSocket | RawClient>(c: T) => (open.push(c), c);
    const shards = () => Array.from({ length: redis.shardCount }, (_, i) => i);

    before(async function () {
      this.timeout(90_000);
      cluster = await startCluster({ nodes: 3, postgres: await sharedPostgres(), redisMode: mode, env: { MESSAGE_RATE_LIMIT: '1000', CLIENT_EVENT_RATE: '1000' } });
      redis = redisView(cluster);
    });
    afterEach(() => {
      while (open.length) open.pop()!.close();
    });
    after(async () => {
      redis?.close();
      await cluster?.stop();
    });

    const sessionOnShard = (baseUrl: string, shard: number, overrides: Record<string, unknown> = {}) => onShard(redis, baseUrl, shard, overrides);

    /** The session's channel has `nodes` subscribers on the server that owns it, and none elsewhere. */
    async function expectSubscribers(sessionId: string, nodes: number): Promise<void> {
      const channel = redis.channelOf(sessionId);
      const owner = await redis.serverFor(channel);
      const count = async (server: Redis) => Number(((await server.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
      await waitUntil(`${nodes} subscribers of ${channel}`, async () => (await count(owner)) === nodes, { timeoutMs: 5_000, intervalMs: 20 });
      if (cluster.redisCluster) {
        for (const shard of cluster.redisCluster.shards) {
          const server = new Redis({ host: '127.0.0.1', port: shard.port });
          try {
            if (server.options.port !== owner.options.port) expect(await count(server), `shard on port ${shard.port}`).to.equal(0);
          } finally {
            server.disconnect();
          }
        }
      }
    }

    if (mode === 'single')
      it('serves each node under its own id, and nginx spreads distinct client addresses', async () => {
        const ids = await Promise.all(cluster.nodes.map(async (n) => (await request(n.url, 'GET', '/health')).body.node_id));
        expect(ids).to.deep.equal(['node-1', 'node-2', 'node-3']);
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++) {
          const localAddress = sourceAddress();
          seen.add(await nodeServing(cluster.url, localAddress));
        }
        expect([...seen].sort()).to.deep.equal(['node-1', 'node-2', 'node-3']);
      });

    it('fans every event out across nodes, socket.io on one node and raw ws on another (a session on each shard)', async () => {
      for (const shard of shards()) await fanOut(shard);
    });

    async function fanOut(shard: number): Promise<void> {
      const [n1, n2, n3] = cluster.nodes;
      const session = await sessionOnShard(n1.url, shard);
      const sio = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'sio', name: 'Sio' }));
      const raw = track(await RawClient.join(wsUrl(n2.url), session.id, { user_id: 'raw', name: 'Raw' }));
      expect((await sio.inbox.waitFor('user_joined')).id).to.equal('raw');
      const third = track(await joinSocket(n3.url, { session_id: session.id, user_id: 'third', name: 'Third' }));
      for (const inbox of [sio.inbox, raw.inbox]) expect((await inbox.waitFor('user_joined', (u) => u.id === 'third')).name).to.equal('Third');
      await expectSubscribers(session.id, 3);
      // Its presence and rate limit keys live on the same shard as its channel (one hash tag).
      for (const key of [`seance:p:{${session.id}}:users`, `seance:rl:lease:{${session.id}}:sio`]) expect(await redis.shardOf(key), key).to.equal(shard);

      const ack = await sendWithAck(sio, { message: 'from node 1' });
      raw.send({ event: 'send_message', data: { message: 'from node 2' } });
      raw.send({ event: 'typing', data: {} });
      for (const inbox of [sio.inbox, raw.inbox, third.inbox]) {
        const received = await inbox.waitForCount('message_received', 2);
        expect(received.map((m) => m.message).sort()).to.deep.equal(['from node 1', 'from node 2']);
        await inbox.waitForCount('spirit_thinking', 2);
        const answers = await inbox.waitForCount('spirit_response', 2);
        expect(answers.map((a) => a.in_reply_to)).to.include(ack.id);
      }
      expect(await sio.inbox.waitFor('user_typing')).to.deep.equal({ id: 'raw', name: 'Raw' });
      expect(await third.inbox.waitFor('user_typing')).to.deep.equal({ id: 'raw', name: 'Raw' });

      third.close();
      for (const inbox of [sio.inbox, raw.inbox]) expect((await inbox.waitFor('user_left')).id).to.equal('third');

      const ended = await request(n3.url, 'DELETE', `/api/sessions/${session.id}`, { headers: { authorization: `Bearer ${session.creator_token}` } });
      expect(ended.status).to.equal(200);
      expect((await sio.inbox.waitFor('session_ended')).session_id).to.equal(session.id);
      expect((await raw.inbox.waitFor('session_ended')).session_id).to.equal(session.id);
      expect(await sio.inbox.waitFor('disconnect')).to.equal('io server disconnect');
      expect((await raw.closed).code).to.equal(1000);
    }

    it("keeps one sender's 50 messages in order on every node", async () => {
      const [n1, n2, n3] = cluster.nodes;
      const session = await sessionOnShard(n1.url, 1 % redis.shardCount);
      const sender = track(await RawClient.join(wsUrl(n1.url), session.id, { user_id: 'sender', name: 'Sender' }));
      const onTwo = track(await joinSocket(n2.url, { session_id: session.id, name: 'Two' }));
      const onThree = track(await RawClient.join(wsUrl(n3.url), session.id, { name: 'Three' }));
      for (let i = 0; i < 50; i++) sender.send({ event: 'send_message', data: { message: `#${i}` } });
      const expected = Array.from({ length: 50 }, (_, i) => `#${i}`);
      for (const inbox of [sender.inbox, onTwo.inbox, onThree.inbox]) {
        expect((await inbox.waitForCount('message_received', 50)).map((m) => m.message)).to.deep.equal(expected);
        const answers = await inbox.waitForCount('spirit_response', 50);
        for (const answer of answers) {
          const asked = inbox.events.findIndex((e) => e.event === 'message_received' && e.data.id === answer.in_reply_to);
          const answered = inbox.events.findIndex((e) => e.event === 'spirit_response' && e.data.id === answer.id);
          expect(asked).to.be.at.least(0).and.below(answered);
        }
      }
    });

    it('counts participants across nodes; one user on two nodes is one participant', async () => {
      const [n1, n2, n3] = cluster.nodes;
      const session = await sessionOnShard(n1.url, 2 % redis.shardCount, { max_users: 3 });
      const a = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'a', name: 'A' }));
      const aAgain = track(await RawClient.join(wsUrl(n2.url), session.id, { user_id: 'a', name: 'A', token: a.inbox.of('session_joined')[0].token }));
      const b = track(await joinSocket(n3.url, { session_id: session.id, user_id: 'b', name: 'B' }));
      expect(b.inbox.of('session_joined')[0].users.map((u: any) => u.id)).to.deep.equal(['a', 'b']);
      for (const node of cluster.nodes) {
        expect((await request(node.url, 'GET', `/api/sessions/${session.id}`)).body.data.participant_count, node.nodeId).to.equal(2);
        const participants = (await request(node.url, 'GET', `/api/sessions/${session.id}/participants`)).body.data;
        expect(participants.map((p: any) => p.id)).to.deep.equal(['a', 'b']);
      }
      expect(a.inbox.of('user_joined').map((u) => u.id)).to.deep.equal(['b']);

      a.close();
      await sendWithAck(b, { message: 'is A still here?' });
      await aAgain.inbox.waitFor('message_received');
      expect(b.inbox.of('user_left')).to.deep.equal([]);
      aAgain.close();
      expect((await b.inbox.waitFor('user_left')).id).to.equal('a');
      expect((await request(n2.url, 'GET', `/api/sessions/${session.id}`)).body.data.participant_count).to.equal(1);
    });

    it('refuses a user_id held on node 1 to a join on node 3 without its token, on both transports; admits its token as the same participant', async () => {
      const [n1, n2, n3] = cluster.nodes;
      const session = await sessionOnShard(n1.url, 1 % redis.shardCount);
      const watcher = track(await joinSocket(n2.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
      const alice = track(await RawClient.join(wsUrl(n1.url), session.id, { user_id: 'alice', name: 'Alice' }));
      await watcher.inbox.waitFor('user_joined', (u) => u.id === 'alice');

      const sio = track(socketClient(n3.url, { session_id: session.id, user_id: 'alice', name: 'Mallory' }));
      expect((await sio.inbox.waitFor('connect_error')).message).to.equal('USER_ID_TAKEN');
      const raw = track(await RawClient.connect(wsUrl(n3.url), session.id));
      raw.send({ user_id: 'alice', name: 'Mallory' });
      expect((await raw.closed).code).to.equal(4409);

      const tab = track(await joinSocket(n3.url, { session_id: session.id, user_id: 'alice', name: 'Alice', token: alice.inbox.of('session_joined')[0].token }));
      await sendWithAck(tab, { message: 'from my other tab' });
      alice.send({ event: 'send_message', data: { message: 'from my first tab' } });
      await watcher.inbox.waitFor('message_received', (m) => m.message === 'from my first tab');
      expect(watcher.inbox.of('message_received').map((m) => `${m.user_id}:${m.user_name}`)).to.deep.equal(['alice:Alice', 'alice:Alice']);
      expect(watcher.inbox.events.filter((e) => e.event === 'user_joined' || e.event === 'user_left').map((e) => `${e.event} ${e.data.id}`)).to.deep.equal(['user_joined alice']);
    });

    it('replaces a frozen holder on node 1 by a tokenless join on node 3 within about 3 s, with no user_left or user_joined', async () => {
      const [n1, n2, n3] = cluster.nodes;
      const session = await sessionOnShard(n1.url, 2 % redis.shardCount);
      const watcher = track(await joinSocket(n2.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
      const holder = await startChildClient('raw', `${wsUrl(n1.url)}/ws/${session.id}`, { user_id: 'alice', name: 'Alice' });
      try {
        const aliceView = await watcher.inbox.waitFor('user_joined', (u) => u.id === 'alice');
        holder.freeze();
        const started = Date.now();
        const back = track(await RawClient.join(wsUrl(n3.url), session.id, { user_id: 'alice', name: 'Alice' }));
        expect(Date.now() - started, 'node 1 had 3 s to hear from its connection').to.be.within(2_500, 8_000);
        expect(back.inbox.of('session_joined')[0].you).to.deep.equal(aliceView);
        back.send({ event: 'send_message', data: { message: 'back, elsewhere' } });
        expect(await watcher.inbox.waitFor('message_received')).to.include({ user_id: 'alice', message: 'back, elsewhere' });
        expect(watcher.inbox.events.filter((e) => e.event === 'user_joined' || e.event === 'user_left').map((e) => `${e.event} ${e.data.id}`)).to.deep.equal(['user_joined alice']);
        // The frozen connection on node 1 is gone: node 3's alone holds Alice, so its close is her leave.
        back.close();
        expect((await watcher.inbox.waitFor('user_left')).id).to.equal('alice');
      } finally {
        holder.kill();
      }
    });

    it('admits exactly max_users when 6 users race for 3 seats on 3 nodes (10 rounds, sessions on every shard)', async () => {
      for (let round = 0; round < 10; round++) {
        const session = await sessionOnShard(cluster.nodes[0].url, round % redis.shardCount, { max_users: 3 });
        const attempts = Array.from({ length: 6 }, (_, i) => {
          const node = cluster.nodes[i % 3];
          return i % 2 === 0
            ? joinSocket(node.url, { session_id: session.id, user_id: `racer-${i}`, name: `Racer ${i}` }).then(track)
            : RawClient.join(wsUrl(node.url), session.id, { user_id: `racer-${i}`, name: `Racer ${i}` }).then(track);
        });
        const results = await Promise.allSettled(attempts);
        const admitted = results.filter((r) => r.status === 'fulfilled');
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(admitted, `round ${round}`).to.have.length(3);
        for (const r of refused) expect(String(r.reason.message)).to.match(/SESSION_FULL|4009/);
        expect((await request(cluster.nodes[2].url, 'GET', `/api/sessions/${session.id}`)).body.data.participant_count).to.equal(3);
        while (open.length) open.pop()!.close();
      }
    });

    if (mode === 'single')
      it('keeps socket.io long-polling on one node through nginx while it chats with a websocket client', async () => {
        const session = await createSession(cluster.url);
        const pollingAddress = sourceAddress();
        const poller = track(
          await joinSocket(
            cluster.url,
            { session_id: session.id, user_id: 'poller', name: 'Poller' },
            { transports: ['polling'], upgrade: false, agent: new http.Agent({ localAddress: pollingAddress, keepAlive: true }) as any },
          ),
        );
        const websocket = track(await joinSocket(cluster.url, { session_id: session.id, user_id: 'ws', name: 'WS' }, { transports: ['websocket'], localAddress: sourceAddress() } as any));
        expect(poller.io.engine.transport.name).to.equal('polling');
        for (let i = 0; i < 10; i++) {
          expect((await sendWithAck(poller, { message: `poll ${i}` })).ok).to.equal(true);
          expect((await sendWithAck(websocket, { message: `ws ${i}` })).ok).to.equal(true);
        }
        for (const inbox of [poller.inbox, websocket.inbox]) {
          const received = await inbox.waitForCount('message_received', 20);
          expect(received.filter((m) => m.user_id === 'poller').map((m) => m.message)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `poll ${i}`));
          expect(received.filter((m) => m.user_id === 'ws').map((m) => m.message)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `ws ${i}`));
        }
        expect(poller.connected).to.equal(true);
        expect(poller.inbox.of('disconnect')).to.deep.equal([]);
      });

    if (mode === 'single')
      it('carries raw ws through nginx between clients of different addresses', async () => {
        const session = await createSession(cluster.url);
        const a = track(await RawClient.join(wsUrl(cluster.url), session.id, { user_id: 'a', name: 'A' }, { localAddress: sourceAddress() }));
        const b = track(await RawClient.join(wsUrl(cluster.url), session.id, { user_id: 'b', name: 'B' }, { localAddress: sourceAddress() }));
        a.send({ event: 'send_message', data: { message: 'through nginx' } });
        expect((await b.inbox.waitFor('message_received')).message).to.equal('through nginx');
      });
    if (mode === 'single')
      it("puts Socket.IO clients that name their session in the handshake query on the session's node; without it, by address", async () => {
        /** The node that answers an engine.io handshake through nginx from `localAddress` (X-Seance-Node). */
        const handshakeNode = (localAddress: string, sessionId?: string) =>
          new Promise<string>((resolve, reject) => {
            const query = `EIO=4&transport=polling${sessionId ? `&session_id=${sessionId}` : ''}`;
            const req = http.get(`${cluster.url}/socket.io/?${query}`, { localAddress, agent: false }, (res) => {
              res.resume();
              resolve(String(res.headers['x-seance-node']));
            });
            req.once('error', reject);
          });
        const perSession = new Map<string, Set<string>>();
        for (let s = 0; s < 12; s++) {
          const sessionId = randomUUID();
          const nodes = new Set<string>();
          for (let c = 0; c < 4; c++) nodes.add(await handshakeNode(sourceAddress(), sessionId));
          perSession.set(sessionId, nodes);
        }
        for (const [sessionId, nodes] of perSession) expect([...nodes], sessionId).to.have.length(1);
        expect(new Set([...perSession.values()].flatMap((nodes) => [...nodes])).size, 'sessions hashed over the nodes').to.be.at.least(2);
        // No session in the query: the client's address decides, as before.
        const byAddress = new Set<string>();
        for (let c = 0; c < 24; c++) byAddress.add(await handshakeNode(sourceAddress()));
        expect(byAddress.size, 'addresses hashed over the nodes').to.be.at.least(2);

        // A client that names its session keeps working on long-polling, and meets the session's raw clients on one node.
        const session = await createSession(cluster.url);
        const node = await handshakeNode(sourceAddress(), session.id);
        const poller = track(
          await joinSocket(
            cluster.url,
            { session_id: session.id, user_id: 'poller', name: 'Poller' },
            { transports: ['polling'], upgrade: false, query: { session_id: session.id }, agent: new http.Agent({ localAddress: sourceAddress(), keepAlive: true }) as any },
          ),
        );
        const upgraded = track(await joinSocket(cluster.url, { session_id: session.id, user_id: 'ws', name: 'WS' }, { query: { session_id: session.id }, localAddress: sourceAddress() } as any));
        for (let i = 0; i < 5; i++) expect((await sendWithAck(poller, { message: `poll ${i}` })).ok).to.equal(true);
        const received = await upgraded.inbox.waitForCount('message_received', 5);
        expect(received.map((m) => m.message)).to.deep.equal(Array.from({ length: 5 }, (_, i) => `poll ${i}`));
        expect(poller.connected).to.equal(true);
        expect(await handshakeNode(sourceAddress(), session.id)).to.equal(node);
      });

    if (mode === 'single')
      it("puts a session's raw ws clients on one node through nginx, whatever their addresses; sessions spread", async () => {
        /** The node that answers a raw ws upgrade for `sessionId` from `localAddress` (X-Seance-Node of the 101). */
        const rawNode = (sessionId: string, localAddress: string) =>
          new Promise<string>((resolve, reject) => {
            const ws = new WebSocket(`${wsUrl(cluster.url)}/ws/${sessionId}`, { localAddress });
            ws.once('upgrade', (res) => resolve(String(res.headers['x-seance-node'])));
            ws.once('open', () => ws.close());
            ws.once('error', reject);
          });
        const perSession = new Map<string, Set<string>>();
        for (let s = 0; s < 12; s++) {
          const sessionId = randomUUID();
          const nodes = new Set<string>();
          for (let c = 0; c < 4; c++) nodes.add(await rawNode(sessionId, sourceAddress()));
          perSession.set(sessionId, nodes);
        }
        for (const [sessionId, nodes] of perSession) expect([...nodes], sessionId).to.have.length(1);
        const used = new Set([...perSession.values()].flatMap((nodes) => [...nodes]));
        expect(used.size, 'sessions hashed over the nodes').to.be.at.least(2);
        for (const node of used) expect(['node-1', 'node-2', 'node-3']).to.include(node);
      });

    it("subscribes each node to its sessions' channels only: a participant's room (used to skip them) costs no subscription, and a join no lease", async () => {
      const [a, b] = cluster.nodes;
      const session = await sessionOnShard(a.url, 0);
      const alice = track(await joinSocket(a.url, { session_id: session.id, user_id: 'alice', name: 'Alice' }));
      const bob = track(await joinSocket(b.url, { session_id: session.id, name: 'Bob' }));
      await expectSubscribers(session.id, 2);
      // Nor does a join take a message lease: a participant's first message does.
      const lease = `seance:rl:lease:{${session.id}}:alice`;
      expect(await (await redis.serverFor(lease)).get(lease)).to.equal(null);
      const servers = cluster.redisCluster ? cluster.redisCluster.shards.map((shard) => new Redis({ host: '127.0.0.1', port: shard.port })) : [await redis.serverFor(redis.channelOf(session.id))];
      try {
        const channels: string[] = [];
        for (const server of servers) channels.push(...((await server.call('PUBSUB', 'SHARDCHANNELS', `*${session.id}*`)) as string[]));
        expect(channels).to.deep.equal([redis.channelOf(session.id)]);
      } finally {
        if (cluster.redisCluster) for (const server of servers) server.disconnect();
      }
      // "Everyone else" still holds across nodes: Bob hears Alice typing, Alice does not.
      alice.emit('typing');
      await bob.inbox.waitFor('user_typing');
      // Alice's own message after it: once she has it, a user_typing for her would have come first.
      expect((await sendWithAck(alice, { message: 'Hello?' })).ok).to.equal(true);
      await alice.inbox.waitFor('message_received');
      expect(await (await redis.serverFor(lease)).get(lease)).not.to.equal(null);
      expect(alice.inbox.events.map((e) => e.event)).not.to.include('user_typing');
    });

    it('carries the three events of a message to the other nodes in one Redis message, on the shard of its session', async () => {
      const [a, b] = cluster.nodes;
      const session = await sessionOnShard(a.url, redis.shardCount - 1);
      const listener = track(await joinSocket(b.url, { session_id: session.id, name: 'Listener' }));
      const sender = track(await joinSocket(a.url, { session_id: session.id, name: 'Sender' }));
      const channel = redis.channelOf(session.id);
      const owner = await redis.serverFor(channel);
      const spy = new Redis({ host: '127.0.0.1', port: owner.options.port });
      const published: string[] = [];
      spy.on('smessageBuffer', (ch: Buffer, payload: Buffer) => ch.toString() === channel && published.push(payload.toString()));
      try {
        await spy.ssubscribe(channel);
        expect((await sendWithAck(sender, { message: 'Is anyone there?' })).ok).to.equal(true);
        await listener.inbox.waitFor('spirit_response');
        // A marker after it on the same channel: once it arrives, everything before it has.
        const marker = new Redis({ host: '127.0.0.1', port: owner.options.port });
        await marker.spublish(channel, 'marker');
        marker.disconnect();
        await waitUntil('marker', async () => published.includes('marker'), { timeoutMs: 5_000, intervalMs: 10 });
      } finally {
        spy.disconnect();
      }
      const batches = published.filter((p) => p !== 'marker');
      expect(batches).to.have.length(1);
      expect(JSON.parse(batches[0]).map((m: any) => m.data.packet.data[0])).to.deep.equal(['message_received', 'spirit_thinking', 'spirit_response']);
      expect(listener.inbox.events.map((e) => e.event).filter((e) => e !== 'user_joined')).to.deep.equal(['session_joined', 'message_received', 'spirit_thinking', 'spirit_response']);
    });

    it("sends a session's end and the disconnection of its sockets on the session's channel, in that order (shards keep no order between channels)", async () => {
      const [a, b] = cluster.nodes;
      const session = await sessionOnShard(a.url, redis.shardCount - 1);
      const listener = track(await joinSocket(b.url, { session_id: session.id, name: 'Listener' }));
      const channel = redis.channelOf(session.id);
      const owner = await redis.serverFor(channel);
      const spy = new Redis({ host: '127.0.0.1', port: owner.options.port });
      const kinds: string[] = [];
      spy.on('smessageBuffer', (ch: Buffer, payload: Buffer) => {
        if (ch.toString() !== channel) return;
        for (const m of [JSON.parse(payload.toString())].flat()) kinds.push(m.type === 3 ? m.data.packet.data[0] : `type ${m.type}`);
      });
      try {
        await spy.ssubscribe(channel);
        const ended = await request(a.url, 'DELETE', `/api/sessions/${session.id}`, { headers: { authorization: `Bearer ${session.creator_token}` } });
        expect(ended.status).to.equal(200);
        await waitUntil('the disconnection on the channel', async () => kinds.includes('type 6'), { timeoutMs: 5_000, intervalMs: 10 });
      } finally {
        spy.disconnect();
      }
      expect(kinds.filter((k) => k === 'session_ended' || k === 'type 6')).to.deep.equal(['session_ended', 'type 6']);
      await listener.inbox.waitFor('disconnect');
      expect(listener.inbox.events.map((e) => e.event).slice(-2)).to.deep.equal(['session_ended', 'disconnect']);
    });

    it("delivers to listeners on the sender's node without waiting for Redis", async () => {
      const [a] = cluster.nodes;
      const session = await createSession(a.url);
      const neighbour = track(await joinSocket(a.url, { session_id: session.id, name: 'Neighbour' }));
      const sender = track(await joinSocket(a.url, { session_id: session.id, name: 'Sender' }));
      expect((await sendWithAck(sender, { message: 'first' })).ok).to.equal(true);
      const admin = new Redis({ host: '127.0.0.1', port: (await redis.serverFor(redis.channelOf(session.id))).options.port });
      try {
        // Every write to Redis stalls, publishes included.
        await admin.client('PAUSE', 10_000, 'WRITE');
        sender.emit('send_message', { message: 'second' });
        expect((await neighbour.inbox.waitFor('message_received', (m) => m.message === 'second', 3_000)).user_name).to.equal('Sender');
      } finally {
        await admin.client('UNPAUSE');
        admin.disconnect();
      }
    });
  });
