/**
 * Redis failing under real traffic, with real processes: the Sentinel master killed while
 * clients chat across 3 nodes (nodes follow the promoted replica by themselves), and one shard
 * of a Redis Cluster restarted (sessions on the other shards carry on, the ones on it recover).
 * The failover test prints what it measured: when the sentinels promoted the replica, and when
 * fan-out across nodes worked again, counted from the kill.
 */
import http from 'node:http';
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { waitUntil } from '../../harness/processes';
import { http as request, joinSocket, RawClient, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { waitForHealth } from '../support/health';
import { sharedPostgres } from '../support/hooks';
import { redisView, sessionOnShard } from '../support/redisView';
import { Traffic } from '../support/traffic';

const wsUrl = (url: string) => url.replace(/^http/, 'ws');
/** How soon after the promotion every node must be healthy again (reconnect, ready check). */
const RECONNECT_BOUND_MS = 3_000;
/** A presence TTL shorter than a failover: a node must still not take the others for dead. */
const ENV = { MESSAGE_RATE_LIMIT: '1000', SESSION_CREATE_RATE_LIMIT: '5', PRESENCE_TTL_MS: '3000' };

/** POST /api/sessions from a chosen loopback source address; answers the HTTP status. */
function createFrom(baseUrl: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}/api/sessions`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ name: 'limited' }));
  });
}

/** Every node's /health, polled until stopped. */
class HealthWatch {
  readonly samples: Array<{ node: string; at: number; status: number }> = [];
  private running = true;
  private readonly done: Promise<unknown>;

  constructor(cluster: ClusterHandle) {
    this.done = Promise.all(
      cluster.nodes.map(async (node) => {
        while (this.running) {
          const status = await request(node.url, 'GET', '/health').then(
            (r) => r.status,
            () => 0,
          );
          this.samples.push({ node: node.nodeId, at: Date.now(), status });
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }),
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/**
 * One session's chat across the 3 nodes: a socket.io sender on node 1 and on node 2, and on
 * node 3 only listeners (socket.io and raw ws). Node 3 has no sender of its own whose messages
 * would reveal a gap and make it read the others' from the database: what reaches it comes
 * through Redis (or the repair that follows its resubscription), so it shows when fan-out
 * through Redis works again.
 */
class Chat {
  private constructor(
    readonly sessionId: string,
    readonly senders: TestSocket[],
    readonly listener: TestSocket,
    readonly raw: RawClient,
    readonly traffic: Traffic[],
  ) {}

  static async start(cluster: ClusterHandle, sessionId: string, label: string): Promise<Chat> {
    const [n1, n2, n3] = cluster.nodes;
    const senders = await Promise.all([n1, n2].map((node, i) => joinSocket(node.url, { session_id: sessionId, user_id: `${label}-${i + 1}`, name: `${label} ${i + 1}` })));
    const listener = await joinSocket(n3.url, { session_id: sessionId, user_id: `${label}-3`, name: `${label} 3` });
    const raw = await RawClient.join(wsUrl(n3.url), sessionId, { user_id: `${label}-raw`, name: `${label} raw` });
    const traffic = senders.map((s, i) => new Traffic(s, { label: `${label} ${i + 1}`, intervalMs: 100, maxMessages: 600 }));
    return new Chat(sessionId, senders, listener, raw, traffic);
  }

  get inboxes() {
    return [...this.senders.map((s) => s.inbox), this.listener.inbox, this.raw.inbox];
  }

  /** The listeners on node 3, which no sender shares. */
  get farInboxes() {
    return [this.listener.inbox, this.raw.inbox];
  }

  /** The newest message id any sender has been acknowledged so far. */
  lastAccepted(): number {
    return Math.max(0, ...this.traffic.flatMap((t) => t.result.accepted));
  }

  /** Resolves once every sender got one more message accepted. */
  async flowing(count = 3): Promise<void> {
    await Promise.all(this.traffic.map((t) => t.acceptedMore(count)));
  }

  /** Resolves once a message newer than `id` from every sender reached the listeners on node 3. */
  async crossNodeAfter(id: number, timeoutMs: number): Promise<void> {
    await waitUntil(
      'fan-out across nodes',
      async () => this.senders.every((sender) => this.farInboxes.every((inbox) => inbox.of('message_received').some((m) => m.user_id === (sender.auth as any).user_id && m.id > id))),
      { timeoutMs, intervalMs: 10 },
    );
  }

  /** Every listener got the session's stored messages (questions and answers) in `seq` order, with no gap and no repeat. */
  expectNoSeqGaps(): void {
    for (const [j, inbox] of this.inboxes.entries()) {
      const seqs = inbox.events.filter((e) => e.event === 'message_received' || e.event === 'spirit_response').map((e) => e.data.seq as number);
      expect(seqs.length, `listener ${j + 1}`).to.be.greaterThan(0);
      expect(seqs, `listener ${j + 1}: seq in order, no gap, no repeat`).to.deep.equal(Array.from({ length: seqs.length }, (_, k) => seqs[0] + k));
    }
  }

  /** Stops the traffic; every acknowledged message reaches every listener, in each sender's order. */
  async expectEveryoneGotEverything(): Promise<void> {
    const results = await Promise.all(this.traffic.map((t) => t.stop()));
    for (const [i, result] of results.entries()) {
      expect(result.refused, `refused from sender ${i + 1}`).to.deep.equal([]);
      const userId = (this.senders[i].auth as any).user_id;
      for (const [j, inbox] of this.inboxes.entries()) {
        const received = () =>
          inbox
            .of('message_received')
            .filter((m) => m.user_id === userId)
            .map((m) => m.id);
        await waitUntil(`listener ${j + 1} has sender ${i + 1}'s messages`, async () => received().length >= result.accepted.length, { timeoutMs: 10_000, intervalMs: 20 }).catch(() => undefined);
        expect(received(), `listener ${j + 1}, sender ${i + 1}`).to.deep.equal(result.accepted);
      }
    }
  }

  close(): void {
    for (const s of this.senders) s.close();
    this.listener.close();
    this.raw.close();
  }
}

