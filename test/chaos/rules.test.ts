/**
 * The rules of "Order, resume and repair", each on its own, on a real 3-node cluster:
 * concurrent writers on three nodes get one gap-free seq; a message stored while Redis is
 * down reaches every node's clients, in order, once Redis is back; a join racing stored
 * messages neither loses nor repeats one (Socket.IO and raw, fresh and resumed).
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { readHistory } from '../../chaos/history';
import { joinSocket, RawClient, sendWithAck, type Inbox, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { waitForHealth } from '../support/health';
import { sharedPostgres } from '../support/hooks';

const wsUrl = (url: string) => url.replace(/^http/, 'ws');
const STORED = new Set(['message_received', 'spirit_response']);

/** The seqs one connection got, in arrival order: session_joined.messages, then live stored events. */
function seqStream(inbox: Inbox): number[] {
  const seqs: number[] = [];
  for (const e of inbox.events) {
    if (e.event === 'session_joined') for (const m of e.data.messages) seqs.push(m.seq);
    else if (STORED.has(e.event)) seqs.push(e.data.seq);
  }
  return seqs;
}

/** `from`, from+1, …, `to`. */
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Resolves once the connection has received a stored event with seq ≥ `seq`. */
function waitForSeq(inbox: Inbox, seq: number, timeoutMs: number): Promise<unknown> {
  return Promise.race([...STORED].map((event) => inbox.waitFor(event, (d) => d.seq >= seq, timeoutMs))).catch(() => {
    throw new Error(`seq ${seq} never arrived; got ${JSON.stringify(seqStream(inbox))}`);
  });
}

async function lastSeq(url: string, sessionId: string): Promise<number> {
  const { messages } = await readHistory(url, sessionId);
  return messages.reduce((top, m) => Math.max(top, m.seq ?? 0), 0);
}

