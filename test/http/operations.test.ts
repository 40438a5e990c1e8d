/**
 * /livez, /readyz and /metrics on a real node in this process: probes that answer what an
 * orchestrator asks, and the contract's series moving with real traffic.
 */
import { expect } from 'chai';
import { startRedis, type RedisHandle } from '../../harness/redis';
import { waitUntil } from '../../harness/processes';
import { http, joinSocket, RawClient, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { CONTRACT_SERIES, parseMetrics, scrape, valueOf } from '../support/metrics';
import { startTestServer, type TestServer } from '../support/server';

const TOKEN = 'metrics-token-for-tests-0123456789';

describe('operations endpoints', function () {
  this.timeout(30_000);

  describe('with Redis and METRICS_TOKEN', () => {
    let redis: RedisHandle;
    let server: TestServer;
    before(async () => {
      redis = await startRedis();
      server = await startTestServer({ redisUrl: redis.url, env: { METRICS_TOKEN: TOKEN, MESSAGE_RATE_LIMIT: '3', MESSAGE_RATE_WINDOW_S: '60' } });
    });
    after(async () => {
      await server?.close();
      await redis?.destroy();
    });

    it('/livez answers 200 and /readyz 200 with what it checked', async () => {
      const live = await http(server.url, 'GET', '/livez');
      expect(live.status).to.equal(200);
      expect(live.body).to.include({ status: 'alive', node_id: server.config.nodeId });
      const ready = await http(server.url, 'GET', '/readyz');
      expect(ready.status).to.equal(200);
      expect(ready.body).to.include({ status: 'ready', database: 'connected', redis: 'connected', draining: false });
    });

    it('/metrics needs the bearer token when METRICS_TOKEN is set', async () => {
      const none = await http(server.url, 'GET', '/metrics');
      expect(none.status).to.equal(401);
      expect(none.body.error.code).to.equal('UNAUTHORIZED');
      const wrong = await http(server.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status).to.equal(401);
      const right = await http(server.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(right.status).to.equal(200);
      expect(right.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      const names = new Set(parseMetrics(right.text).map((s) => s.name));
      for (const series of CONTRACT_SERIES) expect(names, series).to.include(series);
    });

    it('counts connections, sessions, messages, deliveries and rate limits as they happen', async () => {
      const before = await scrape(server.url, TOKEN);
      expect(valueOf(before, 'seance_redis_up')).to.equal(1);
      expect(valueOf(before, 'seance_database_up')).to.equal(1);
      const session = await createSession(server.url);
      const socket = await joinSocket(server.url, { session_id: session.id, user_id: 'ann', name: 'Ann' });
      const raw = await RawClient.join(server.wsUrl, session.id, { user_id: 'bob', name: 'Bob' });

      const during = await scrape(server.url, TOKEN);
      expect(valueOf(during, 'seance_connections', { transport: 'socketio' })).to.equal(1);
      expect(valueOf(during, 'seance_connections', { transport: 'websocket' })).to.equal(1);
      expect(valueOf(during, 'seance_sessions_active')).to.equal(1);

      for (let i = 0; i < 3; i += 1) expect((await sendWithAck(socket, { message: `hello ${i}` })).ok).to.equal(true);
      expect((await sendWithAck(socket, { message: '   ' })).ok).to.equal(false);
      const limited = await sendWithAck(socket, { message: 'one too many' });
      expect(limited.error.code).to.equal('RATE_LIMITED');
      await raw.inbox.waitFor('spirit_response', () => raw.inbox.of('spirit_response').length === 3);

      const after = await scrape(server.url, TOKEN);
      const delta = (name: string, labels: Record<string, string> = {}) => (valueOf(after, name, labels) ?? 0) - (valueOf(before, name, labels) ?? 0);
      expect(delta('seance_messages_total', { result: 'accepted' })).to.equal(3);
      expect(delta('seance_messages_total', { result: 'rejected' })).to.equal(2);
      expect(delta('seance_rate_limited_total', { kind: 'message' })).to.equal(1);
      // user_joined, then three events per accepted message.
      expect(delta('seance_deliveries_total')).to.be.at.least(9);
      expect(delta('seance_delivery_seconds_count')).to.equal(delta('seance_deliveries_total'));
      expect(delta('seance_spirit_seconds_count', { provider: 'oracle' })).to.equal(3);
      expect(valueOf(after, 'seance_gap_repairs_total')).to.equal(0);

      socket.close();
      raw.close();
      await waitUntil('connections closed', async () => valueOf(await scrape(server.url, TOKEN), 'seance_connections', { transport: 'websocket' }) === 0, { timeoutMs: 5000 });
    });

    it('/readyz answers 503 while Redis is down but /livez stays 200, and both recover', async () => {
      await redis.stop();
      try {
        await waitUntil('readyz 503', async () => (await http(server.url, 'GET', '/readyz')).status === 503, { timeoutMs: 10_000 });
        const ready = await http(server.url, 'GET', '/readyz');
        expect(ready.body).to.include({ status: 'not_ready', redis: 'disconnected', database: 'connected' });
        expect((await http(server.url, 'GET', '/livez')).status).to.equal(200);
        expect(valueOf(await scrape(server.url, TOKEN), 'seance_redis_up')).to.equal(0);
      } finally {
        await redis.start();
      }
      await waitUntil('readyz 200', async () => (await http(server.url, 'GET', '/readyz')).status === 200, { timeoutMs: 15_000 });
    });
  });

  describe('single node without a token', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database: 'sqlite' });
    });
    after(async () => server?.close());

    it('serves /metrics openly and says Redis is not up', async () => {
      const samples = await scrape(server.url);
      expect(valueOf(samples, 'seance_redis_up')).to.equal(0);
      expect(valueOf(samples, 'seance_database_up')).to.equal(1);
      const ready = await http(server.url, 'GET', '/readyz');
      expect(ready.status).to.equal(200);
      expect(ready.body).to.include({ redis: 'disabled' });
    });

    it('documents /livez, /readyz and /metrics in /openapi.json', async () => {
      const doc = (await http(server.url, 'GET', '/openapi.json')).body;
      for (const path of ['/livez', '/readyz', '/metrics']) expect(doc.paths[path]?.get, path).to.be.an('object');
      expect(Object.keys(doc.paths['/readyz'].get.responses)).to.include.members(['200', '503']);
      expect(Object.keys(doc.paths['/metrics'].get.responses)).to.include.members(['200', '401']);
    });
  });
});
