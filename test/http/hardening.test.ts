/**
 * What one client may cost the others over HTTP, on one real node: whose X-Forwarded-For is
 * believed (TRUST_PROXY), the speech routes' per-address limits, numbers past what the
 * database holds (on SQLite and PostgreSQL), and the Admin UI's login throttle.
 */
import type { IncomingMessage } from 'node:http';
import nodeHttp from 'node:http';
import { expect } from 'chai';
import { io as ioClient } from 'socket.io-client';
import { loadConfig } from '../../config';
import { createRequestPolicy } from '../../server/requestPolicy';
import { http, joinSocket, RawClient } from '../support/clients';
import { createSession } from '../support/factories';
import { scrape, valueOf } from '../support/metrics';
import { startTestServer, type TestServer } from '../support/server';

/** A request from a given loopback source address (127.0.0.x), as a proxy or a client would send it. */
function post(server: TestServer, path: string, body: unknown, opts: { from: string; forwardedFor?: string }): Promise<{ status: number; body: any }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(
      `${server.url}${path}`,
      {
        method: 'POST',
        localAddress: opts.from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...(opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = null;
          if ((res.headers['content-type'] ?? '').includes('json')) parsed = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const refusals = async (server: TestServer, rule: string) => valueOf(await scrape(server.url), 'seance_client_refusals_total', { rule });

const peer = (remoteAddress: string, forwardedFor: string) => ({ socket: { remoteAddress }, headers: { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

describe('hardening: what one client may cost the others over HTTP', function () {
  this.timeout(30_000);

  describe('TRUST_PROXY', () => {
    it('believes X-Forwarded-For from loopback only by default: a private peer cannot name its address', () => {
      const policy = createRequestPolicy(loadConfig({ NODE_ENV: 'test' }));
      expect(policy.clientAddress(peer('10.1.2.3', '198.51.100.7'))).to.equal('10.1.2.3');
      expect(policy.clientAddress(peer('192.168.0.9', '198.51.100.7'))).to.equal('192.168.0.9');
      expect(policy.clientAddress(peer('fd00::5', '198.51.100.7'))).to.equal('fd00::5');
      expect(policy.clientAddress(peer('127.0.0.1', '198.51.100.7'))).to.equal('198.51.100.7');
    });

    it('takes the networks an operator names, and refuses at start what is not one', () => {
      const policy = createRequestPolicy(loadConfig({ NODE_ENV: 'test', TRUST_PROXY: '172.28.89.0/24' }));
      expect(policy.clientAddress(peer('172.28.89.7', '198.51.100.7'))).to.equal('198.51.100.7');
      expect(policy.clientAddress(peer('127.0.0.1', '198.51.100.7'))).to.equal('127.0.0.1');
      expect(() => loadConfig({ NODE_ENV: 'test', TRUST_PROXY: 'everyone' })).to.throw(/TRUST_PROXY/);
    });
  });

  describe('speech, on a node whose only trusted proxy is 127.0.0.2', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database: 'sqlite', env: { TRUST_PROXY: '127.0.0.2', AUDIO_RATE_LIMIT: '3' } });
    });
    after(async () => server?.close());

    it('limits tts/generate per address however X-Forwarded-For varies, and believes it from the proxy', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) {
        const reply = await post(server, '/api/tts/generate', { text: 'Who knocks?' }, { from: '127.0.0.1', forwardedFor: `198.51.100.${i}` });
        statuses.push(reply.status);
        if (reply.status === 429) expect(reply.body.error.code).to.equal('RATE_LIMITED');
      }
      expect(statuses.filter((s) => s === 200)).to.have.length(20);
      expect(statuses.slice(20)).to.deep.equal([429, 429, 429, 429, 429]);
      // Through the trusted proxy each forwarded address has its own budget.
      for (let i = 0; i < 25; i++) {
        const reply = await post(server, '/api/tts/generate', { text: 'Who knocks?' }, { from: '127.0.0.2', forwardedFor: `203.0.113.${i}` });
        expect(reply.status, `call ${i}`).to.equal(200);
      }
      expect(await refusals(server, 'speech_rate')).to.equal(5);
    });

    it('limits the audio path per address', async () => {
      const session = await createSession(server.url);
      const statuses: number[] = [];
      for (let i = 1; i <= 5; i++) statuses.push((await http(server.url, 'GET', `/api/sessions/${session.id}/messages/${i}/audio`)).status);
      expect(statuses).to.deep.equal([404, 404, 404, 429, 429]);
      const refused = await http(server.url, 'GET', `/api/sessions/${session.id}/messages/1/audio`);
      expect(refused.body.error.code).to.equal('RATE_LIMITED');
      expect(refused.headers.get('retry-after')).to.match(/^\d+$/);
      expect(await refusals(server, 'audio_rate')).to.equal(3);
    });
  });

  for (const database of ['sqlite', 'postgres'] as const)
    describe(`numbers past what the database holds, on ${database}`, () => {
      let server: TestServer;
      before(async () => {
        server = await startTestServer({ database, env: { AUDIO_RATE_LIMIT: '1000' } });
      });
      after(async () => server?.close());

      it('are a 400 VALIDATION_ERROR in history queries, never a 500', async () => {
        const session = await createSession(server.url);
        for (const query of ['after_seq=2147483648', 'after_seq=99999999999999999999', 'before=2147483648', 'before=999999999999999', 'limit=2147483648', 'limit=-2147483649', 'after_seq=1e400']) {
          const reply = await http(server.url, 'GET', `/api/sessions/${session.id}/history?${query}`);
          expect(reply.status, query).to.equal(400);
          expect(reply.body.error.code, query).to.equal('VALIDATION_ERROR');
        }
        expect((await http(server.url, 'GET', `/api/sessions/${session.id}/history?after_seq=2147483647`)).status).to.equal(200);
        expect((await http(server.url, 'GET', `/api/sessions/${session.id}/history?before=2147483647`)).status).to.equal(200);
      });

      it('are a 404 on the audio path, and an ordinary join as last_seq on both transports', async () => {
        const session = await createSession(server.url);
        const audio = await http(server.url, 'GET', `/api/sessions/${session.id}/messages/2147483648/audio`);
        expect(audio.status).to.equal(404);
        expect(audio.body.error.code).to.equal('NOT_FOUND');
        const sio = await joinSocket(server.url, { session_id: session.id, name: 'Ann', last_seq: 2147483648 });
        const raw = await RawClient.join(server.wsUrl, session.id, { name: 'Raw', last_seq: 2 ** 53 });
        try {
          expect((await sio.inbox.waitFor('session_joined')).resumed).to.equal(false);
          expect((await raw.inbox.waitFor('session_joined')).resumed).to.equal(false);
        } finally {
          sio.close();
          raw.close();
        }
      });
    });

  describe('Admin UI logins', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database: 'sqlite', env: { ADMIN_UI_PASSWORD: 'correct horse battery' } });
    });
    after(async () => server?.close());

    /** The error a login gets, or null when it is let in. */
    function login(password: string): Promise<string | null> {
      const socket = ioClient(`${server.url}/admin`, { auth: { username: 'admin', password }, transports: ['websocket'], reconnection: false, forceNew: true });
      return new Promise((resolve) => {
        socket.once('connect', () => {
          socket.close();
          resolve(null);
        });
        socket.once('connect_error', (err) => {
          socket.close();
          resolve(err.message);
        });
      });
    }

    it('refuses an address past five wrong passwords a minute without checking, even the right one', async () => {
      expect(await login('correct horse battery')).to.equal(null);
      const wrong: Array<string | null> = [];
      for (let i = 0; i < 5; i++) wrong.push(await login(`wrong ${i}`));
      expect(wrong.every((m) => m !== null && !/too many/.test(m))).to.equal(true);
      const started = performance.now();
      expect(await login('wrong again')).to.match(/too many failed logins/);
      expect(performance.now() - started).to.be.below(1000);
      expect(await login('correct horse battery')).to.match(/too many failed logins/);
      expect(await refusals(server, 'admin_login')).to.equal(2);
    });
  });
});
