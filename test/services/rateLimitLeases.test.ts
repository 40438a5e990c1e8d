/**
 * Message limits under leases, against a real redis-server and a real Redis Cluster, with two
 * "nodes" in this process (each its own connections and node id, as two processes would have):
 * the node holding a participant's lease decides without waiting for Redis, and the count stays
 * exact when the participant speaks through both, even when a revoke is lost on the way.
 */
import { randomUUID } from 'node:crypto';
import bunyan from 'bunyan';
import { expect } from 'chai';
import Redis from 'ioredis';
import type { Config } from '../../config';
import type { RedisTarget } from '../../config';
import { createRedisConnections, waitForRedis, type RedisConnections } from '../../server/redis';
import { messageLimitKey, RateLimits } from '../../server/services/rateLimits';
import { startRedis, type RedisHandle } from '../../harness/redis';
import { startRedisCluster, type RedisClusterHandle } from '../../harness/redisCluster';
import { waitUntil } from '../../harness/processes';

const quiet = bunyan.createLogger({ name: 'test', streams: [{ type: 'raw', stream: new bunyan.RingBuffer({ limit: 100 }), level: 'warn' }] });

interface TestNode {
  limits: RateLimits;
  redis: RedisConnections;
}

/** true: admitted; false: RATE_LIMITED. */
async function attempt(node: TestNode, key: string): Promise<boolean> {
  try {
    await node.limits.consume('message', key);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'RATE_LIMITED') return false;
    throw err;
  }
}

/** A participant's limit key, as the rooms make it (the session id is its hash tag). */
const newKey = () => messageLimitKey(randomUUID(), 'participant');

/** One kind of Redis under test: how nodes reach it, and an admin view of the key's shard. */
interface Backend {
  target: RedisTarget;
  admin: Redis;
  /** The admin connection to the server holding `key` (CLIENT PAUSE is per server). */
  serverOf(key: string): Promise<Redis>;
  destroy(): Promise<void>;
}

async function singleBackend(): Promise<Backend & { server: RedisHandle }> {
  const server = await startRedis();
  const admin = new Redis(server.url);
  return { server, target: { mode: 'single', url: server.url }, admin, serverOf: async () => admin, destroy: async () => (admin.disconnect(), server.destroy()) };
}

async function clusterBackend(): Promise<Backend> {
  const cluster: RedisClusterHandle = await startRedisCluster();
  const admin = new Redis.Cluster(cluster.shards.map((s) => ({ host: '127.0.0.1', port: s.port }))) as unknown as Redis;
  const direct = cluster.shards.map((s) => new Redis({ host: '127.0.0.1', port: s.port }));
  return {
    target: { mode: 'cluster', nodes: cluster.shards.map((s) => ({ host: '127.0.0.1', port: s.port })), password: null },
    admin,
    serverOf: async (key) => direct[await cluster.shardOf(key)],
    destroy: async () => {
      admin.disconnect();
      for (const d of direct) d.disconnect();
      await cluster.destroy();
    },
  };
}

