/**
 * A question outlives the node that heard it. Three real nodes behind nginx on PostgreSQL and
 * Redis; two participants (one on Socket.IO, one on the raw /ws path) ask on one node, and that
 * node goes between their questions' store and their answers: SIGKILLed, or SIGTERMed with a
 * drain budget shorter than the answers take (the oracle's 1.5 s, or a slow provider). Every
 * connection on the other nodes, on both transports, gets each answer once, in seq order, and
 * history holds exactly one answer per question.
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import type { NodeHandle } from '../../harness/node';
import { pgQuery } from '../../harness/pg';
import { waitUntil } from '../../harness/processes';
import { joinSocket, RawClient, seqsSeen, sendWithAck, type TestSocket } from '../support/clients';
import { createSession, wholeHistory } from '../support/factories';
import { scrape, valueOf } from '../support/metrics';
import { sharedPostgres } from '../support/hooks';
import { FakeLlmServer, json } from '../services/spirit/fake-llm-server';

const ORACLE_DELAY_MS = 1500;
const SLOW_PROVIDER_MS = 3000;
const wsUrl = (url: string) => url.replace(/^http/, 'ws');
/** Short, so a node that died is noticed soon; a drain budget shorter than any answer takes. */
const BASE_ENV = { PRESENCE_TTL_MS: '2000', SHUTDOWN_TIMEOUT_MS: '500', MESSAGE_RATE_LIMIT: '1000' };

type Client = TestSocket | RawClient;

