/**
 * The optional Socket.IO Admin UI: absent unless ADMIN_UI_PASSWORD is set; when set, its
 * namespace needs the credentials and, connected to one node, sees the whole cluster (both
 * nodes' figures, a participant on the other node counted), and a login holds on every node.
 */
import { expect } from 'chai';
import { io as ioClient, type Socket } from 'socket.io-client';
import { startRedis, type RedisHandle } from '../../harness/redis';
import { http, joinSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

const PASSWORD = 'admin-ui-password-for-tests';

interface ServerStats {
  serverId: string;
  namespaces: Array<{ name: string; socketsCount: number }>;
}

/** Connects to /admin and resolves with the socket once connected, or with the refusal message. */
function connectAdmin(url: string, auth: Record<string, string> | undefined): Promise<{ socket: Socket; refused: string | null }> {
  const socket = ioClient(`${url}/admin`, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('admin namespace neither connected nor refused')), 8000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve({ socket, refused: null });
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      resolve({ socket, refused: err.message });
    });
  });
}

describe('Socket.IO Admin UI', function () {
  this.timeout(30_000);

  describe('without ADMIN_UI_PASSWORD', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database: 'sqlite' });
    });
    after(async () => server?.close());

    it('is off: no /admin namespace and no page', async () => {
      const { refused } = await connectAdmin(server.url, { username: 'admin', password: PASSWORD });
      expect(refused).to.equal('Invalid namespace');
      expect((await http(server.url, 'GET', '/admin/')).status).to.equal(404);
    });
  });

  describe('with ADMIN_UI_PASSWORD, on two nodes', () => {
    let redis: RedisHandle;
    let a: TestServer;
    let b: TestServer;
    before(async () => {
      redis = await startRedis();
      const env = (nodeId: string) => ({ ADMIN_UI_PASSWORD: PASSWORD, NODE_ID: nodeId });
      a = await startTestServer({ redisUrl: redis.url, env: env('admin-a') });
      b = await startTestServer({ redisUrl: redis.url, env: env('admin-b') });
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await redis?.destroy();
    });

    it('serves the UI page at /admin/', async () => {
      const page = await http(a.url, 'GET', '/admin/');
      expect(page.status).to.equal(200);
      expect(page.text).to.include('Socket.IO Admin UI');
    });

    it('refuses the namespace without the right credentials', async () => {
      for (const auth of [undefined, { username: 'admin', password: 'wrong-password' }, { username: 'someone', password: PASSWORD }]) {
        const { refused } = await connectAdmin(a.url, auth);
        expect(refused, JSON.stringify(auth)).to.be.a('string');
      }
    });

    it('shows both nodes, counting a participant connected to the other node', async () => {
      const session = await createSession(b.url);
      const participant = await joinSocket(b.url, { session_id: session.id, user_id: 'seen', name: 'Seen' });
      const socket = ioClient(`${a.url}/admin`, { auth: { username: 'admin', password: PASSWORD }, transports: ['websocket'], reconnection: false, forceNew: true });
      try {
        const seen = new Map<string, ServerStats>();
        await new Promise<void>((resolve) =>
          socket.on('server_stats', (stats: ServerStats) => {
            seen.set(stats.serverId, stats);
            if (seen.has('admin-a') && seen.has('admin-b')) resolve();
          }),
        );
        expect(seen.get('admin-b')!.namespaces.find((n) => n.name === '/')?.socketsCount).to.equal(1);
        expect(seen.get('admin-a')!.namespaces.find((n) => n.name === '/')?.socketsCount).to.equal(0);
      } finally {
        socket.close();
        participant.close();
      }
    });

    it('keeps a login made on one node good on the other', async () => {
      const first = ioClient(`${a.url}/admin`, { auth: { username: 'admin', password: PASSWORD }, transports: ['websocket'], reconnection: false, forceNew: true });
      const sessionId = await new Promise<string>((resolve) => first.once('session', resolve));
      first.close();
      const { socket, refused } = await connectAdmin(b.url, { sessionId });
      expect(refused).to.equal(null);
      socket.close();
      expect((await connectAdmin(b.url, { sessionId: 'not-a-session' })).refused).to.be.a('string');
    });
  });
});
