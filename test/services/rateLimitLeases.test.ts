/**
 * Message limits under leases, against a real redis-server, with two "nodes" in this process
 * (each its own connections and node id, as two processes would have): the node holding a
 * participant's lease decides without waiting for Redis, and the count stays exact when the
 * participant speaks through both.
 */
import { randomUUID } from 'node:crypto';
import bunyan from 'bunyan';
import { expect } from 'chai';
import Redis from 'ioredis';
import type { Config } from '../../config';
import { createRedisConnections, waitForRedis, type RedisConnections } from '../../server/redis';
import { RateLimits } from '../../server/services/rateLimits';
import { startRedis, type RedisHandle } from '../../harness/redis';
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

describe('message limits under leases (Redis, two nodes)', function () {
  this.timeout(30_000);
  let redisServer: RedisHandle;
  let admin: Redis;
  const nodes: TestNode[] = [];

  async function startNode(nodeId: string, limits: Partial<Config['limits']> = {}): Promise<TestNode> {
    const redis = createRedisConnections(redisServer.url, quiet);
    await waitForRedis(redis, 5_000);
    const node = {
      redis,
      limits: new RateLimits({ messagesPerWindow: 3, messageWindowSeconds: 60, sessionCreatesPerMinute: 10, connectionsPerMinute: 10, speechPerMinute: 10, ...limits }, redis, nodeId, quiet),
    };
    await node.limits.start();
    nodes.push(node);
    return node;
  }

  const countInRedis = async (key: string) => Number((await admin.get(`seance:rl:msg:${key}`)) ?? 0);
  const holderOf = (key: string) => admin.get(`seance:rl:lease:${key}`);

  before(async () => {
    redisServer = await startRedis();
    admin = new Redis(redisServer.url);
  });
  afterEach(async () => {
    await admin.client('UNPAUSE');
    for (const node of nodes.splice(0)) {
      await node.limits.stop();
      await node.redis.close();
    }
  });
  after(async () => {
    admin?.disconnect();
    await redisServer?.destroy();
  });

  it('decides for the lease holder without waiting for Redis, and Redis catches up', async () => {
    const a = await startNode('node-a');
    const key = randomUUID();
    a.limits.prepareMessages(key);
    await waitUntil('lease taken', async () => (await holderOf(key)) === 'node-a', { timeoutMs: 5_000, intervalMs: 10 });

    // Writes stall in Redis: a decision that needed Redis could not be made now.
    await admin.client('PAUSE', 10_000, 'WRITE');
    const decisions = await Promise.race([
      Promise.all([attempt(a, key), attempt(a, key), attempt(a, key), attempt(a, key)]),
      new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 2_000)),
    ]);
    expect(decisions).to.deep.equal([true, true, true, false]);
    await admin.client('UNPAUSE');
    await waitUntil('count in Redis', async () => (await countInRedis(key)) === 3, { timeoutMs: 5_000, intervalMs: 10 });
  });

  it('tells the time left in the window when it refuses, and admits again once the window is over', async () => {
    const a = await startNode('node-a', { messagesPerWindow: 2, messageWindowSeconds: 1 });
    const key = randomUUID();
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
      const key = randomUUID();
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
      const key = randomUUID();
      await attempt(a, key);
      const burst = [];
      for (let i = 0; i < 10; i++) burst.push(attempt(a, key), attempt(b, key));
      const admitted = (await Promise.all(burst)).filter(Boolean).length;
      expect(admitted + 1, `round ${round}`).to.equal(5);
      expect(await countInRedis(key)).to.be.at.least(5);
    }
  });

  it('takes a holder that does not answer for dead, and counts in Redis from then on', async () => {
    const b = await startNode('node-b');
    const key = randomUUID();
    await admin.set(`seance:rl:lease:${key}`, 'node-gone', 'PX', 30_000);
    await admin.set(`seance:rl:msg:${key}`, 2, 'EX', 60);
    expect([await attempt(b, key), await attempt(b, key)]).to.deep.equal([true, false]);
    expect(await holderOf(key)).to.equal('*');
  });

  it('writes its counts and hands its leases back when it stops', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const key = randomUUID();
    expect([await attempt(a, key), await attempt(a, key)]).to.deep.equal([true, true]);
    await a.limits.stop();
    expect(await holderOf(key)).to.equal(null);
    expect(await countInRedis(key)).to.equal(2);
    expect([await attempt(b, key), await attempt(b, key)]).to.deep.equal([true, false]);
    expect(await holderOf(key)).to.equal('node-b');
  });

  it('gives up its leases when its Redis connection drops', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const key = randomUUID();
    expect(await attempt(a, key)).to.equal(true);
    expect(await holderOf(key)).to.equal('node-a');
    // Redis restarted empty: node a must not go on deciding from a lease Redis no longer knows.
    await redisServer.stop();
    await redisServer.start();
    await waitForRedis(a.redis, 10_000);
    await waitForRedis(b.redis, 10_000);
    await admin.ping().catch(() => undefined);
    expect([await attempt(b, key), await attempt(b, key), await attempt(a, key), await attempt(b, key), await attempt(a, key)]).to.deep.equal([true, true, true, false, false]);
  });
});
