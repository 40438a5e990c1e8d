/**
 * The harness itself, on real processes: PostgreSQL and Redis survive stop/start cycles,
 * and nginx rendered from the shipped nginx.conf is sticky per client address, spreads
 * distinct addresses, upgrades websockets and skips a dead upstream.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { WebSocket, WebSocketServer } from 'ws';
import { checkNginxConfig, renderNginxConfig, startNginx, type NginxHandle } from '../../harness/nginx';
import { pgClient, pgQuery } from '../../harness/pg';
import { freePort } from '../../harness/ports';
import { makeTempDir, removeTempDir } from '../../harness/processes';
import { startPostgres, type PostgresHandle } from '../../harness/postgres';
import { redisPing, startRedis, type RedisHandle } from '../../harness/redis';

/** The error code of a failed connection attempt ('' when it succeeded). */
async function connectError(url: string): Promise<string> {
  const client = pgClient(url, 2_000);
  try {
    await client.connect();
    return '';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('harness', function () {
  this.timeout(60_000);

  describe('postgres', () => {
    let pg: PostgresHandle;
    before(async () => {
      pg = await startPostgres();
    });
    after(async () => {
      if (pg) await pg.destroy();
    });

    it('serves the seance database on loopback', async () => {
      expect(pg.url).to.equal(`postgres://postgres@127.0.0.1:${pg.port}/seance`);
      const rows = await pgQuery<{ one: number; db: string }>(pg.url, 'SELECT 1 AS one, current_database() AS db');
      expect(rows).to.deep.equal([{ one: 1, db: 'seance' }]);
    });

    it('refuses connections while stopped and keeps its data across restarts', async () => {
      await pgQuery(pg.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
      for (let cycle = 0; cycle < 2; cycle++) {
        await pg.stop();
        expect(await connectError(pg.url)).to.equal('ECONNREFUSED');
        await pg.start();
        expect(await pgQuery<{ n: number }>(pg.url, 'SELECT n FROM kept')).to.deep.equal([{ n: 42 }]);
      }
    });

    it('removes its temp dir on destroy', async () => {
      const other = await startPostgres();
      expect(fs.existsSync(other.dir)).to.equal(true);
      await other.destroy();
      expect(fs.existsSync(other.dir)).to.equal(false);
      expect(await connectError(other.url)).to.equal('ECONNREFUSED');
    });
  });

  describe('redis', () => {
    let redis: RedisHandle;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      if (redis) await redis.destroy();
    });

    it('answers PING, goes away on stop and comes back on the same port', async () => {
      expect(redis.url).to.equal(`redis://127.0.0.1:${redis.port}`);
      expect(await redisPing(redis.port)).to.equal(true);
      await redis.stop();
      expect(await redisPing(redis.port)).to.equal(false);
      await redis.start();
      expect(await redisPing(redis.port)).to.equal(true);
    });
  });

  describe('nginx rendered from the shipped nginx.conf', () => {
    /** A stand-in app node: answers its name and the headers nginx forwarded, echoes websocket frames. */
    interface Upstream {
      name: string;
      server: http.Server;
      address: string;
    }
    let upstreams: Upstream[];
    let nginx: NginxHandle;

    async function startUpstream(name: string): Promise<Upstream> {
      const server = http.createServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name, headers: req.headers }));
      });
      const wss = new WebSocketServer({ server });
      wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`${name}:${(data as Buffer).toString()}`)));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { name, server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
    }

    async function closeUpstream(u: Upstream): Promise<void> {
      // nginx keeps idle keepalive connections to its upstreams: close() alone would wait for them.
      const closed = new Promise<void>((resolve) => u.server.close(() => resolve()));
      u.server.closeAllConnections();
      await closed;
    }

    function get(localAddress: string, urlPath = '/'): Promise<{ name: string; headers: Record<string, string> }> {
      return new Promise((resolve, reject) => {
        const req = http.request(`${nginx.url}${urlPath}`, { localAddress, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${body}`));
            else resolve(JSON.parse(body));
          });
        });
        req.on('error', reject);
        req.end();
      });
    }

    const SOURCES = Array.from({ length: 19 }, (_, i) => `127.0.0.${i + 2}`);

    before(async () => {
      upstreams = await Promise.all([startUpstream('A'), startUpstream('B')]);
      nginx = await startNginx({ upstreams: upstreams.map((u) => u.address) });
    });
    after(async () => {
      if (nginx) await nginx.stop();
      await Promise.all((upstreams ?? []).filter((u) => u.server.listening).map((u) => closeUpstream(u)));
    });

    it('renders a config that `nginx -t` accepts, with only the local parts changed', async () => {
      const workDir = makeTempDir('seance-nginx-t-');
      try {
        const port = await freePort();
        const text = renderNginxConfig({ listenPort: port, upstreams: ['127.0.0.1:1', '127.0.0.1:2'], workDir });
        expect(text).to.include(`listen 127.0.0.1:${port};`);
        expect(text).to.include('server 127.0.0.1:1 max_fails=1 fail_timeout=5s;');
        expect(text).to.include('server 127.0.0.1:2 max_fails=1 fail_timeout=5s;');
        expect(text).not.to.include('app:8000');
        expect(text).to.include('hash $seance_balance_key;');
        expect(text).to.include(`pid "${path.join(workDir, 'nginx.pid')}";`);
        const file = path.join(workDir, 'nginx.conf');
        fs.writeFileSync(file, text);
        expect(await checkNginxConfig(file)).to.include('syntax is ok');
      } finally {
        await removeTempDir(workDir);
      }
    });

    it('keeps one client address on one upstream', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await get('127.0.0.1')).name);
      expect(seen.size).to.equal(1);
    });

    it('spreads distinct client addresses over both upstreams, each one sticky', async () => {
      const first = new Map<string, string>();
      for (const source of SOURCES) first.set(source, (await get(source)).name);
      expect(new Set(first.values())).to.deep.equal(new Set(['A', 'B']));
      for (const source of SOURCES) expect((await get(source)).name, source).to.equal(first.get(source));
    });

    it('forwards the client address and protocol headers', async () => {
      const { headers } = await get('127.0.0.7', '/api/x');
      expect(headers['x-real-ip']).to.equal('127.0.0.7');
      expect(headers['x-forwarded-for']).to.equal('127.0.0.7');
      expect(headers['x-forwarded-proto']).to.equal('http');
      expect(headers['x-forwarded-host']).to.equal(`127.0.0.1:${nginx.port}`);
      expect(headers.host).to.equal(`127.0.0.1:${nginx.port}`);
    });

    it('upgrades websockets on /ws/ and /socket.io/', async () => {
      for (const urlPath of ['/ws/some-session', '/socket.io/?EIO=4&transport=websocket']) {
        const socket = new WebSocket(`ws://127.0.0.1:${nginx.port}${urlPath}`);
        const reply = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no echo on ${urlPath}`)), 5_000);
          socket.once('error', reject);
          socket.once('open', () => socket.send('hello'));
          socket.once('message', (data) => {
            clearTimeout(timer);
            resolve((data as Buffer).toString());
          });
        });
        expect(reply).to.match(/^[AB]:hello$/);
        await new Promise((resolve) => {
          socket.once('close', resolve);
          socket.close();
        });
      }
    });

    it('skips a dead upstream, and reload() changes the upstreams', async () => {
      const [a, b] = upstreams;
      await closeUpstream(a);
      // Clients that hashed to A now reach B: refused connections go to the next upstream.
      for (const source of SOURCES) expect((await get(source)).name, source).to.equal('B');

      const c = await startUpstream('C');
      upstreams.push(c);
      await nginx.reload([b.address, c.address]);
      const names = new Set<string>();
      for (const source of SOURCES) names.add((await get(source)).name);
      expect(names).to.deep.equal(new Set(['B', 'C']));
    });
  });
});