async function takenOver(nodes: NodeHandle[]): Promise<number> {
  const values = await Promise.all(nodes.map(async (n) => valueOf(await scrape(n.url), 'seance_spirit_answers_taken_over_total') ?? 0));
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Asks two questions on `victim` (one per transport), signals it before they are answered, and
 * checks what every connection on the `others` receives.
 */
async function askThenLose(cluster: ClusterHandle, victim: NodeHandle, others: NodeHandle[], signal: 'SIGKILL' | 'SIGTERM', open: Client[]): Promise<void> {
  const track = <T extends Client>(c: T) => (open.push(c), c);
  const session = await createSession(others[0].url);
  const watchers: Client[] = [];
  for (const [i, node] of others.entries()) {
    watchers.push(track(await joinSocket(node.url, { session_id: session.id, user_id: `sio-watcher-${i}`, name: `Socket.IO ${i}` })));
    watchers.push(track(await RawClient.join(wsUrl(node.url), session.id, { user_id: `raw-watcher-${i}`, name: `Raw ${i}` })));
  }
  const sioAsker = track(await joinSocket(victim.url, { session_id: session.id, user_id: 'sio-asker', name: 'Socket.IO asker' }));
  const rawAsker = track(await RawClient.join(wsUrl(victim.url), session.id, { user_id: 'raw-asker', name: 'Raw asker' }));
  const takenBefore = await takenOver(others);

  const ack = await sendWithAck(sioAsker, { message: 'Is anyone there?' });
  expect(ack.ok, JSON.stringify(ack)).to.equal(true);
  rawAsker.send({ event: 'send_message', data: { message: 'Will you answer me?' } });
  const sioQuestion = await sioAsker.inbox.waitFor('message_received', (m) => m.id === ack.id);
  const rawQuestion = await rawAsker.inbox.waitFor('message_received', (m) => m.user_id === 'raw-asker');
  const questions = [sioQuestion, rawQuestion].map((m) => ({ id: m.id as number, seq: m.seq as number, timestamp: m.timestamp as string }));
  for (const w of watchers) for (const q of questions) await w.inbox.waitFor('message_received', (m) => m.id === q.id, 10_000);
  // The node goes between the questions' store and their answers.
  for (const w of [...watchers, sioAsker, rawAsker]) expect(w.inbox.of('spirit_response'), 'no answer before the node goes').to.deep.equal([]);
  victim.kill(signal);
  if (signal === 'SIGTERM') expect(await victim.exited).to.equal(0);

  for (const w of watchers) {
    for (const q of questions) {
      const answer = await w.inbox.waitFor('spirit_response', (r) => r.in_reply_to === q.id, 25_000);
      expect(answer.seq).to.be.above(q.seq);
      // The oracle's delay counts from the question, wherever the answer is made.
      expect(Date.parse(answer.timestamp) - Date.parse(q.timestamp)).to.be.at.least(ORACLE_DELAY_MS);
    }
  }
  // Nothing owed any more; then a message from a watcher passes every connection: anything
  // stored before it (a second answer, say) has been delivered by the time it arrives.
  await waitUntil(
    'no answer owed in the session',
    async () => (await pgQuery(cluster.postgres.url, `SELECT id FROM messages WHERE session_id = '${session.id}' AND answer_owner IS NOT NULL`)).length === 0,
    {
      timeoutMs: 10_000,
    },
  );
  const barrier = await sendWithAck(watchers[0] as TestSocket, { message: 'Thank you, spirit.' });
  expect(barrier.ok).to.equal(true);
  for (const w of watchers) await w.inbox.waitFor('message_received', (m) => m.id === barrier.id, 10_000);

  for (const w of watchers) {
    const answers = w.inbox.of('spirit_response').filter((r) => questions.some((q) => q.id === r.in_reply_to));
    expect(answers.map((a) => a.in_reply_to).sort(), 'each answer once').to.deep.equal(questions.map((q) => q.id).sort());
    const seqs = seqsSeen(w.inbox);
    expect(seqs, 'in seq order, no gap, no repeat').to.deep.equal(Array.from({ length: seqs.length }, (_, i) => seqs[0] + i));
  }
  const history = await wholeHistory(others[0].url, session.id);
  const answersInHistory = history.filter((m) => m.is_spirit);
  expect(answersInHistory).to.have.length(2);
  expect(history.map((m) => m.seq)).to.deep.equal(Array.from({ length: history.length }, (_, i) => i + 1));
  expect((await takenOver(others)) - takenBefore).to.equal(2);
}

describe('answers owed by a node that goes', function () {
  this.timeout(120_000);
  let cluster: ClusterHandle;
  const llm = new FakeLlmServer();
  const open: Client[] = [];

  before(async () => {
    await llm.start();
    // Slow: the node that asked it goes while it thinks.
    llm.respondWith((res) => void setTimeout(() => json(200, { choices: [{ message: { role: 'assistant', content: 'THE VEIL IS THIN' } }] })(res), SLOW_PROVIDER_MS));
    cluster = await startCluster({ nodes: 3, postgres: await sharedPostgres(), env: { ...BASE_ENV, SPIRIT_ORACLE_DELAY_MS: String(ORACLE_DELAY_MS) } });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => {
    await cluster?.stop();
    await llm.close();
  });

  it('SIGKILL while the oracle thinks (1.5 s): another node answers each question once, on both transports, in seq order', async () => {
    const [n1, n2, n3] = cluster.nodes;
    try {
      await askThenLose(cluster, n2, [n1, n3], 'SIGKILL', open);
    } finally {
      await cluster.restartNode(1);
    }
  });

  it('SIGTERM with a drain budget shorter than the oracle: the node leaves presence and another answers at once', async () => {
    const [n1, n2, n3] = cluster.nodes;
    await askThenLose(cluster, n3, [n1, n2], 'SIGTERM', open);
  });

  it('SIGTERM while a slow provider (3 s) thinks: another node answers each question once', async () => {
    const [n1, n2] = cluster.nodes;
    const slow = await cluster.addNode({ SPIRIT_PROVIDER: 'openai', OPENAI_BASE_URL: `${llm.url}/v1`, OPENAI_API_KEY: 'sk-owed', SPIRIT_TIMEOUT_MS: '10000' });
    await askThenLose(cluster, slow, [n1, n2], 'SIGTERM', open);
    expect(llm.received.length, 'the slow provider was asked').to.be.at.least(2);
  });
});