describe('Redis failover under traffic', function () {
  this.timeout(180_000);

  describe('Sentinel (1 master, 1 replica, 3 sentinels)', () => {
    let cluster: ClusterHandle;
    before(async function () {
      this.timeout(90_000);
      cluster = await startCluster({ nodes: 3, nginx: false, redisMode: 'sentinel', postgres: await sharedPostgres(), env: ENV });
    });
    after(async () => cluster?.stop());

    it('follows the promoted replica twice: health is 503 only without a master, and fan-out, presence and rate limits resume, with every acknowledged message delivered', async () => {
      const sentinel = cluster.redisSentinel!;
      const [n1, n2, n3] = cluster.nodes;
      const session = await createSession(n1.url);
      const chat = await Chat.start(cluster, session.id, 'chat');
      try {
        await chat.flowing();
        const measured: Array<{ promotedMs: number; fanOutMs: number; unhealthyMs: number }> = [];
        for (let round = 0; round < 2; round++) {
          const oldMaster = await sentinel.master();
          const watch = new HealthWatch(cluster);
          const lastBefore = chat.lastAccepted();
          const killedAt = Date.now();
          await oldMaster.stop({ kill: true });
          // Watched from the kill on, beside the promotion.
          const fanOut = chat.crossNodeAfter(lastBefore, 30_000).then(() => Date.now());
          await sentinel.waitForPromotion(oldMaster.port);
          const promotedAt = Date.now();
          const fanOutAt = await fanOut;
          for (const node of cluster.nodes) await waitForHealth(node.url, (_b, status) => status === 200, 15_000);
          await watch.stop();

          const unhealthy = watch.samples.filter((s) => s.status !== 200);
          expect(unhealthy.length, 'health reported Redis down during the failover').to.be.greaterThan(0);
          // Down only while there was no master: from the kill until the nodes reached the promoted one.
          for (const sample of unhealthy) expect(sample.at - killedAt, `${sample.node} unhealthy`).to.be.within(0, promotedAt - killedAt + RECONNECT_BOUND_MS);
          measured.push({ promotedMs: promotedAt - killedAt, fanOutMs: fanOutAt - killedAt, unhealthyMs: Math.max(...unhealthy.map((s) => s.at)) - killedAt });
          await chat.flowing();

          // The old master returns; the sentinels make it a replica of the new one (next round's spare).
          await oldMaster.start();
          await sentinel.waitReplicating(oldMaster.port);
        }
        // Nobody was taken for gone along the way.
        for (const inbox of chat.inboxes) expect(inbox.of('user_left')).to.deep.equal([]);
        process.stdout.write(
          `      measured: ${measured.map((m, i) => `failover ${i + 1}: promoted after ${m.promotedMs} ms, last 503 at ${m.unhealthyMs} ms, fan-out back after ${m.fanOutMs} ms`).join('; ')}\n`,
        );

        // Presence: a newcomer is seen by everyone, the list is whole, cluster-wide.
        const late = await joinSocket(n3.url, { session_id: session.id, user_id: 'late', name: 'Late' });
        try {
          for (const inbox of chat.inboxes) expect((await inbox.waitFor('user_joined', (u) => u.id === 'late')).name).to.equal('Late');
          const participants = (await request(n2.url, 'GET', `/api/sessions/${session.id}/participants`)).body.data.map((p: any) => p.id).sort();
          expect(participants).to.deep.equal(['chat-1', 'chat-2', 'chat-3', 'chat-raw', 'late']);
        } finally {
          late.close();
        }
        // Rate limits count in Redis again: one address's session creations across nodes (limit 5).
        const statuses = [];
        for (const node of [n1, n2, n3, n1, n2, n3]) statuses.push(await createFrom(node.url, '127.0.9.1'));
        expect(statuses).to.deep.equal([201, 201, 201, 201, 201, 429]);

        await chat.expectEveryoneGotEverything();
        chat.expectNoSeqGaps();
      } finally {
        chat.close();
      }
    });
  });

  describe('Redis Cluster (3 shards): one shard restarts', () => {
    let cluster: ClusterHandle;
    before(async function () {
      this.timeout(90_000);
      cluster = await startCluster({ nodes: 3, nginx: false, redisMode: 'cluster', postgres: await sharedPostgres(), env: { ...ENV, SESSION_CREATE_RATE_LIMIT: '1000' } });
    });
    after(async () => cluster?.stop());

    it('leaves the sessions on the other shards undisturbed, and the sessions on it recover fan-out and presence', async () => {
      const view = redisView(cluster);
      const shards = cluster.redisCluster!.shards;
      const chats: Chat[] = [];
      try {
        for (const shard of [0, 1, 2]) {
          const session = await sessionOnShard(view, cluster.nodes[0].url, shard);
          chats.push(await Chat.start(cluster, session.id, `shard${shard}`));
        }
        await Promise.all(chats.map((c) => c.flowing()));
        const [victim, ...others] = chats;

        const lastBefore = victim.lastAccepted();
        const stoppedAt = Date.now();
        await shards[0].stop({ kill: true });
        // While the shard is down, the other sessions talk across nodes as before.
        const othersBefore = others.map((c) => c.lastAccepted());
        await Promise.all(others.map((c) => c.flowing(10)));
        await Promise.all(others.map((c, i) => c.crossNodeAfter(othersBefore[i], 2_000)));
        expect(Date.now() - stoppedAt).to.be.below(20_000);

        await shards[0].start();
        const restartedAt = Date.now();
        const victimBefore = Math.max(lastBefore, victim.lastAccepted());
        await victim.crossNodeAfter(victimBefore, 30_000);
        const recoveredMs = Date.now() - restartedAt;
        // Presence of the restarted shard's session is rebuilt from the nodes' own connections.
        let participants: string[] = [];
        await waitUntil(
          'presence rebuilt',
          async () => {
            participants = (await request(cluster.nodes[2].url, 'GET', `/api/sessions/${victim.sessionId}/participants`)).body.data.map((p: any) => p.id).sort();
            return participants.length === 4;
          },
          { timeoutMs: 15_000, intervalMs: 100 },
        ).catch((err: Error) => {
          throw new Error(`${err.message}; participants: ${participants.join(', ')}`);
        });
        process.stdout.write(`      measured: shard down ${restartedAt - stoppedAt} ms; its sessions' fan-out back ${recoveredMs} ms after it restarted\n`);

        // The undisturbed sessions lost nothing, nobody there was taken for gone; the restarted
        // shard's session delivers everything sent since it recovered.
        for (const chat of others) {
          for (const inbox of chat.inboxes) expect(inbox.of('user_left')).to.deep.equal([]);
          await chat.expectEveryoneGotEverything();
          chat.expectNoSeqGaps();
        }
        const afterRecovery = victim.lastAccepted();
        await victim.flowing(5);
        const results = await Promise.all(victim.traffic.map((t) => t.stop()));
        for (const [i, result] of results.entries()) {
          const userId = (victim.senders[i].auth as any).user_id;
          const expected = result.accepted.filter((id) => id > afterRecovery);
          for (const inbox of victim.inboxes) {
            await waitUntil('recovered messages', async () => expected.every((id) => inbox.of('message_received').some((m) => m.id === id)), { timeoutMs: 10_000, intervalMs: 20 });
            const got = inbox
              .of('message_received')
              .filter((m) => m.user_id === userId && m.id > afterRecovery)
              .map((m) => m.id);
            expect(got).to.deep.equal(expected);
          }
        }
      } finally {
        view.close();
        for (const chat of chats) chat.close();
      }
    });
  });
});
