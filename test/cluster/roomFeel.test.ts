/**
 * What makes a séance feel alive, across two real nodes on one Redis and PostgreSQL: the
 * raw transport's roster replay (the existing frontend lists people from `user_joined`
 * alone) and the oracle taking its time, so `spirit_thinking` shows before the answer.
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { joinSocket, RawClient, sendWithAck, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { sharedPostgres } from '../support/hooks';

const wsUrl = (url: string) => url.replace(/^http/, 'ws');
const ORACLE_DELAY_MS = 600;

describe("cluster: roster replay and the oracle's delay", function () {
  this.timeout(60_000);
  let cluster: ClusterHandle;
  const open: Array<TestSocket | RawClient> = [];
  const track = <T extends TestSocket | RawClient>(c: T) => (open.push(c), c);

  before(async () => {
    cluster = await startCluster({ nodes: 2, nginx: false, postgres: await sharedPostgres(), env: { SPIRIT_ORACLE_DELAY_MS: String(ORACLE_DELAY_MS), MESSAGE_RATE_LIMIT: '1000' } });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => cluster?.stop());

  it('replays everyone present to a raw client after session_joined, itself included; Socket.IO gets the list only', async () => {
    const [n1, n2] = cluster.nodes;
    const session = await createSession(n1.url);
    const ann = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'ann', name: 'Ann' }));
    const bob = track(await RawClient.join(wsUrl(n2.url), session.id, { user_id: 'bob', name: 'Bob' }));
    await bob.inbox.waitForCount('user_joined', 2);
    const events = bob.inbox.events.map((e) => (e.event === 'user_joined' ? `user_joined:${e.data.id}` : e.event));
    expect(events).to.deep.equal(['session_joined', 'user_joined:ann', 'user_joined:bob']);
    const joined = bob.inbox.of('session_joined')[0];
    expect(bob.inbox.of('user_joined')).to.deep.equal(joined.users);

    // A Socket.IO client on the other node: the list in session_joined, no replay.
    const cleo = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'cleo', name: 'Cleo' }));
    expect(cleo.inbox.of('session_joined')[0].users.map((u: any) => u.id)).to.deep.equal(['ann', 'bob', 'cleo']);
    expect((await bob.inbox.waitFor('user_joined', (u) => u.id === 'cleo')).name).to.equal('Cleo');
    expect((await ann.inbox.waitFor('user_joined', (u) => u.id === 'cleo')).name).to.equal('Cleo');
    // Round trip through both nodes: anything Cleo could have been sent has arrived by now.
    await sendWithAck(cleo, { message: 'who is here?' });
    await cleo.inbox.waitFor('spirit_response');
    expect(cleo.inbox.of('user_joined')).to.deep.equal([]);
    expect(ann.inbox.of('user_joined').map((u) => u.id)).to.deep.equal(['bob', 'cleo']);
  });

  it('shows spirit_thinking, then answers after SPIRIT_ORACLE_DELAY_MS, on both transports and both nodes', async () => {
    const [n1, n2] = cluster.nodes;
    const session = await createSession(n1.url);
    const asker = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'asker', name: 'Asker' }));
    const raw = track(await RawClient.join(wsUrl(n2.url), session.id, { user_id: 'raw', name: 'Raw' }));
    const sio = track(await joinSocket(n2.url, { session_id: session.id, user_id: 'sio', name: 'Sio' }));

    const ack = await sendWithAck(asker, { message: 'Will it rain tomorrow?' });
    expect(ack.ok).to.equal(true);
    for (const client of [asker, raw, sio]) {
      const { inbox } = client;
      const answer = await inbox.waitFor('spirit_response', (r) => r.in_reply_to === ack.id, 5000);
      const question = inbox.of('message_received').find((m) => m.id === ack.id);
      const thoughtAt = inbox.arrivalOf('spirit_thinking', (t) => t.in_reply_to === ack.id);
      const answeredAt = inbox.arrivalOf('spirit_response', (r) => r.in_reply_to === ack.id);
      // Timer granularity on a loaded machine: allow a few ms early, never the old "same write".
      expect(answeredAt - thoughtAt, 'answer after thinking').to.be.at.least(ORACLE_DELAY_MS - 50);
      const made = Date.parse(answer.timestamp) - Date.parse(question.timestamp);
      expect(made, 'answer timestamp after the question').to.be.at.least(ORACLE_DELAY_MS - 5);
      expect(answer.message).to.be.a('string').and.not.empty;
      const order = inbox.events.filter((e) => ['message_received', 'spirit_thinking', 'spirit_response'].includes(e.event)).map((e) => e.event);
      expect(order).to.deep.equal(['message_received', 'spirit_thinking', 'spirit_response']);
    }

    // The raw sender too: its answer is also made after the delay.
    raw.send({ event: 'send_message', data: { message: 'And for me?' } });
    const mine = await raw.inbox.waitFor('message_received', (m) => m.user_id === 'raw');
    const answer = await asker.inbox.waitFor('spirit_response', (r) => r.in_reply_to === mine.id, 5000);
    expect(Date.parse(answer.timestamp) - Date.parse(mine.timestamp)).to.be.at.least(ORACLE_DELAY_MS - 5);
    const history = (await fetch(`${n2.url}/api/sessions/${session.id}/history`).then((r) => r.json())) as any;
    const stored = history.data.find((m: any) => m.id === answer.id);
    expect(stored.timestamp).to.equal(answer.timestamp);
  });
});
