/**
 * Nodes and Redis failing under real clients: a SIGKILLed node leaves no ghosts, SIGTERM
 * drains, and a Redis outage degrades to local service and heals without restarts.
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { http as request, joinSocket, RawClient, sendWithAck, type TestSocket } from '../support/clients';
import { createSession, wholeHistory } from '../support/factories';
import { nodeServing, waitForHealth } from '../support/health';
import { Traffic } from '../support/traffic';
import { sharedPostgres } from '../support/hooks';

const PRESENCE_TTL_MS = 3000;
const wsUrl = (url: string) => url.replace(/^http/, 'ws');

/** A loopback source address that nginx's hash sends to `nodeId`. */
async function addressServedBy(cluster: ClusterHandle, nodeId: string): Promise<string> {
  for (let i = 2; i < 250; i++) {
    const localAddress = `127.0.1.${i}`;
    if ((await nodeServing(cluster.url, localAddress)) === nodeId) return localAddress;
  }
  throw new Error(`no source address maps to ${nodeId}`);
}

describe('cluster failures', function () {
  this.timeout(90_000);
  let cluster: ClusterHandle;
  const open: Array<TestSocket | RawClient> = [];
  const track = <T extends TestSocket | RawClient>(c: T) => (open.push(c), c);

  beforeEach(async () => {
    cluster = await startCluster({ nodes: 3, postgres: await sharedPostgres(), env: { PRESENCE_TTL_MS: String(PRESENCE_TTL_MS), MESSAGE_RATE_LIMIT: '1000' } });
  });
  afterEach(async () => {
    while (open.length) open.pop()!.close();
    await cluster?.stop();
  });

  it("SIGKILL: the dead node's participants leave within the bound and its clients rejoin elsewhere", async () => {
    const [n1] = cluster.nodes;
    const session = await createSession(n1.url);
    const observer = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'observer', name: 'Observer' }));
    const ghost = track(await RawClient.join(wsUrl(cluster.nodes[1].url), session.id, { user_id: 'ghost', name: 'Ghost' }));
    const localAddress = await addressServedBy(cluster, 'node-2');
    const traveller = track(
      await joinSocket(cluster.url, { session_id: session.id, user_id: 'traveller', name: 'Traveller' }, {
        reconnection: true,
        reconnectionDelay: 200,
        reconnectionDelayMax: 500,
        localAddress,
      } as any),
    );
    await observer.inbox.waitFor('user_joined', (u) => u.id === 'traveller');

    const killedAt = Date.now();
    cluster.nodes[1].kill('SIGKILL');
    await observer.inbox.waitFor('user_left', (u) => u.id === 'ghost', 30_000);
    const bound = PRESENCE_TTL_MS + PRESENCE_TTL_MS / 3 + 2000;
    expect(Date.now() - killedAt).to.be.below(bound);

    // socket.io-client reconnects by itself; nginx sends it to a live node.
    await traveller.inbox.waitForCount('session_joined', 2, 15_000);
    expect(traveller.connected).to.equal(true);
    const participants = (await request(n1.url, 'GET', `/api/sessions/${session.id}/participants`)).body.data;
    expect(participants.map((p: any) => p.id).sort()).to.deep.equal(['observer', 'traveller']);
    const ack = await sendWithAck(traveller, { message: 'back from the other side' });
    expect((await observer.inbox.waitFor('message_received', (m) => m.id === ack.id)).user_id).to.equal('traveller');
    expect(ghost.ws.readyState).to.be.oneOf([2, 3]);
  });

  it('SIGTERM: the node drains in-flight work, releases presence, sends clients elsewhere and exits 0 within 10 s', async () => {
    const [n1, , n3] = cluster.nodes;
    const session = await createSession(n1.url);
    const observer = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'observer', name: 'Observer' }));
    const raw = track(await RawClient.join(wsUrl(n3.url), session.id, { user_id: 'raw', name: 'Raw' }));
    const localAddress = await addressServedBy(cluster, 'node-3');
    const mover = track(await joinSocket(cluster.url, { session_id: session.id, user_id: 'mover', name: 'Mover' }, { reconnection: true, reconnectionDelay: 200, localAddress } as any));

    raw.send({ event: 'send_message', data: { message: 'last words' } });
    const asked = await observer.inbox.waitFor('message_received', (m) => m.message === 'last words');
    const started = Date.now();
    n3.kill('SIGTERM');
    expect(await n3.exited).to.equal(0);
    expect(Date.now() - started).to.be.below(10_000);

    expect((await observer.inbox.waitFor('spirit_response', (r) => r.in_reply_to === asked.id)).message).to.be.a('string');
    expect((await raw.closed).code).to.equal(1012);
    expect((await observer.inbox.waitFor('user_left', (u) => u.id === 'raw')).id).to.equal('raw');
    await mover.inbox.waitForCount('session_joined', 2, 15_000);
    const participants = (await request(n1.url, 'GET', `/api/sessions/${session.id}/participants`)).body.data;
    expect(participants.map((p: any) => p.id).sort()).to.deep.equal(['mover', 'observer']);
  });

  it('Redis outage under traffic: health says 503, local clients keep talking, nothing accepted is lost, and all resumes when Redis returns', async () => {
    const [n1, n2] = cluster.nodes;
    const session = await createSession(n1.url);
    const a = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'a', name: 'A' }));
    const b = track(await RawClient.join(wsUrl(n1.url), session.id, { user_id: 'b', name: 'B' }));
    const c = track(await joinSocket(n2.url, { session_id: session.id, user_id: 'c', name: 'C' }));

    const traffic = new Traffic(a, { label: 'redis' });
    await traffic.acceptedMore(3);
    await cluster.redis.stop();
    const down = await waitForHealth(n1.url, (_b, status) => status === 503, 10_000);
    expect(down).to.include({ status: 'unhealthy', redis: 'disconnected', database: 'connected' });
    // Local clients keep talking: the node's own raw client sees what its socket.io client sends.
    await traffic.acceptedMore(5);
    const duringOutage = traffic.result.accepted.at(-1);
    await b.inbox.waitFor('message_received', (m) => m.id === duringOutage);
    await b.inbox.waitFor('spirit_response', (r) => r.in_reply_to === duringOutage);

    await cluster.redis.start();
    for (const node of cluster.nodes) expect((await waitForHealth(node.url, (_b, status) => status === 200, 15_000)).redis).to.equal('connected');
    // No process died along the way (signal 0 only checks the PID is alive).
    for (const node of cluster.nodes) expect(() => process.kill(node.pid, 0), node.nodeId).not.to.throw();

    // Presence is rebuilt from each node's own connections (Redis came back empty).
    const deadline = Date.now() + 10_000;
    let ids: string[] = [];
    while (Date.now() < deadline) {
      ids = (await request(n2.url, 'GET', `/api/sessions/${session.id}/participants`)).body.data.map((p: any) => p.id).sort();
      if (ids.length === 3) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(ids).to.deep.equal(['a', 'b', 'c']);

    await traffic.acceptedMore(3);
    const result = await traffic.stop();
    expect(result.refused).to.deep.equal([]);
    // Every accepted message was kept, across the outage, and nothing else.
    const stored = (await wholeHistory(n2.url, session.id)).filter((m: any) => !m.is_spirit && m.user_id === 'a');
    expect(stored.map((m: any) => m.id)).to.deep.equal(result.accepted);
    const local = b.inbox.of('message_received').map((m) => m.id);
    expect(local).to.deep.equal(result.accepted);

    const across = await sendWithAck(c, { message: 'after the outage' });
    for (const inbox of [a.inbox, b.inbox]) expect((await inbox.waitFor('message_received', (m) => m.id === across.id)).message).to.equal('after the outage');
    const back = await sendWithAck(a, { message: 'and back' });
    expect((await c.inbox.waitFor('message_received', (m) => m.id === back.id)).user_id).to.equal('a');
    // What was said on node 1 while Redis was down reached node 2's client once it was back, in
    // seq order with nothing missing or repeated (read from the database: Redis lost it).
    await c.inbox.waitFor('spirit_response', (m) => m.seq === back.seq + 1);
    const seen = [
      ...c.inbox.of('session_joined')[0].messages.map((m: any) => m.seq),
      ...c.inbox.events.filter((e) => e.event === 'message_received' || e.event === 'spirit_response').map((e) => (e.data as { seq: number }).seq),
    ];
    expect(seen).to.deep.equal(Array.from({ length: back.seq + 1 }, (_, i) => i + 1));
  });
});
