/**
 * What Presence promises (server/services/presence/types.ts), one suite over MemoryPresence (a
 * single node's) and RedisPresence (a cluster's, on a real redis-server). What only a cluster has
 * runs on Redis alone: several nodes sharing one view, other nodes' heartbeats, and the changes
 * nobody's own connection caused (a dead node reaped, a resync after Redis lost everything).
 * A single node has no other node, and nothing changes behind its back: MemoryPresence never
 * calls onChange's listeners.
 */
import { randomUUID } from 'node:crypto';
import bunyan from 'bunyan';
import { expect } from 'chai';
import Redis from 'ioredis';
import { startRedis, type RedisHandle } from '../../harness/redis';
import type { ParticipantView } from '../../server/events';
import { MemoryPresence } from '../../server/services/presence/memory';
import { RedisPresence } from '../../server/services/presence/redis';
import type { Holder, Presence, PresenceChange } from '../../server/services/presence/types';

const quiet = bunyan.createLogger({ name: 'presence-contract', level: 'fatal' });
/** Heartbeats every 200 ms (the shortest), a node taken for dead 300 ms after its last. */
const TTL_MS = 300;

interface Impl {
  name: string;
  /** Several nodes share one presence; false: each presence is a whole single-node world. */
  cluster: boolean;
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
  /** A presence for node `nodeId`, stopped after the test. */
  open(nodeId: string): Promise<Presence>;
  /** Stops what the test opened. */
  afterTest(): Promise<void>;
}

const memory: Impl = {
  name: 'MemoryPresence',
  cluster: false,
  setUp: async () => undefined,
  tearDown: async () => undefined,
  open: async (nodeId) => new MemoryPresence(nodeId),
  afterTest: async () => undefined,
};

/** RedisPresence, each on a connection of its own as each node has, on one redis-server for the file. */
const redis = new (class implements Impl {
  name = 'RedisPresence';
  cluster = true;
  server: RedisHandle | null = null;
  admin: Redis | null = null;
  private opened: Presence[] = [];
  private connections: Redis[] = [];

  async setUp(): Promise<void> {
    this.server = await startRedis();
    this.admin = new Redis(this.server.url);
  }

  async tearDown(): Promise<void> {
    this.admin?.disconnect();
    await this.server?.destroy();
  }

  /** Ready before a presence is made on it: a presence holds any node's death in doubt for a TTL after its connection becomes ready. */
  async connection(): Promise<Redis> {
    const connection = new Redis(this.server!.url);
    this.connections.push(connection);
    await connection.ping();
    return connection;
  }

  async open(nodeId: string, connection?: Redis): Promise<Presence> {
    const presence = new RedisPresence(connection ?? (await this.connection()), nodeId, TTL_MS, quiet);
    this.opened.push(presence);
    return presence;
  }

  async afterTest(): Promise<void> {
    await Promise.all(this.opened.map((p) => p.stop()));
    for (const connection of this.connections.splice(0)) connection.disconnect();
    this.opened = [];
  }
})();

const newNode = () => `node-${randomUUID().slice(0, 8)}`;
const person = (id: string, joinedAt = '2026-01-01T10:00:00.000Z'): ParticipantView => ({ id, name: `Name of ${id}`, joined_at: joinedAt });
const byConnection = (holders: Holder[]) => [...holders].sort((a, b) => a.connectionId.localeCompare(b.connectionId));

