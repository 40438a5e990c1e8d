/**
 * Sessions over time on a real 3-node cluster with a 3-second idle timeout: a quiet session
 * with people connected on every node and transport stays, and ends once for the whole
 * cluster when they have all left; a lively one does not end, and the messages of ended
 * sessions are deleted once, by the one node holding the lease.
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

  it("keeps a quiet session while people are connected, ends it once after they left, keeps a lively one, and deletes the ended one's messages once", async () => {
    const [n1, n2, n3] = cluster.nodes;
    const idle = await createSession(n1.url);
    const lively = await createSession(n2.url);
    const a = await joinSocket(n1.url, { session_id: idle.id, user_id: 'a', name: 'A' });
    const b = await RawClient.join(n2.url.replace('http', 'ws'), idle.id, { user_id: 'b', name: 'B' });
    const c = await joinSocket(n3.url, { session_id: idle.id, user_id: 'c', name: 'C' });
    for (let i = 0; i < 2; i += 1) expect((await sendWithAck(a, { message: `before the silence ${i}` })).ok).to.equal(true);
    await c.inbox.waitFor('spirit_response', () => c.inbox.of('spirit_response').length === 2);

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
      // Quiet, but connected: one and a half timeouts (a dozen sweeps) later the session is still on.
      await new Promise((resolve) => setTimeout(resolve, IDLE_MINUTES * 60_000 * 1.5));
      expect((await http(n2.url, 'GET', `/api/sessions/${idle.id}`)).body.data.is_active, 'ended with people connected').to.equal(true);
      for (const inbox of [a.inbox, b.inbox, c.inbox]) expect(inbox.of('session_ended')).to.have.length(0);

      a.close();
      b.close();
      c.close();
      const left = Date.now();
      await waitUntil('the empty session ends', async () => (await http(n2.url, 'GET', `/api/sessions/${idle.id}`)).body.data.is_active === false, { timeoutMs: 20_000 });
      expect(Date.now() - left, 'ended before a timeout had passed since the last one left').to.be.at.least(IDLE_MINUTES * 60_000 - 1000);

      // Retention: the ended session's four messages go, once, on whichever node holds the lease.
      await waitUntil('expired messages deleted', async () => (await sumOver('seance_messages_expired_total')) >= 4, { timeoutMs: 15_000 });
      expect((await http(n1.url, 'GET', `/api/sessions/${idle.id}/history`)).body.data).to.deep.equal([]);
      expect(await sumOver('seance_messages_expired_total')).to.equal(4);
      expect(await sumOver('seance_sessions_idle_ended_total')).to.equal(1);
      expect(await sumOver('seance_maintenance_holder')).to.equal(1);

      // Well past the timeout, the lively session is still on and its messages kept.
      const still = await http(n1.url, 'GET', `/api/sessions/${lively.id}`);
      expect(still.body.data.is_active).to.equal(true);
      expect((await http(n1.url, 'GET', `/api/sessions/${lively.id}/history`)).body.data.length).to.be.above(0);
    } finally {
      talking = false;
      await talk;
    }
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
    // And it does the work: a new session nobody joins ends.
    const session = await createSession(cluster.nodes[0].url);
    await waitUntil('the new idle session ends', async () => (await http(cluster.nodes[1].url, 'GET', `/api/sessions/${session.id}`)).body.data.is_active === false, { timeoutMs: 20_000 });
  });
});

describe('session lifecycle on a single node (SQLite, no Redis)', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ database: 'sqlite', env: { SESSION_IDLE_TIMEOUT_MINUTES: '0.03', MESSAGE_RETENTION_DAYS: String(RETENTION_DAYS), MAINTENANCE_INTERVAL_MS: '200' } });
  });
  after(async () => server?.close());

  it('runs the sweeps itself: the session ends once its one participant left, and its messages go', async () => {
    const session = await createSession(server.url);
    const socket = await joinSocket(server.url, { session_id: session.id, user_id: 'solo', name: 'Solo' });
    expect((await sendWithAck(socket, { message: 'anyone?' })).ok).to.equal(true);
    await socket.inbox.waitFor('spirit_response');
    socket.close();
    await waitUntil('the empty session ends', async () => (await http(server.url, 'GET', `/api/sessions/${session.id}`)).body.data.is_active === false, { timeoutMs: 15_000 });
    await waitUntil('messages deleted', async () => (await http(server.url, 'GET', `/api/sessions/${session.id}/history`)).body.data.length === 0, { timeoutMs: 10_000 });
    expect(valueOf(await scrape(server.url), 'seance_messages_expired_total')).to.equal(2);
  });
});
