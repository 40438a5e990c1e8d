/**
 * The contract's limits, in memory on one node and in Redis across a cluster: a client
 * gains nothing by spreading its requests over several nodes.
 */
import http from 'node:http';
import { expect } from 'chai';
import Redis from 'ioredis';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { http as request, joinSocket, RawClient, sendWithAck, socketClient } from '../support/clients';
import { sharedPostgres } from '../support/hooks';
import { redisView, type RedisView } from '../support/redisView';
import { startTestServer, type TestServer } from '../support/server';

/** POST /api/sessions from a chosen loopback source address. */
function createFrom(baseUrl: string, localAddress: string): Promise<{ status: number; retryAfter: string | undefined; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}/api/sessions`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode as number, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ name: 'limited' }));
  });
}

describe('rate limits on one node (memory)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { SESSION_CREATE_RATE_LIMIT: '3' } });
  });
  after(async () => server?.close());

  it('answers session creation past the limit with 429 RATE_LIMITED and Retry-After, per address', async () => {
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await createFrom(server.url, '127.0.0.61'));
    expect(replies.map((r) => r.status)).to.deep.equal([201, 201, 201, 429]);
    expect(replies[3].body.error.code).to.equal('RATE_LIMITED');
    expect(Number(replies[3].retryAfter)).to.be.within(1, 60);
    expect((await createFrom(server.url, '127.0.0.62')).status).to.equal(201);
  });
});

for (const { mode, label, net } of [
  { mode: 'single', label: 'one Redis', net: 7 },
  { mode: 'cluster', label: 'a Redis Cluster', net: 8 },
] as const)
  describe(`rate limits across a cluster (${label})`, function () {
    this.timeout(60_000);
    let cluster: ClusterHandle;
    let redis: RedisView;
    const wsUrl = (url: string) => url.replace(/^http/, 'ws');
    /** Client addresses of this variant (the limits count per address). */
    const address = (last: number) => `127.0.${net}.${last}`;

    before(async function () {
      this.timeout(90_000);
      cluster = await startCluster({
        nodes: 2,
        nginx: false,
        redisMode: mode,
        postgres: await sharedPostgres(),
        env: { SESSION_CREATE_RATE_LIMIT: '4', MESSAGE_RATE_LIMIT: '3', MESSAGE_RATE_WINDOW_S: '60', CONNECT_RATE_LIMIT: '5' },
      });
      redis = redisView(cluster);
    });
    after(async () => {
      redis?.close();
      await cluster?.stop();
    });

    it('counts session creation per address across nodes', async () => {
      const [a, b] = cluster.nodes;
      const statuses = [];
      for (const node of [a, b, a, b, a]) statuses.push((await createFrom(node.url, address(71))).status);
      expect(statuses).to.deep.equal([201, 201, 201, 201, 429]);
    });

    it("counts one participant's messages across its connections on different nodes", async () => {
      const [a, b] = cluster.nodes;
      const session = (await createFrom(a.url, address(72))).body.data;
      const onA = await joinSocket(a.url, { session_id: session.id, user_id: 'chatty', name: 'Chatty' }, { localAddress: address(73) } as any);
      // The second connection proves it is the same participant with the first one's token.
      const { token } = onA.inbox.of('session_joined')[0];
      const onB = await joinSocket(b.url, { session_id: session.id, user_id: 'chatty', name: 'Chatty', token }, { localAddress: address(74) } as any);
      const acks = [await sendWithAck(onA, { message: '1' }), await sendWithAck(onB, { message: '2' }), await sendWithAck(onA, { message: '3' }), await sendWithAck(onB, { message: '4' })];
      expect(acks.map((x) => x.ok)).to.deep.equal([true, true, true, false]);
      expect(acks[3].error.code).to.equal('RATE_LIMITED');
      const history = await request(a.url, 'GET', `/api/sessions/${session.id}/history`);
      expect(history.body.data.filter((m: any) => !m.is_spirit).map((m: any) => m.message)).to.deep.equal(['1', '2', '3']);
      onA.close();
      onB.close();
    });

    it("answers a participant's message without waiting for Redis once the participant has joined", async () => {
      const [a] = cluster.nodes;
      const session = (await createFrom(a.url, address(77))).body.data;
      const socket = await joinSocket(a.url, { session_id: session.id, user_id: 'steady', name: 'Steady' }, { localAddress: address(78) } as any);
      expect((await sendWithAck(socket, { message: 'first' })).ok).to.equal(true);
      // The server of the participant's limit (a Redis Cluster shard: the session's hash slot).
      const admin = new Redis({ host: '127.0.0.1', port: (await redis.serverFor(`seance:rl:lease:{${session.id}}:steady`)).options.port });
      try {
        // Every write to Redis stalls: a limit that consulted Redis first could not answer now.
        await admin.client('PAUSE', 10_000, 'WRITE');
        expect(await sendWithAck(socket, { message: 'second' }, 3_000)).to.deep.include({ ok: true });
      } finally {
        await admin.client('UNPAUSE');
        admin.disconnect();
        socket.close();
      }
    });

    it('counts connection attempts per address across nodes and transports', async () => {
      const [a, b] = cluster.nodes;
      const session = (await createFrom(a.url, address(75))).body.data;
      const localAddress = address(76);
      const joined = [];
      for (const node of [a, b, a, b, a]) {
        joined.push(await joinSocket(node.url, { session_id: session.id, name: 'C' }, { localAddress } as any));
      }
      const refused = socketClient(b.url, { session_id: session.id, name: 'C' }, { localAddress } as any);
      const refusal = await refused.inbox.waitFor('connect_error');
      expect(refusal).to.deep.include({ message: 'RATE_LIMITED' });
      const raw = await RawClient.connect(wsUrl(a.url), session.id, { localAddress });
      raw.send({ name: 'C' });
      expect((await raw.closed).code).to.equal(4029);
      expect(raw.inbox.of('error')[0].code).to.equal('RATE_LIMITED');
      for (const s of [...joined, refused]) s.close();
    });
  });