describe('order, resume and repair (cluster rules)', function () {
  this.timeout(120_000);
  let cluster: ClusterHandle;
  const open: Array<TestSocket | RawClient> = [];
  const track = <T extends TestSocket | RawClient>(c: T) => (open.push(c), c);

  beforeEach(async () => {
    cluster = await startCluster({
      nodes: 3,
      postgres: await sharedPostgres(),
      env: { MESSAGE_RATE_LIMIT: '10000', SPIRIT_ORACLE_DELAY_MS: '0' },
    });
  });
  afterEach(async () => {
    while (open.length) open.pop()!.close();
    await cluster?.stop();
  });

  it('concurrent writers on three nodes get one gap-free seq, and every node delivers it in order', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const session = await createSession(n1.url);
    const a = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'a', name: 'A' }));
    const b = track(await joinSocket(n2.url, { session_id: session.id, user_id: 'b', name: 'B' }));
    const c = track(await RawClient.join(wsUrl(n3.url), session.id, { user_id: 'c', name: 'C' }));
    const d = track(await joinSocket(n3.url, { session_id: session.id, user_id: 'd', name: 'D' }));

    const PER_WRITER = 40;
    // Everyone fires at once, without waiting for an answer: the three nodes store concurrently.
    const acks = await Promise.all([
      ...range(1, PER_WRITER).map((i) => sendWithAck(a, { message: `a ${i}` }, 30_000)),
      ...range(1, PER_WRITER).map((i) => sendWithAck(b, { message: `b ${i}` }, 30_000)),
      ...range(1, PER_WRITER).map(async (i) => {
        c.send({ event: 'send_message', data: { message: `c ${i}` } });
        return { ok: true, seq: null };
      }),
    ]);
    expect(
      acks.every((x) => x.ok),
      JSON.stringify(acks.find((x) => !x.ok)),
    ).to.equal(true);
    const ackSeqs = acks.filter((x) => x.seq !== null).map((x) => x.seq);
    expect(new Set(ackSeqs).size, 'acknowledged seqs are distinct').to.equal(ackSeqs.length);

    // Each question and its answer are stored: 2 seqs per message.
    const total = 3 * PER_WRITER * 2;
    for (const client of [a, b, c, d]) await waitForSeq(client.inbox, total, 30_000);
    const { messages, pagedBy } = await readHistory(n2.url, session.id);
    expect(pagedBy).to.equal('after_seq');
    expect(messages.map((m) => m.seq)).to.deep.equal(range(1, total));
    for (const [name, client] of Object.entries({ a, b, c, d })) {
      expect(seqStream(client.inbox), `what ${name} received`).to.deep.equal(range(1, total));
    }
    // A participant's own messages keep the order it sent them in.
    const ofA = messages.filter((m) => m.user_id === 'a').map((m) => m.message);
    expect(ofA).to.deep.equal(range(1, PER_WRITER).map((i) => `a ${i}`));
  });

  it("messages stored while Redis is down reach every node's clients, in order, once Redis is back", async () => {
    const [n1, n2, n3] = cluster.nodes;
    const session = await createSession(n1.url);
    const writer = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'w', name: 'Writer' }));
    const listeners = {
      'sio on node-2': track(await joinSocket(n2.url, { session_id: session.id, user_id: 'l2', name: 'L2' })),
      'raw on node-2': track(await RawClient.join(wsUrl(n2.url), session.id, { user_id: 'r2', name: 'R2' })),
      'sio on node-3': track(await joinSocket(n3.url, { session_id: session.id, user_id: 'l3', name: 'L3' })),
      'raw on node-3': track(await RawClient.join(wsUrl(n3.url), session.id, { user_id: 'r3', name: 'R3' })),
    };
    const before = await sendWithAck(writer, { message: 'before the outage' });
    for (const l of Object.values(listeners)) await waitForSeq(l.inbox, before.seq + 1, 10_000);

    await cluster.redis.stop();
    await waitForHealth(n1.url, (body) => body.redis === 'disconnected', 15_000);
    const during = [];
    for (let i = 1; i <= 5; i++) {
      const ack = await sendWithAck(writer, { message: `while Redis is down ${i}` }, 10_000);
      expect(ack.ok, JSON.stringify(ack)).to.equal(true);
      during.push(ack);
    }
    const last = during.at(-1).seq + 1; // the last answer
    // Nothing new is said after Redis returns: the nodes must find what they missed themselves.
    await cluster.redis.start();
    for (const node of cluster.nodes) await waitForHealth(node.url, (_b, status) => status === 200, 20_000);
    for (const [name, l] of Object.entries(listeners)) {
      await waitForSeq(l.inbox, last, 20_000).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}`);
      });
    }
    expect(await lastSeq(n1.url, session.id)).to.equal(last);
    for (const [name, l] of Object.entries(listeners)) {
      expect(seqStream(l.inbox), name).to.deep.equal(range(1, last));
    }
    expect(seqStream(writer.inbox)).to.deep.equal(range(1, last));
  });

  for (const transport of ['Socket.IO', 'raw'] as const) {
    it(`${transport}: joins racing stored messages neither lose nor repeat one (fresh joins and resumes)`, async () => {
      const [n1, n2, n3] = cluster.nodes;
      const session = await createSession(n1.url, { max_users: 12 });
      const writer = track(await joinSocket(n1.url, { session_id: session.id, user_id: 'w', name: 'Writer' }));
      let acked = 0;
      let writing = true;
      const MESSAGES = 400;
      // A steady stream of stored messages from node-1 while the others take joins.
      const writes = (async () => {
        for (let i = 1; writing && i <= MESSAGES; i++) {
          const ack = await sendWithAck(writer, { message: `racing ${i}` }, 10_000);
          if (ack.ok) acked = ack.seq;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();

      const JOINS = 10;
      type Joined = { inbox: Inbox; lastSeqSent: number | null; close: () => void };
      const joined: Joined[] = [];
      try {
        for (let i = 0; i < JOINS; i++) {
          const node = i % 2 === 0 ? n2 : n3;
          // Half resume from what was acknowledged a moment ago, half join fresh.
          const lastSeqSent = i % 2 === 0 ? acked : null;
          const identity = { user_id: `j${i}`, name: `Joiner ${i}`, ...(lastSeqSent !== null ? { last_seq: lastSeqSent } : {}) };
          if (transport === 'Socket.IO') {
            const s = track(await joinSocket(node.url, { session_id: session.id, ...identity }));
            joined.push({ inbox: s.inbox, lastSeqSent, close: () => s.close() });
          } else {
            const r = track(await RawClient.join(wsUrl(node.url), session.id, identity));
            joined.push({ inbox: r.inbox, lastSeqSent, close: () => r.close() });
          }
          await new Promise((resolve) => setTimeout(resolve, 30 + (i % 3) * 20));
        }
      } finally {
        writing = false;
        await writes;
      }
      const last = await lastSeq(n1.url, session.id);
      expect(last, 'messages were stored during the joins').to.be.above(JOINS * 2);
      for (const [i, j] of joined.entries()) {
        await waitForSeq(j.inbox, last, 20_000);
        const got = seqStream(j.inbox);
        const hello = await j.inbox.waitFor('session_joined');
        if (j.lastSeqSent !== null) {
          expect(hello.resumed, `joiner ${i} resumed`).to.equal(true);
          expect(got, `joiner ${i} (resumed after ${j.lastSeqSent})`).to.deep.equal(range(j.lastSeqSent + 1, last));
        } else {
          expect(hello.resumed, `joiner ${i} resumed`).to.equal(false);
          expect(got, `joiner ${i} (fresh)`).to.deep.equal(range(got[0], last));
        }
      }
    });
  }
});