for (const kind of ['Redis', 'Redis Cluster'] as const)
  describe(`message limits under leases (${kind}, two nodes)`, function () {
    this.timeout(30_000);
    let backend: Backend;
    let admin: Redis;
    const paused: Redis[] = [];
    const nodes: TestNode[] = [];

    async function startNode(nodeId: string, limits: Partial<Config['limits']> = {}): Promise<TestNode> {
      const redis = createRedisConnections(backend.target, quiet);
      await waitForRedis(redis, 5_000);
      const node = {
        redis,
        limits: new RateLimits(
          { messagesPerWindow: 3, messageWindowSeconds: 60, sessionCreatesPerMinute: 10, connectionsPerMinute: 10, speechPerMinute: 10, audioPerMinute: 10, ...limits },
          redis,
          nodeId,
          quiet,
        ),
      };
      await node.limits.start();
      nodes.push(node);
      return node;
    }

    const countInRedis = async (key: string) => Number((await admin.get(`seance:rl:msg:${key}`)) ?? 0);
    const holderOf = (key: string) => admin.get(`seance:rl:lease:${key}`);

    /** Every write to the server holding `key` stalls (for at most 10 s). */
    const pauseWrites = async (key: string) => {
      const server = await backend.serverOf(`seance:rl:lease:${key}`);
      paused.push(server);
      await server.client('PAUSE', 10_000, 'WRITE');
    };
    const unpause = async () => {
      for (const server of paused.splice(0)) await server.client('UNPAUSE');
    };

    before(async function () {
      this.timeout(60_000);
      backend = kind === 'Redis' ? await singleBackend() : await clusterBackend();
      admin = backend.admin;
    });
    afterEach(async () => {
      await unpause();
      for (const node of nodes.splice(0)) {
        await node.limits.stop();
        await node.redis.close();
      }
    });
    after(async () => {
      await backend?.destroy();
    });

    it('keeps renewing a lease in use, and hands back one left unused instead of renewing it', async () => {
      const a = await startNode('node-a', { messagesPerWindow: 1000 });
      const [speaking, quiet] = [newKey(), newKey()];
      a.limits.prepareMessages(speaking);
      a.limits.prepareMessages(quiet);
      await waitUntil('leases taken', async () => (await holderOf(speaking)) === 'node-a' && (await holderOf(quiet)) === 'node-a', { timeoutMs: 5_000, intervalMs: 10 });
      // One participant speaks every 300 ms, the other not at all (an idle connection).
      const started = Date.now();
      let spoke = 0;
      await waitUntil(
        'the unused lease handed back',
        async () => {
          if (Date.now() - started >= spoke * 300) {
            spoke += 1;
            expect(await attempt(a, speaking)).to.equal(true);
          }
          return (await holderOf(quiet)) === null;
        },
        { timeoutMs: 8_000, intervalMs: 50 },
      );
      // The lease in use outlived its first term (3 s) by being renewed.
      await waitUntil('three seconds of speaking', async () => (expect(await attempt(a, speaking)).to.equal(true), Date.now() - started > 3_500), { timeoutMs: 5_000, intervalMs: 300 });
      expect(await holderOf(speaking)).to.equal('node-a');
    });

    it('decides for the lease holder without waiting for Redis, and Redis catches up', async () => {
      const a = await startNode('node-a');
      const key = newKey();
      a.limits.prepareMessages(key);
      await waitUntil('lease taken', async () => (await holderOf(key)) === 'node-a', { timeoutMs: 5_000, intervalMs: 10 });

      // Writes stall in Redis: a decision that needed Redis could not be made now.
      await pauseWrites(key);
      const decisions = await Promise.race([
        Promise.all([attempt(a, key), attempt(a, key), attempt(a, key), attempt(a, key)]),
        new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 2_000)),
      ]);
      expect(decisions).to.deep.equal([true, true, true, false]);
      await unpause();
      await waitUntil('count in Redis', async () => (await countInRedis(key)) === 3, { timeoutMs: 5_000, intervalMs: 10 });
    });

    it('tells the time left in the window when it refuses, and admits again once the window is over', async () => {
      const a = await startNode('node-a', { messagesPerWindow: 2, messageWindowSeconds: 1 });
      const key = newKey();
      expect([await attempt(a, key), await attempt(a, key)]).to.deep.equal([true, true]);
      const refusal = await a.limits.consume('message', key).catch((err) => err);
      expect(refusal).to.include({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
      await waitUntil('the next window', () => attempt(a, key), { timeoutMs: 3_000, intervalMs: 50 });
    });

    it('keeps the count exact when the participant speaks through a second node, whatever the order', async () => {
      const a = await startNode('node-a');
      const b = await startNode('node-b');
      const orders = [
        ['a', 'b', 'a', 'b', 'a'],
        ['a', 'b', 'b', 'a', 'a'],
        ['a', 'a', 'b', 'a', 'b'],
      ];
      for (const order of orders) {
        const key = newKey();
        a.limits.prepareMessages(key);
        await waitUntil('lease taken', async () => (await holderOf(key)) === 'node-a', { timeoutMs: 5_000, intervalMs: 10 });
        const decisions = [];
        for (const name of order) decisions.push(await attempt(name === 'a' ? a : b, key));
        expect(decisions, order.join('')).to.deep.equal([true, true, true, false, false]);
        expect(await holderOf(key)).to.equal('*');
      }
    });

    it('admits exactly the limit when two nodes are hit at once', async () => {
      const a = await startNode('node-a', { messagesPerWindow: 5 });
      const b = await startNode('node-b', { messagesPerWindow: 5 });
      for (let round = 0; round < 5; round++) {
        const key = newKey();
        await attempt(a, key);
        const burst = [];
        for (let i = 0; i < 10; i++) burst.push(attempt(a, key), attempt(b, key));
        const admitted = (await Promise.all(burst)).filter(Boolean).length;
        expect(admitted + 1, `round ${round}`).to.equal(5);
        expect(await countInRedis(key)).to.be.at.least(5);
      }
    });

    it('waits out the lease of a holder that does not answer (a dead node), then takes it over', async () => {
      const b = await startNode('node-b');
      const key = newKey();
      // What a node that died just after renewing leaves behind.
      await admin.set(`seance:rl:lease:${key}`, 'node-gone', 'PX', 3_000);
      await admin.set(`seance:rl:msg:${key}`, 2, 'EX', 60);
      const started = Date.now();
      expect([await attempt(b, key), await attempt(b, key)]).to.deep.equal([true, false]);
      expect(Date.now() - started).to.be.below(5_000);
      expect(await holderOf(key)).to.equal('node-b');
    });

    it('stays exact when a revoke is lost: the holder finds the fence at its next flush and adds, never sets, its count', async () => {
      const a = await startNode('node-a', { messagesPerWindow: 5 });
      const b = await startNode('node-b', { messagesPerWindow: 5 });
      for (let round = 0; round < 3; round++) {
        const key = newKey();
        a.limits.prepareMessages(key);
        await waitUntil('lease taken', async () => (await holderOf(key)) === 'node-a', { timeoutMs: 5_000, intervalMs: 10 });
        // Two points decided by a alone, not yet in Redis (or just written: the round varies it).
        expect([await attempt(a, key), await attempt(a, key)]).to.deep.equal([true, true]);
        // Node a stops hearing its lease channel: the revoke b sends is lost on the way.
        await a.redis.sub.unsubscribe('seance:rl:lease-node:node-a');
        try {
          const decisions = [await attempt(b, key)];
          expect(await holderOf(key), 'handed over through the fence').to.equal('*');
          for (const name of ['a', 'b', 'a', 'b', 'a', 'b']) decisions.push(await attempt(name === 'a' ? a : b, key));
          expect(decisions, `round ${round}`).to.deep.equal([true, true, true, false, false, false, false]);
          // Every admitted point is in Redis, and nothing a wrote late took back what b counted.
          expect(await countInRedis(key)).to.be.at.least(5);
        } finally {
          await a.redis.sub.subscribe('seance:rl:lease-node:node-a');
        }
      }
    });

    it("starts a new window from its own count, not from an earlier window's count that is about to expire", async () => {
      const a = await startNode('node-a');
      const key = newKey();
      a.limits.prepareMessages(key);
      await waitUntil('lease taken', async () => (await holderOf(key)) === 'node-a', { timeoutMs: 5_000, intervalMs: 10 });
      // An earlier window's count, ending long before the window a opens now.
      await admin.set(`seance:rl:msg:${key}`, 3, 'PX', 1_500);
      expect(await attempt(a, key)).to.equal(true);
      await waitUntil('a wrote its window', async () => Number(await admin.get(`seance:rl:msg:${key}`)) === 1 && (await admin.pttl(`seance:rl:msg:${key}`)) > 10_000, {
        timeoutMs: 3_000,
        intervalMs: 10,
      });
      expect([await attempt(a, key), await attempt(a, key), await attempt(a, key)]).to.deep.equal([true, true, false]);
    });

    it('writes its counts and hands its leases back when it stops', async () => {
      const a = await startNode('node-a');
      const b = await startNode('node-b');
      const key = newKey();
      expect([await attempt(a, key), await attempt(a, key)]).to.deep.equal([true, true]);
      await a.limits.stop();
      expect(await holderOf(key)).to.equal(null);
      expect(await countInRedis(key)).to.equal(2);
      expect([await attempt(b, key), await attempt(b, key)]).to.deep.equal([true, false]);
      expect(await holderOf(key)).to.equal('node-b');
    });

    (kind === 'Redis' ? it : it.skip)('gives up its leases when its Redis connection drops', async () => {
      const a = await startNode('node-a');
      const b = await startNode('node-b');
      const key = newKey();
      expect(await attempt(a, key)).to.equal(true);
      expect(await holderOf(key)).to.equal('node-a');
      // Redis restarted empty: node a must not go on deciding from a lease Redis no longer knows.
      const { server } = backend as Backend & { server: RedisHandle };
      await server.stop();
      await server.start();
      await waitForRedis(a.redis, 10_000);
      await waitForRedis(b.redis, 10_000);
      await admin.ping().catch(() => undefined);
      expect([await attempt(b, key), await attempt(b, key), await attempt(a, key), await attempt(b, key), await attempt(a, key)]).to.deep.equal([true, true, true, false, false]);
    });
  });
