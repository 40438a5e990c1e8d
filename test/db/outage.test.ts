/**
 * PostgreSQL stopped and restarted under traffic, with real node processes: nothing is
 * shown that was not kept, nothing accepted is lost, no process exits, all heals itself.
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { http, joinSocket, RawClient, socketClient } from '../support/clients';
import { createSession, wholeHistory } from '../support/factories';
import { waitForHealth } from '../support/health';
import { Traffic } from '../support/traffic';

describe('database outage under traffic', function () {
  this.timeout(90_000);
  let cluster: ClusterHandle;

  before(async () => {
    cluster = await startCluster({ nodes: 2, nginx: false, env: { MESSAGE_RATE_LIMIT: '100000', CLIENT_EVENT_RATE: '100000' } });
  });
  after(async () => cluster?.stop());

  it('refuses what it cannot store, answers 503, and recovers by itself when PostgreSQL returns', async () => {
    const [n1, n2] = cluster.nodes;
    const session = await createSession(n1.url);
    const sender = await joinSocket(n1.url, { session_id: session.id, user_id: 'sender', name: 'Sender' });
    const watcher = await RawClient.join(n2.url.replace('http', 'ws'), session.id, { user_id: 'watcher', name: 'Watcher' });
    const traffic = new Traffic(sender, { label: 'pg' });
    await traffic.acceptedMore(5);

    await cluster.postgres.stop();
    await traffic.refusedSome();
    const down = await waitForHealth(n1.url, (b) => b.database === 'disconnected', 10_000);
    expect(down).to.include({ httpStatus: 503, status: 'unhealthy', database: 'disconnected', redis: 'connected' });
    const rest = await http(n2.url, 'GET', `/api/sessions/${session.id}`);
    expect(rest.status).to.equal(503);
    expect(rest.body.success).to.equal(false);
    expect(rest.body.error.code).to.equal('SERVICE_UNAVAILABLE');
    expect(rest.text).not.to.match(/ECONNREFUSED|Sequelize|at .*\.js/);
    // One classifier for every edge: a join refused for the outage says so on both transports.
    const rawJoin = await RawClient.connect(n2.url.replace('http', 'ws'), session.id);
    rawJoin.send({ user_id: 'late', name: 'Late' });
    expect((await rawJoin.closed).code).to.equal(1013);
    expect(rawJoin.inbox.of('error')[0].code).to.equal('SERVICE_UNAVAILABLE');
    const sioJoin = socketClient(n2.url, { session_id: session.id, user_id: 'late', name: 'Late' });
    expect((await sioJoin.inbox.waitFor('connect_error')).message).to.equal('SERVICE_UNAVAILABLE');
    sioJoin.close();

    await cluster.postgres.start();
    for (const node of cluster.nodes) await waitForHealth(node.url, (_b, status) => status === 200, 20_000);
    await traffic.acceptedMore(5);
    const result = await traffic.stop();

    expect(result.refused.length).to.be.above(0);
    for (const r of result.refused) expect(r.code).to.equal('SERVICE_UNAVAILABLE');
    const stored = (await wholeHistory(n1.url, session.id)).filter((m: any) => !m.is_spirit).map((m: any) => m.id);
    // Every accepted message was kept; nothing refused was stored or shown.
    expect(stored).to.deep.equal(result.accepted);
    const lastAccepted = result.accepted.at(-1);
    await watcher.inbox.waitFor('message_received', (m) => m.id === lastAccepted);
    const shown = watcher.inbox.of('message_received').map((m) => m.id);
    expect(shown).to.deep.equal(result.accepted);
    for (const node of cluster.nodes) expect(() => process.kill(node.pid, 0)).not.to.throw();
    sender.close();
    watcher.close();
  });
});
