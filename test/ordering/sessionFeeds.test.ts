/**
 * The per-node ordering of stored messages, on in-memory storage: in order at once, a hole
 * held and filled (live when the missing one arrives in time, else from the storage), repeats
 * dropped, what cannot be placed read from the storage, and a join that starts listening
 * exactly where its history ends.
 */
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { createLogger } from '../../server/logger';
import { GAP_GRACE_MS, isOrderedEvent, SessionFeeds, type Arrival } from '../../server/ordering/sessionFeeds';
import { messageReceived } from '../../server/services/messageEvents';
import { MemoryMessageStore, MemorySessionStore } from '../../server/storage/memory';

const logger = createLogger(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal' }));
const author = { id: 'a', name: 'Ada', joined_at: new Date().toISOString() };

async function setup() {
  const store = new MemoryMessageStore();
  const session = await new MemorySessionStore().create({ name: 'S', max_users: 6 });
  const delivered: Array<{ event: string; seq: number }> = [];
  const held = new Set<string>();
  const counts = { repaired: 0, timings: 0 };
  const feeds = new SessionFeeds(
    {
      hold: async (sessionId) => void held.add(sessionId),
      release: (sessionId) => void held.delete(sessionId),
      deliver: (_sessionId, event, data) => void delivered.push({ event, seq: data.seq }),
    },
    store,
    logger,
    { gapRepaired: () => (counts.repaired += 1), delivered: () => (counts.timings += 1) },
  );
  /** Stores a message and returns its event as it reaches the node. */
  const store1 = async (text: string): Promise<Arrival> => {
    const message = await store.storeChat(session.id, author, text);
    return { sessionId: session.id, seq: message.seq, event: 'message_received', data: messageReceived({ ...message, is_spirit: false }), arrived: performance.now() };
  };
  const seqs = () => delivered.map((d) => d.seq);
  return { store, session, feeds, delivered, held, counts, store1, seqs };
}

const waitFor = async (what: string, check: () => boolean, timeoutMs = 2_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('session feeds (ordering of stored messages on a node)', () => {
  it('delivers the next seq at once, and leaves other events and other sessions alone', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    expect(w.held.has(w.session.id)).to.equal(true);
    await w.feeds.settle(w.session.id, 0);
    const arrivals = [];
    for (const text of ['one', 'two', 'three']) arrivals.push(await w.store1(text));
    for (const arrival of arrivals) expect(w.feeds.route(arrival)).to.equal(true);
    expect(w.seqs()).to.deep.equal([1, 2, 3]);
    expect(isOrderedEvent('spirit_thinking')).to.equal(false);
    expect(w.feeds.route({ ...arrivals[0], sessionId: 'other' })).to.equal(false);
    expect(w.counts).to.deep.equal({ repaired: 0, timings: 3 });
  });

  it('holds an event that comes early and delivers it after the one it overtook, without reading storage', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    await w.feeds.settle(w.session.id, 0);
    const [one, two, three] = [await w.store1('one'), await w.store1('two'), await w.store1('three')];
    w.feeds.route(one);
    w.feeds.route(three);
    expect(w.seqs()).to.deep.equal([1]);
    w.feeds.route(two);
    expect(w.seqs()).to.deep.equal([1, 2, 3]);
    expect(w.counts.repaired).to.equal(0);
  });

  it('fills a hole that stays open past the grace from storage, in order, and counts the repair (one hole of two messages)', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    await w.feeds.settle(w.session.id, 0);
    const one = await w.store1('one');
    await w.store1('lost between nodes');
    await w.store1('lost too');
    const four = await w.store1('four');
    w.feeds.route(one);
    const started = Date.now();
    w.feeds.route(four);
    expect(w.seqs()).to.deep.equal([1]);
    await waitFor('the repair', () => w.delivered.length === 4);
    expect(Date.now() - started).to.be.at.least(GAP_GRACE_MS - 5);
    expect(w.seqs()).to.deep.equal([1, 2, 3, 4]);
    expect(w.counts.repaired).to.equal(1);
  });

  it('drops a seq it already delivered (a repeat, or a live copy of a repaired message)', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    await w.feeds.settle(w.session.id, 0);
    const one = await w.store1('one');
    w.feeds.route(one);
    w.feeds.route(one);
    expect(w.seqs()).to.deep.equal([1]);
  });

  it('reads the session from storage when an ordered event has no seq (a node of the previous release)', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    await w.feeds.settle(w.session.id, 0);
    const arrival = await w.store1('from an old node');
    expect(w.feeds.route({ ...arrival, seq: null })).to.equal(true);
    await waitFor('the repair', () => w.delivered.length === 1);
    expect(w.seqs()).to.deep.equal([1]);
    w.feeds.unreadable(w.session.id);
    await w.store1('announced in a format this node cannot read');
    w.feeds.unreadable(w.session.id);
    await waitFor('the repair', () => w.delivered.length === 2);
    expect(w.seqs()).to.deep.equal([1, 2]);
  });

  it('lets a join start listening exactly where its history ends', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    await w.feeds.settle(w.session.id, 0);
    const [one, two] = [await w.store1('one'), await w.store1('two')];
    w.feeds.route(one);
    w.feeds.route(two);
    // A joiner whose history read ended at 1: it is given 2 with its welcome.
    await w.feeds.settle(w.session.id, 1);
    expect(w.feeds.since(w.session.id, 1)?.map((m) => [m.seq, m.message])).to.deep.equal([[2, 'two']]);
    // A joiner whose history holds 3, which this node has not delivered yet: it waits for it.
    const three = await w.store1('three');
    let settled = false;
    const settling = w.feeds.settle(w.session.id, 3).then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).to.equal(false);
    w.feeds.route(three);
    await settling;
    expect(w.feeds.since(w.session.id, 3)).to.deep.equal([]);
    // ...and when the live event never comes, the storage has it.
    await w.store1('four');
    await w.feeds.settle(w.session.id, 4);
    expect(w.seqs()).to.deep.equal([1, 2, 3, 4]);
  });

  it('starts a session new to this node where the first join read history, holding what arrived meanwhile', async () => {
    const w = await setup();
    await w.store1('before anyone here');
    await w.feeds.open(w.session.id);
    const two = await w.store1('stored while the join read history');
    w.feeds.route(two);
    expect(w.seqs()).to.deep.equal([]);
    await w.feeds.settle(w.session.id, 1);
    expect(w.seqs()).to.deep.equal([2]);
    expect(w.feeds.since(w.session.id, 1)?.map((m) => m.seq)).to.deep.equal([2]);
  });

  it('lets go of the session when its last holder closes', async () => {
    const w = await setup();
    await w.feeds.open(w.session.id);
    await w.feeds.open(w.session.id);
    w.feeds.close(w.session.id);
    expect(w.held.has(w.session.id)).to.equal(true);
    w.feeds.close(w.session.id);
    expect(w.held.has(w.session.id)).to.equal(false);
    expect(w.feeds.route(await w.store1('nobody here'))).to.equal(false);
  });
});
