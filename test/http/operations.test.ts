/**
 * /livez, /readyz and /metrics on a real node in this process: probes that answer what an
 * orchestrator asks, and the contract's series moving with real traffic.
 */
import bunyan from 'bunyan';
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
    // What the node logs, as records (its request lines among them).
    const logs = new bunyan.RingBuffer({ limit: 2000 });
    before(async () => {
      redis = await startRedis();
      server = await startTestServer({
        redisUrl: redis.url,
        env: { METRICS_TOKEN: TOKEN, MESSAGE_RATE_LIMIT: '3', MESSAGE_RATE_WINDOW_S: '60' },
        logger: bunyan.createLogger({ name: 'seance', streams: [{ type: 'raw', stream: logs, level: 'debug' }] }),
      });
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

    it('counts HTTP requests by route template and status, and shows the database pool', async () => {
      const before = await scrape(server.url, TOKEN);
      const session = await createSession(server.url);
      expect((await http(server.url, 'GET', `/api/sessions/${session.id}`)).status).to.equal(200);
      expect((await http(server.url, 'GET', '/api/sessions/00000000-0000-4000-8000-000000000000')).status).to.equal(404);
      expect((await http(server.url, 'GET', '/no/such/route')).status).to.equal(404);
      const after = await scrape(server.url, TOKEN);
      const count = (samples: typeof after, labels: Record<string, string>) => valueOf(samples, 'seance_http_request_duration_seconds_count', labels) ?? 0;
      const delta = (labels: Record<string, string>) => count(after, labels) - count(before, labels);
      expect(delta({ method: 'POST', route: '/api/sessions', status: '201' })).to.equal(1);
      expect(delta({ method: 'GET', route: '/api/sessions/:id', status: '200' })).to.equal(1);
      // An error reply keeps its route (express resets req.baseUrl on the way to the error handler).
      expect(delta({ method: 'GET', route: '/api/sessions/:id', status: '404' })).to.equal(1);
      expect(delta({ method: 'GET', route: 'unmatched', status: '404' })).to.equal(1);
      const routes = new Set(after.filter((s) => s.name.startsWith('seance_http_request_duration_seconds')).map((s) => s.labels.route));
      for (const route of routes) expect(route, 'a raw id in a label').not.to.match(/[0-9a-f]{8}-|no\/such/);
      // The PostgreSQL pool at its defaults: DB_POOL_SIZE 20 + DB_POOL_OVERFLOW 10.
      expect(valueOf(after, 'seance_db_pool_max')).to.equal(30);
      expect((valueOf(after, 'seance_db_pool_connections', { state: 'idle' }) ?? 0) + (valueOf(after, 'seance_db_pool_connections', { state: 'in_use' }) ?? 0)).to.be.at.least(1);
      expect(valueOf(after, 'seance_db_pool_waiting')).to.equal(0);
    });

    it('stays ready while Redis is down and serves its own clients; /health and seance_degraded say it is degraded', async () => {
      const session = await createSession(server.url);
      // Users of their own: the rate limit of this block (3 a minute) is spent by the tests above.
      const socket = await joinSocket(server.url, { session_id: session.id, user_id: 'outage-sio', name: 'Sio' });
      const raw = await RawClient.join(server.wsUrl, session.id, { user_id: 'outage-raw', name: 'Raw' });
      await redis.stop();
      try {
        await waitUntil('the node sees Redis down', async () => (await http(server.url, 'GET', '/health')).body.redis === 'disconnected', { timeoutMs: 10_000 });
        const ready = await http(server.url, 'GET', '/readyz');
        expect(ready.status, 'a Redis outage must not take every replica out of its Service').to.equal(200);
        expect(ready.body).to.include({ status: 'ready', redis: 'disconnected', database: 'connected', draining: false, degraded: true });
        const health = await http(server.url, 'GET', '/health');
        expect(health.status).to.equal(503);
        expect(health.body).to.include({ status: 'unhealthy', redis: 'disconnected', database: 'connected', degraded: true });
        expect((await http(server.url, 'GET', '/livez')).status).to.equal(200);
        const samples = await scrape(server.url, TOKEN);
        expect(valueOf(samples, 'seance_redis_up')).to.equal(0);
        expect(valueOf(samples, 'seance_degraded')).to.equal(1);

        // What readiness promises: this node's clients still talk to each other.
        const ack = await sendWithAck(socket, { message: 'still here without Redis' }, 10_000);
        expect(ack.ok, JSON.stringify(ack)).to.equal(true);
        await raw.inbox.waitFor('message_received', (m) => m.id === ack.id, 10_000);

        // The probe's 503 is news about a dependency, logged at warn: not an error of the request.
        const probeLines = logs.records.filter((r: any) => r.msg === 'request' && r.path === '/health' && r.status === 503);
        expect(probeLines).to.not.be.empty;
        for (const line of probeLines) expect(line.level, 'log level of a /health 503').to.equal(bunyan.WARN);
      } finally {
        await redis.start();
      }
      await waitUntil('healthy again', async () => (await http(server.url, 'GET', '/health')).status === 200, { timeoutMs: 15_000 });
      expect((await http(server.url, 'GET', '/readyz')).body).to.include({ degraded: false, redis: 'connected' });
      expect(valueOf(await scrape(server.url, TOKEN), 'seance_degraded')).to.equal(0);
      socket.close();
      raw.close();
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

    it('documents the 503 of every /api call (an outage, a restart) and the 413 of every call with a body', async () => {
      const doc = (await http(server.url, 'GET', '/openapi.json')).body;
      expect(doc.components.responses.ServiceUnavailable).to.be.an('object');
      for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
        if (!path.startsWith('/api/') || path === '/api/auth/token') continue; // tokens need neither database nor Redis
        for (const [method, op] of Object.entries<any>(item)) expect(Object.keys(op.responses), `${method} ${path}`).to.include('503');
      }
      for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
        for (const [method, op] of Object.entries<any>(item)) if (op.requestBody) expect(Object.keys(op.responses), `${method} ${path}`).to.include('413');
      }
    });
  });
});
