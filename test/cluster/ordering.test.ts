/**
 * Order, resume and repair across real nodes (docs/protocol.md: Order, resume and repair): three node
 * processes on one Redis and PostgreSQL. Writers on every node get gap-free seqs and every
 * connection sees them in order; a message whose broadcast never reached the other nodes is
 * filled in from the database, also when nothing comes after it, and when a node receives
 * what it cannot read; and a node of the previous release (built from git) in the cluster
 * loses nothing for anyone.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { pgClient } from '../../harness/pg';
import { buildRelease, hasGitHistory, type ReleaseBuild } from '../../harness/release';
import { joinSocket, RawClient, sendWithAck, seqsSeen, type TestSocket } from '../support/clients';
import { createSession, wholeHistory } from '../support/factories';
import { sharedPostgres } from '../support/hooks';
import { scrape, valueOf } from '../support/metrics';

const wsUrl = (url: string) => url.replace(/^http/, 'ws');
/** The release before seq (main when this work started): nodes exchange unversioned messages and number nothing. */
const PREVIOUS_RELEASE = 'd883407';

const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Stores a message the way a node does, but tells no one: its broadcast was lost. */
async function storeSilently(cluster: ClusterHandle, sessionId: string, text: string): Promise<number> {
  const client = pgClient(cluster.postgres.url);
  await client.connect();
  try {
    const result = await client.query<{ seq: number }>(
      "INSERT INTO messages (session_id, user_id, user_name, text, is_spirit, timestamp) VALUES ($1, 'ghost', 'Ghost', $2, false, now()) RETURNING seq",
      [sessionId, text],
    );
    return Number(result.rows[0].seq);
  } finally {
    await client.end();
  }
}