/** The first change `match` accepts, or a rejection after `timeoutMs`: listen before causing it. */
function changeSeen(presence: Presence, match: (change: PresenceChange) => boolean, timeoutMs = 5_000): Promise<PresenceChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no such presence change within ${timeoutMs} ms`)), timeoutMs);
    presence.onChange((change) => {
      if (!match(change)) return;
      clearTimeout(timer);
      resolve(change);
    });
  });
}

for (const impl of [memory, redis])
  describe(`presence contract: ${impl.name}`, function () {
    this.timeout(10_000);
    let sessionId: string;
    let node: string;
    let presence: Presence;

    before(() => impl.setUp());
    after(() => impl.tearDown());
    beforeEach(async () => {
      sessionId = randomUUID();
      node = newNode();
      presence = await impl.open(node);
    });
    afterEach(() => impl.afterTest());

    it("admits a new participant below maxUsers, and an existing one's further connections even when full", async () => {
      const [ada, bob] = [person('ada'), person('bob', '2026-01-01T10:01:00.000Z')];
      expect(await presence.admit(sessionId, ada, 'c1', 2)).to.deep.equal({ admitted: true, participant: ada, isNew: true });
      expect(await presence.admit(sessionId, bob, 'c2', 2)).to.deep.equal({ admitted: true, participant: bob, isNew: true });
      expect(await presence.admit(sessionId, person('cy'), 'c3', 2)).to.deep.equal({ admitted: false, reason: 'SESSION_FULL' });
      // Ada again, under another name: she stays who she was when she joined.
      expect(await presence.admit(sessionId, { ...ada, name: 'Ada II' }, 'c4', 2)).to.deep.equal({ admitted: true, participant: ada, isNew: false });
      expect(await presence.count(sessionId)).to.equal(2);
      expect(await presence.list(sessionId)).to.deep.equal([ada, bob]);
      expect([await presence.count(randomUUID()), await presence.list(randomUUID())]).to.deep.equal([0, []]);
    });

    it('lists participants in joining order, those who joined together by id', async () => {
      const [zed, amy, bea, ann] = [
        person('zed', '2026-01-01T10:02:00.000Z'),
        person('amy', '2026-01-01T10:00:00.000Z'),
        person('bea', '2026-01-01T10:01:00.000Z'),
        person('ann', '2026-01-01T10:01:00.000Z'),
      ];
      for (const [i, p] of [zed, amy, bea, ann].entries()) await presence.admit(sessionId, p, `c${i}`, 6);
      expect(await presence.list(sessionId)).to.deep.equal([amy, ann, bea, zed]);
    });

    it('admits no more than maxUsers of the participants who join at once', async () => {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => presence.admit(sessionId, person(`p${i}`), `c${i}`, 4)));
      expect(results.filter((r) => r.admitted)).to.have.length(4);
      expect(results.filter((r) => !r.admitted).map((r) => !r.admitted && r.reason)).to.deep.equal(Array(6).fill('SESSION_FULL'));
      expect(await presence.count(sessionId)).to.equal(4);
    });

    it("caps a participant's connections at maxConnections; a refused connection is not held", async () => {
      const ada = person('ada');
      const rules = { maxConnections: 2 };
      expect(await presence.admit(sessionId, ada, 'c1', 6, rules)).to.include({ admitted: true, isNew: true });
      expect(await presence.admit(sessionId, ada, 'c2', 6, rules)).to.include({ admitted: true, isNew: false });
      expect(await presence.admit(sessionId, ada, 'c3', 6, rules)).to.deep.equal({ admitted: false, reason: 'TOO_MANY_CONNECTIONS' });
      expect(await presence.release(sessionId, 'ada', 'c3')).to.equal(null);
      expect(await presence.release(sessionId, 'ada', 'c1')).to.equal(null);
      expect(await presence.admit(sessionId, ada, 'c3', 6, rules)).to.include({ admitted: true, isNew: false });
      expect(await presence.release(sessionId, 'ada', 'c2')).to.equal(null);
      expect(await presence.release(sessionId, 'ada', 'c3')).to.deep.equal(ada);
    });

    it('refuses an exclusive admission of a connected user id, naming the connections that hold it', async () => {
      const ada = person('ada');
      expect(await presence.admit(sessionId, ada, 'c1', 6, { exclusive: true })).to.deep.equal({ admitted: true, participant: ada, isNew: true });
      await presence.admit(sessionId, ada, 'c2', 6);
      const refused = await presence.admit(sessionId, { ...ada, name: 'Impostor' }, 'c3', 6, { exclusive: true });
      expect(refused).to.include({ admitted: false, reason: 'USER_ID_TAKEN' });
      expect(byConnection((refused as { holders: Holder[] }).holders)).to.deep.equal([
        { node, connectionId: 'c1' },
        { node, connectionId: 'c2' },
      ]);
      expect(await presence.release(sessionId, 'ada', 'c3')).to.equal(null);
      expect(await presence.list(sessionId)).to.deep.equal([ada]);
    });

    it('releases a participant with its last connection only', async () => {
      const ada = person('ada');
      await presence.admit(sessionId, ada, 'c1', 6);
      await presence.admit(sessionId, ada, 'c2', 6);
      expect(await presence.release(sessionId, 'ada', 'c1')).to.equal(null);
      expect(await presence.release(sessionId, 'ada', 'c1'), 'released already').to.equal(null);
      expect(await presence.release(sessionId, 'nobody', 'c2')).to.equal(null);
      expect(await presence.count(sessionId)).to.equal(1);
      expect(await presence.release(sessionId, 'ada', 'c2')).to.deep.equal(ada);
      expect([await presence.count(sessionId), await presence.list(sessionId)]).to.deep.equal([0, []]);
      expect(await presence.admit(sessionId, ada, 'c3', 6)).to.include({ admitted: true, isNew: true });
    });

    it("evicts a holder's connection (its node's, by id) but never the participant's last", async () => {
      const ada = person('ada');
      await presence.admit(sessionId, ada, 'c1', 6);
      await presence.admit(sessionId, ada, 'c2', 6);
      await presence.evict(sessionId, 'ada', { node: newNode(), connectionId: 'c1' }); // c1 of another node: not this one
      await presence.evict(sessionId, 'ada', { node, connectionId: 'c2' });
      await presence.evict(sessionId, 'ada', { node, connectionId: 'c1' }); // the last: it stays
      expect(await presence.release(sessionId, 'ada', 'c2'), 'c2 was evicted').to.equal(null);
      expect(await presence.count(sessionId)).to.equal(1);
      expect(await presence.release(sessionId, 'ada', 'c1')).to.deep.equal(ada);
    });

    it('forgets everyone in a cleared session, and only there', async () => {
      const [ada, bob] = [person('ada'), person('bob')];
      const elsewhere = randomUUID();
      await presence.admit(sessionId, ada, 'c1', 6);
      await presence.admit(sessionId, bob, 'c2', 6);
      await presence.admit(elsewhere, ada, 'c3', 6);
      await presence.clear(sessionId);
      expect([await presence.count(sessionId), await presence.list(sessionId)]).to.deep.equal([0, []]);
      expect(await presence.list(elsewhere)).to.deep.equal([ada]);
      expect(await presence.admit(sessionId, ada, 'c4', 6)).to.include({ admitted: true, isNew: true });
    });

    it('takes its own node for alive, and a node that is not running for dead', async () => {
      expect(await presence.isNodeAlive(node)).to.equal(true);
      expect(await presence.isNodeAlive(newNode())).to.equal(false);
    });

    if (impl.cluster)
      describe('across nodes', () => {
        it('shares one view: full is full everywhere, connections count and holders are named on every node', async () => {
          const bNode = newNode();
          const [a, b] = [presence, await impl.open(bNode)];
          const ada = person('ada');
          await a.admit(sessionId, ada, 'c1', 2);
          await b.admit(sessionId, person('bob'), 'c2', 2);
          expect(await b.admit(sessionId, person('cy'), 'c3', 2)).to.deep.equal({ admitted: false, reason: 'SESSION_FULL' });
          expect(await b.admit(sessionId, ada, 'c4', 2, { maxConnections: 2 })).to.deep.equal({ admitted: true, participant: ada, isNew: false });
          expect(await a.admit(sessionId, ada, 'c5', 2, { maxConnections: 2 })).to.deep.equal({ admitted: false, reason: 'TOO_MANY_CONNECTIONS' });
          const refused = await b.admit(sessionId, ada, 'c6', 2, { exclusive: true });
          expect(byConnection((refused as { holders: Holder[] }).holders)).to.deep.equal([
            { node, connectionId: 'c1' },
            { node: bNode, connectionId: 'c4' },
          ]);
          expect(await a.list(sessionId)).to.deep.equal(await b.list(sessionId));
          expect(await a.release(sessionId, 'ada', 'c1')).to.equal(null);
          expect(await b.release(sessionId, 'ada', 'c4'), 'her last connection anywhere').to.deep.equal(ada);
        });

        it('admits no more than maxUsers of the participants who join at once on two nodes', async () => {
          const nodes = [presence, await impl.open(newNode())];
          const results = await Promise.all(Array.from({ length: 12 }, (_, i) => nodes[i % 2].admit(sessionId, person(`p${i}`), `c${i}`, 5)));
          expect(results.filter((r) => r.admitted)).to.have.length(5);
          expect(await nodes[1].count(sessionId)).to.equal(5);
        });

        it('tells a running node from one that stopped', async () => {
          const other = newNode();
          const running = await impl.open(other);
          await running.start();
          expect(await presence.isNodeAlive(other)).to.equal(true);
          await running.stop();
          expect(await presence.isNodeAlive(other)).to.equal(false);
        });

        it('a node restarted under its NODE_ID releases what its past life held, and reports who left', async () => {
          const [ada, bob] = [person('ada'), person('bob')];
          await presence.admit(sessionId, ada, 'c1', 6);
          await presence.admit(sessionId, bob, 'c2', 6);
          await (await impl.open(newNode())).admit(sessionId, bob, 'c3', 6);
          const restarted = await impl.open(node);
          const changes: PresenceChange[] = [];
          restarted.onChange((change) => changes.push(change));
          await restarted.start();
          expect(changes).to.deep.equal([{ sessionId, participant: ada, kind: 'left' }]);
          expect(await restarted.list(sessionId)).to.deep.equal([bob]);
        });

        it("reaps a node whose heartbeat stopped: a live node reports its participants' leaving", async () => {
          await presence.start();
          const dying = newNode();
          const dyingConnection = await redis.connection();
          const doomed = await redis.open(dying, dyingConnection);
          await doomed.start();
          const [ada, bob] = [person('ada'), person('bob')];
          await doomed.admit(sessionId, ada, 'c1', 6);
          await presence.admit(sessionId, bob, 'c2', 6);
          const left = changeSeen(presence, (change) => change.sessionId === sessionId);
          dyingConnection.disconnect(); // as SIGKILL: no more beats, nothing deregistered
          expect(await left).to.deep.equal({ sessionId, participant: ada, kind: 'left' });
          expect(await presence.list(sessionId)).to.deep.equal([bob]);
          expect(await presence.isNodeAlive(dying)).to.equal(false);
        });

        it('puts its own connections back once Redis lost them, and reports them joined', async () => {
          await presence.start();
          const ada = person('ada');
          await presence.admit(sessionId, ada, 'c1', 6);
          const joined = changeSeen(presence, (change) => change.sessionId === sessionId);
          await redis.admin!.flushall();
          expect(await joined).to.deep.equal({ sessionId, participant: ada, kind: 'joined' });
          expect(await presence.list(sessionId)).to.deep.equal([ada]);
        });
      });
  });
