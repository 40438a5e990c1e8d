/**
 * Work a node has accepted is not dropped: a spirit answer that falls due while PostgreSQL is
 * down is stored once it is back, and a node SIGTERMed while its clients keep talking exits
 * quickly, every acknowledged question answered. Real node processes, PostgreSQL and Redis.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { pgQuery } from '../../harness/pg';
import { waitUntil } from '../../harness/processes';
import { joinSocket, sendWithAck, type TestSocket } from '../support/clients';
import { createSession, wholeHistory } from '../support/factories';
import { waitForHealth } from '../support/health';

/** The oracle's own default: answers are still under way well after their question's ack. */
const ORACLE_DELAY_MS = 1500;
const SHUTDOWN_TIMEOUT_MS = 8000;

describe('accepted work survives outages and shutdowns', function () {
  this.timeout(120_000);
  let cluster: ClusterHandle;
  const open: TestSocket[] = [];
  const track = (s: TestSocket) => (open.push(s), s);

  before(async () => {
    cluster = await startCluster({
      nodes: 2,
      nginx: false,
      env: { SPIRIT_ORACLE_DELAY_MS: String(ORACLE_DELAY_MS), SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), MESSAGE_RATE_LIMIT: '100000', CLIENT_EVENT_RATE: '100000' },
    });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });
  after(async () => cluster?.stop());

  it('a spirit answer due while PostgreSQL is down is stored and sent once it is back, after its question', async () => {
    const node = cluster.nodes[0];
    const session = await createSession(node.url);
    const asker = track(await joinSocket(node.url, { session_id: session.id, user_id: 'asker', name: 'Asker' }));
    const ack = await sendWithAck(asker, { message: 'Will you answer through the dark?' });
    expect(ack.ok).to.equal(true);

    await cluster.postgres.stop();
    try {
      // PostgreSQL went away before the answer fell due: its store is the one that fails.
      expect(asker.inbox.of('spirit_response')).to.deep.equal([]);
      await waitUntil('the answer store failing', async () => fs.readFileSync(node.logFile, 'utf8').includes('spirit answers cannot be stored'), {
        timeoutMs: 15_000,
        logFile: node.logFile,
      });
    } finally {
      await cluster.postgres.start();
    }

    const answer = await asker.inbox.waitFor('spirit_response', (r) => r.in_reply_to === ack.id, 30_000);
    expect(answer.seq).to.equal(ack.seq + 1);
    expect(asker.inbox.of('error')).to.deep.equal([]);
    const history = await wholeHistory(node.url, session.id);
    expect(history.map((m: any) => [m.id, m.seq, m.is_spirit])).to.deep.equal([
      [ack.id, ack.seq, false],
      [answer.id, answer.seq, true],
    ]);
    // One warning for the outage, not one per retry.
    const log = fs.readFileSync(node.logFile, 'utf8');
    expect(log.split('spirit answers cannot be stored').length - 1).to.equal(1);
    expect(log).not.to.include('spirit answer failed');
  });

  it('SIGTERM under traffic: the node exits well under SHUTDOWN_TIMEOUT_MS and every acknowledged question is answered', async () => {
    const [n1, n2] = cluster.nodes;
    for (const node of cluster.nodes) await waitForHealth(node.url, (_b, status) => status === 200, 20_000);
    const session = await createSession(n2.url);
    const watcher = track(await joinSocket(n2.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
    const senders = await Promise.all([0, 1, 2, 3].map((i) => joinSocket(n1.url, { session_id: session.id, user_id: `talker-${i}`, name: `Talker ${i}` }).then(track)));

    const acked: Array<{ id: number; seq: number }> = [];
    const refused: string[] = [];
    // Each talker sends, waits for its ack, and goes on until its connection closes (bounded in count).
    const talking = senders.map(async (s, i) => {
      const closed = new Promise<null>((resolve) => s.once('disconnect', () => resolve(null)));
      for (let k = 0; k < 500 && s.connected; k++) {
        const ack = await Promise.race([sendWithAck(s, { message: `talker ${i} line ${k}` }, 30_000), closed]);
        if (!ack) break;
        if (ack.ok) acked.push({ id: ack.id, seq: ack.seq });
        else refused.push(ack.error.code);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    await waitUntil('traffic flowing', async () => acked.length >= 40, { timeoutMs: 20_000, intervalMs: 20 });

    const started = Date.now();
    n1.kill('SIGTERM');
    const code = await n1.exited;
    const exitMs = Date.now() - started;
    await Promise.all(talking);
    expect(code).to.equal(0);
    // Before: the whole SHUTDOWN_TIMEOUT_MS (pending work never emptied while clients talked).
    expect(exitMs, `exit after SIGTERM took ${exitMs} ms`).to.be.below(ORACLE_DELAY_MS + 2500);
    for (const c of refused) expect(c).to.equal('SERVICE_UNAVAILABLE');

    // Stored before the node exited: every question it stored has its answer, acknowledged ones included.
    const unanswered = await pgQuery<{ id: number }>(
      cluster.postgres.url,
      `SELECT q.id FROM messages q WHERE q.session_id = '${session.id}' AND NOT q.is_spirit
         AND NOT EXISTS (SELECT 1 FROM messages a WHERE a.is_spirit AND a.in_reply_to = q.id)`,
    );
    expect(unanswered).to.deep.equal([]);
    const history = await wholeHistory(n2.url, session.id);
    const questions = new Set(history.filter((m: any) => !m.is_spirit).map((m: any) => m.id));
    for (const a of acked) expect(questions.has(a.id), `acknowledged ${a.id} stored`).to.equal(true);
    // And delivered: the watcher on the other node got every answer.
    for (const a of acked) await watcher.inbox.waitFor('spirit_response', (r) => r.in_reply_to === a.id, 10_000);
  });
});
