/**
 * Sessions over time on a real 3-node cluster with a 3-second idle timeout: an idle
 * session ends once for the whole cluster (each client gets exactly one session_ended
 * with reason "idle", on every node and transport), a lively one does not, and the
 * messages of ended sessions are deleted once, by the one node holding the lease.
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { waitUntil } from '../../harness/processes';
import { http, joinSocket, RawClient, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { scrape, valueOf } from '../support/metrics';
import { startTestServer, type TestServer } from '../support/server';

const IDLE_MINUTES = 0.05; // 3 s
const RETENTION_DAYS = 0.00002; // 1.7 s

describe('session lifecycle across a cluster', function () {
  this.timeout(90_000);
  let cluster: ClusterHandle;

  before(async () => {
    cluster = await startCluster({
      nodes: 3,
      nginx: false,
      env: { SESSION_IDLE_TIMEOUT_MINUTES: String(IDLE_MINUTES), MESSAGE_RETENTION_DAYS: String(RETENTION_DAYS), MAINTENANCE_INTERVAL_MS: '250', MESSAGE_RATE_LIMIT: '1000' },
    });
  });
  after(async () => cluster?.stop());

  const sumOver = async (name: string) => {
    let total = 0;
    for (const node of cluster.nodes) total += valueOf(await scrape(node.url), name) ?? 0;
    return total;
  };

  it('ends an idle session once with reason "idle", keeps a lively one, and deletes the ended one\'s messages once', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const idle = await createSession(n1.url);
    const lively = await createSession(n2.url);
    const a = await joinSocket(n1.url, { session_id: idle.id, user_id: 'a', name: 'A' });
    const b = await RawClient.join(n2.url.replace('http', 'ws'), idle.id, { user_id: 'b', name: 'B' });
    const c = await joinSocket(n3.url, { session_id: idle.id, user_id: 'c', name: 'C' });
    for (let i = 0; i < 2; i += 1) expect((await sendWithAck(a, { message: `before the silence ${i}` })).ok).to.equal(true);
    await c.inbox.waitFor('spirit_response', () => c.inbox.of('spirit_response').length === 2);
    const started = Date.now();

    // The lively session: someone speaks every second (bounded), from another node.
    const talker = await joinSocket(n3.url, { session_id: lively.id, user_id: 't', name: 'T' });
    let talking = true;
    const talk = (async () => {
      for (let i = 0; talking && i < 60; i += 1) {
        await sendWithAck(talker, { message: `still here ${i}` });
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();

    try {
      for (const inbox of [a.inbox, b.inbox, c.inbox]) {
        const ended = await inbox.waitFor('session_ended', () => true, 20_000);
        expect(ended).to.include({ session_id: idle.id, reason: 'idle' });
      }
      expect(Date.now() - started, 'ended before its idle timeout').to.be.at.least(IDLE_MINUTES * 60_000 - 1000);
      expect((await b.closed).code).to.equal(1000);
      await a.inbox.waitFor('disconnect');
      await c.inbox.waitFor('disconnect');
      expect((await http(n2.url, 'GET', `/api/sessions/${idle.id}`)).body.data.is_active).to.equal(false);

      // Retention: the ended session's four messages go, once, on whichever node holds the lease.
      await waitUntil('expired messages deleted', async () => (await sumOver('seance_messages_expired_total')) >= 4, { timeoutMs: 15_000 });
      expect((await http(n1.url, 'GET', `/api/sessions/${idle.id}/history`)).body.data).to.deep.equal([]);
      expect(await sumOver('seance_messages_expired_total')).to.equal(4);
      expect(await sumOver('seance_sessions_idle_ended_total')).to.equal(1);
      expect(await sumOver('seance_maintenance_holder')).to.equal(1);

      // Well past the timeout, the lively session is still on and its messages kept.
      expect(Date.now() - started).to.be.above(IDLE_MINUTES * 60_000);
      const still = await http(n1.url, 'GET', `/api/sessions/${lively.id}`);
      expect(still.body.data.is_active).to.equal(true);
      expect((await http(n1.url, 'GET', `/api/sessions/${lively.id}/history`)).body.data.length).to.be.above(0);
    } finally {
      talking = false;
      await talk;
    }

    // Exactly one session_ended per client: nothing else arrives from the other nodes.
    await new Promise((resolve) => setTimeout(resolve, 1000)); // a second for a duplicate to show up, had there been one
    for (const inbox of [a.inbox, b.inbox, c.inbox]) expect(inbox.of('session_ended')).to.have.length(1);
    expect(talker.inbox.of('session_ended')).to.have.length(0);
    talker.close();
  });

  it('hands the lease over when its holder stops', async () => {
    const holderIndex = await (async () => {
      for (let i = 0; i < cluster.nodes.length; i += 1) if (valueOf(await scrape(cluster.nodes[i].url), 'seance_maintenance_holder') === 1) return i;
      return -1;
    })();
    expect(holderIndex).to.be.at.least(0);
    const [holder] = cluster.nodes.splice(holderIndex, 1);
    await holder.stop();
    await waitUntil('another node holds the lease', async () => (await sumOver('seance_maintenance_holder')) === 1, { timeoutMs: 10_000 });
    // And it does the work: a new idle session ends.
    const session = await createSession(cluster.nodes[0].url);
    const watcher = await joinSocket(cluster.nodes[1].url, { session_id: session.id, user_id: 'w', name: 'W' });
    expect(await watcher.inbox.waitFor('session_ended', () => true, 20_000)).to.include({ reason: 'idle' });
    watcher.close();
  });
});

describe('session lifecycle on a single node (SQLite, no Redis)', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ database: 'sqlite', env: { SESSION_IDLE_TIMEOUT_MINUTES: '0.03', MESSAGE_RETENTION_DAYS: String(RETENTION_DAYS), MAINTENANCE_INTERVAL_MS: '200' } });
  });
  after(async () => server?.close());

  it('runs the sweeps itself: the idle session ends and its messages go', async () => {
    const session = await createSession(server.url);
    const socket = await joinSocket(server.url, { session_id: session.id, user_id: 'solo', name: 'Solo' });
    expect((await sendWithAck(socket, { message: 'anyone?' })).ok).to.equal(true);
    expect(await socket.inbox.waitFor('session_ended', () => true, 15_000)).to.include({ session_id: session.id, reason: 'idle' });
    await waitUntil('messages deleted', async () => (await http(server.url, 'GET', `/api/sessions/${session.id}/history`)).body.data.length === 0, { timeoutMs: 10_000 });
    expect(valueOf(await scrape(server.url), 'seance_messages_expired_total')).to.equal(2);
    socket.close();
  });
});