describe('cluster: order, resume and repair', function () {
  this.timeout(120_000);
  let cluster: ClusterHandle;
  const open: Array<TestSocket | RawClient> = [];
  const track = <T extends TestSocket | RawClient>(c: T) => (open.push(c), c);

  before(async () => {
    cluster = await startCluster({ nodes: 3, nginx: false, postgres: await sharedPostgres(), env: { MESSAGE_RATE_LIMIT: '100000', CLIENT_EVENT_RATE: '100000' } });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => cluster?.stop());

  /** A Socket.IO and a raw listener on each node. */
  async function listeners(sessionId: string): Promise<Array<TestSocket | RawClient>> {
    const all: Array<TestSocket | RawClient> = [];
    for (const [i, node] of cluster.nodes.entries()) {
      all.push(track(await joinSocket(node.url, { session_id: sessionId, user_id: `sio-${i}`, name: `Sio ${i}` })));
      all.push(track(await RawClient.join(wsUrl(node.url), sessionId, { user_id: `raw-${i}`, name: `Raw ${i}` })));
    }
    return all;
  }

  it('numbers the messages of writers on three nodes 1, 2, 3, … and shows every connection all of them in order', async () => {
    const session = await createSession(cluster.nodes[0].url, { max_users: 12 });
    const watchers = await listeners(session.id);
    const writers = [
      track(await joinSocket(cluster.nodes[0].url, { session_id: session.id, user_id: 'w0', name: 'W0' })),
      track(await joinSocket(cluster.nodes[1].url, { session_id: session.id, user_id: 'w1', name: 'W1' })),
      track(await RawClient.join(wsUrl(cluster.nodes[2].url), session.id, { user_id: 'w2', name: 'W2' })),
    ];
    const perWriter = 40;
    for (let i = 0; i < perWriter; i++) {
      for (const [k, writer] of writers.entries()) {
        if (writer instanceof RawClient) writer.send({ event: 'send_message', data: { message: `w${k} ${i}` } });
        else writer.emit('send_message', { message: `w${k} ${i}` });
      }
    }
    const total = perWriter * writers.length * 2; // every question gets its answer
    for (const client of [...watchers, ...writers]) {
      await client.inbox.waitFor('spirit_response', () => client.inbox.of('spirit_response').length + client.inbox.of('message_received').length >= total, 30_000);
      expect(seqsSeen(client.inbox)).to.deep.equal(oneTo(total));
    }
    expect((await wholeHistory(cluster.nodes[1].url, session.id)).map((m) => m.seq)).to.deep.equal(oneTo(total));
  });

  it('fills in a message whose broadcast was lost, before the next one, on every node and both transports', async () => {
    const session = await createSession(cluster.nodes[0].url, { max_users: 12 });
    const watchers = await listeners(session.id);
    const speaker = track(await joinSocket(cluster.nodes[1].url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
    await sendWithAck(speaker, { message: 'first' });
    const repairsBefore = await Promise.all(cluster.nodes.map(async (node) => valueOf(await scrape(node.url), 'seance_gap_repairs_total') ?? 0));
    expect(await storeSilently(cluster, session.id, 'lost between nodes')).to.equal(3);
    const ack = await sendWithAck(speaker, { message: 'after the loss' });
    expect(ack.seq).to.equal(4);
    for (const client of watchers) {
      await client.inbox.waitFor('spirit_response', (m) => m.seq === 5);
      expect(seqsSeen(client.inbox)).to.deep.equal([1, 2, 3, 4, 5]);
      expect(client.inbox.of('message_received').map((m) => m.message)).to.deep.equal(['first', 'lost between nodes', 'after the loss']);
    }
    // Each node filled the hole itself, and says so.
    for (const [i, node] of cluster.nodes.entries()) expect((valueOf(await scrape(node.url), 'seance_gap_repairs_total') ?? 0) - repairsBefore[i], node.nodeId).to.equal(1);
  });

  it('fills in a lost last message once the session is quiet, with nothing after it to show the hole', async () => {
    const session = await createSession(cluster.nodes[0].url, { max_users: 12 });
    const watchers = await listeners(session.id);
    await storeSilently(cluster, session.id, 'nobody broadcast me');
    for (const client of watchers) expect((await client.inbox.waitFor('message_received', () => true, 8_000)).seq).to.equal(1);
  });

  it('reads a session from the database when a node receives a message it cannot read (a newer format)', async () => {
    const session = await createSession(cluster.nodes[0].url, { max_users: 12 });
    const watchers = await listeners(session.id);
    const speaker = track(await joinSocket(cluster.nodes[0].url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
    await sendWithAck(speaker, { message: 'hello' });
    for (const client of watchers) await client.inbox.waitFor('spirit_response', (m) => m.seq === 2);
    await storeSilently(cluster, session.id, 'announced in a format from the future');
    const redis = new Redis(cluster.redis.url);
    try {
      const sent = Date.now();
      await redis.spublish(`seance#/#session:${session.id}#`, JSON.stringify({ v: 99, uid: 'from-the-future', nsp: '/', type: 2, data: { hologram: true } }));
      for (const client of watchers) await client.inbox.waitFor('message_received', (m) => m.seq === 3, 3_000);
      // Well before a quiet session would have looked (2 s).
      expect(Date.now() - sent).to.be.below(1_500);
    } finally {
      redis.disconnect();
    }
    for (const client of watchers) expect(seqsSeen(client.inbox)).to.deep.equal([1, 2, 3]);
  });

  describe('with a node of the previous release', function () {
    let previous: ReleaseBuild | null = null;

    before(async function () {
      if (!hasGitHistory()) this.skip();
      this.timeout(240_000);
      previous = await buildRelease(PREVIOUS_RELEASE);
      await cluster.addNode({}, previous.root);
    });
    after(async () => previous?.remove());

    it('loses nothing for anyone while nodes of both releases serve one session', async () => {
      const old = cluster.nodes[3];
      const session = await createSession(old.url, { max_users: 12 });
      const onNew = [
        track(await joinSocket(cluster.nodes[0].url, { session_id: session.id, user_id: 'new-sio', name: 'New Sio' })),
        track(await RawClient.join(wsUrl(cluster.nodes[1].url), session.id, { user_id: 'new-raw', name: 'New Raw' })),
      ];
      const onOld = [
        track(await joinSocket(old.url, { session_id: session.id, user_id: 'old-sio', name: 'Old Sio' })),
        track(await RawClient.join(wsUrl(old.url), session.id, { user_id: 'old-raw', name: 'Old Raw' })),
      ];
      const speakers = [onNew[0] as TestSocket, onOld[0] as TestSocket];
      for (let i = 0; i < 10; i++) for (const [k, speaker] of speakers.entries()) await sendWithAck(speaker, { message: `${k === 0 ? 'new' : 'old'} ${i}` });
      const history = await wholeHistory(cluster.nodes[0].url, session.id);
      expect(history.map((m) => m.seq)).to.deep.equal(oneTo(40));
      const questions = history.filter((m) => !m.is_spirit).map((m) => m.message);
      // On this release's nodes: every message, in seq order, no gap, no repeat (the old node's are read from the database).
      for (const client of onNew) {
        await client.inbox.waitFor('spirit_response', (m) => m.seq === 40, 10_000);
        expect(seqsSeen(client.inbox)).to.deep.equal(oneTo(40));
      }
      // On the old node: every message too, each once (it numbers nothing of its own).
      for (const client of onOld) {
        await client.inbox.waitFor('message_received', () => client.inbox.of('message_received').length >= 20, 10_000);
        await client.inbox.waitFor('spirit_response', () => client.inbox.of('spirit_response').length >= 20, 10_000);
        expect(client.inbox.of('message_received').map((m) => m.message)).to.have.members(questions);
        expect(client.inbox.of('message_received')).to.have.length(20);
      }
    });
  });
});
