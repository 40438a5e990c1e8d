/**
 * Resume (docs/protocol.md: Order, resume and repair) on one node with real PostgreSQL: a join with
 * `last_seq` gets every message after it and live events continue at the next seq, on both
 * transports; the contract's limits make an ordinary join; a reconnect of a participant still
 * present is no new join; a socket.io-client whose `auth` is a function resumes by itself; and
 * a message stored while a join is under way is neither lost nor repeated.
 */
import { expect } from 'chai';
import { QueryTypes } from 'sequelize';
import { joinSocket, RawClient, sendWithAck, seqsSeen, socketClient, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

describe('resume with last_seq', function () {
  this.timeout(30_000);
  let server: TestServer;
  const open: Array<TestSocket | RawClient> = [];
  const track = <T extends TestSocket | RawClient>(c: T): T => (open.push(c), c);

  before(async () => {
    server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '100000' } });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  after(async () => server?.close());

  /** A speaker sends `count` messages (each with its spirit answer); resolves with the last seq. */
  async function chat(speaker: TestSocket, count: number, label = 'm'): Promise<number> {
    let last = 0;
    for (let i = 0; i < count; i++) last = (await sendWithAck(speaker, { message: `${label}${i}` })).seq;
    return last + 1; // the spirit's answer follows each question
  }

  it('gives a Socket.IO resume every message after last_seq, then the live events at the next seq', async () => {
    const session = await createSession(server.url);
    const speaker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
    const phone = track(await joinSocket(server.url, { session_id: session.id, user_id: 'phone', name: 'Phone' }));
    const seen = await chat(speaker, 2);
    await phone.inbox.waitFor('spirit_response', (m) => m.seq === seen);
    phone.close();
    const last = await chat(speaker, 3, 'missed');
    const back = track(await joinSocket(server.url, { session_id: session.id, user_id: 'phone', name: 'Phone', last_seq: seen }));
    const welcome = await back.inbox.waitFor('session_joined');
    expect(welcome.resumed).to.equal(true);
    expect(welcome.messages.map((m: any) => m.seq)).to.deep.equal([5, 6, 7, 8, 9, 10]);
    expect(welcome.messages[0]).to.include({ message: 'missed0', is_spirit: false });
    expect(last).to.equal(10);
    await chat(speaker, 1, 'live');
    await back.inbox.waitFor('spirit_response', (m) => m.seq === 12);
    expect(seqsSeen(back.inbox)).to.deep.equal([5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('gives a raw resume (last_seq in the first frame, also inside join_session) the same', async () => {
    const session = await createSession(server.url);
    const speaker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
    await chat(speaker, 3);
    const plain = track(await RawClient.join(server.wsUrl, session.id, { user_id: 'raw', name: 'Raw', last_seq: 4 }));
    const wrapped = track(await RawClient.join(server.wsUrl, session.id, { event: 'join_session', data: { user_id: 'raw2', name: 'Raw 2', last_seq: 2 } }));
    const [a, b] = [await plain.inbox.waitFor('session_joined'), await wrapped.inbox.waitFor('session_joined')];
    expect([a.resumed, a.messages.map((m: any) => m.seq)]).to.deep.equal([true, [5, 6]]);
    expect([b.resumed, b.messages.map((m: any) => m.seq)]).to.deep.equal([true, [3, 4, 5, 6]]);
    await chat(speaker, 1, 'live');
    for (const client of [plain, wrapped]) await client.inbox.waitFor('spirit_response', (m) => m.seq === 8);
    expect(seqsSeen(plain.inbox)).to.deep.equal([5, 6, 7, 8]);
    expect(seqsSeen(wrapped.inbox)).to.deep.equal([3, 4, 5, 6, 7, 8]);
  });

  it('resumes with nothing missed (last_seq = the latest) and with last_seq 0 (everything)', async () => {
    const session = await createSession(server.url);
    const speaker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
    await chat(speaker, 2);
    const upToDate = await (await joinSocket(server.url, { session_id: session.id, name: 'A', last_seq: 4 })).inbox.waitFor('session_joined');
    expect([upToDate.resumed, upToDate.messages]).to.deep.equal([true, []]);
    const fromStart = await (await joinSocket(server.url, { session_id: session.id, name: 'B', last_seq: 0 })).inbox.waitFor('session_joined');
    expect([fromStart.resumed, fromStart.messages.map((m: any) => m.seq)]).to.deep.equal([true, [1, 2, 3, 4]]);
  });

  for (const [label, lastSeq] of [
    ['negative', -1],
    ['not an integer', 1.5],
    ['a string', '2'],
    ['beyond the latest seq', 5],
    ['null', null],
  ] as const) {
    it(`makes an ordinary join of a last_seq that is ${label}`, async () => {
      const session = await createSession(server.url);
      const speaker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
      await chat(speaker, 2);
      const joined = track(await joinSocket(server.url, { session_id: session.id, name: 'C', last_seq: lastSeq }));
      const welcome = await joined.inbox.waitFor('session_joined');
      expect(welcome.resumed).to.equal(false);
      expect(welcome.messages.map((m: any) => m.seq)).to.deep.equal([1, 2, 3, 4]);
    });
  }

  it('makes an ordinary join (the last 50) of a resume that missed more than 1,000 messages, and resumes one that missed exactly 1,000', async () => {
    const session = await createSession(server.url);
    // 1,060 messages stored the way any node stores them (the database numbers them).
    await server.db.sequelize.query(
      "INSERT INTO messages (session_id, user_id, user_name, text, is_spirit, timestamp) SELECT $1, 'old', 'Old', 'm' || n, false, now() FROM generate_series(1, 1060) AS n",
      { bind: [session.id], type: QueryTypes.INSERT },
    );
    const tooFar = track(await joinSocket(server.url, { session_id: session.id, name: 'D', last_seq: 59 }));
    const ordinary = await tooFar.inbox.waitFor('session_joined');
    expect(ordinary.resumed).to.equal(false);
    expect(ordinary.messages.map((m: any) => m.seq)).to.deep.equal(Array.from({ length: 50 }, (_, i) => 1011 + i));
    const justEnough = track(await joinSocket(server.url, { session_id: session.id, name: 'E', last_seq: 60 }));
    const resumed = await justEnough.inbox.waitFor('session_joined');
    expect(resumed.resumed).to.equal(true);
    expect(resumed.messages).to.have.length(1000);
    expect(resumed.messages[0].seq).to.equal(61);
  });

  it('does not announce a resume of a participant who is still present (a reconnect)', async () => {
    const session = await createSession(server.url);
    const watcher = track(await joinSocket(server.url, { session_id: session.id, user_id: 'watcher', name: 'Watcher' }));
    const first = track(await joinSocket(server.url, { session_id: session.id, user_id: 'flaky', name: 'Flaky' }));
    await watcher.inbox.waitFor('user_joined', (u) => u.id === 'flaky');
    // The new connection arrives before the server noticed the old one is gone (with the token it was given).
    const { token } = first.inbox.of('session_joined')[0];
    const again = track(await joinSocket(server.url, { session_id: session.id, user_id: 'flaky', name: 'Flaky', last_seq: 0, token }));
    expect((await again.inbox.waitFor('session_joined')).resumed).to.equal(true);
    first.close();
    await sendWithAck(watcher, { message: 'still here?' });
    await again.inbox.waitFor('message_received');
    expect(watcher.inbox.of('user_joined').filter((u) => u.id === 'flaky')).to.have.length(1);
    expect(watcher.inbox.of('user_left')).to.deep.equal([]);
  });

  it('resumes by itself on every reconnect when socket.io-client is given auth as a function', async () => {
    const session = await createSession(server.url);
    const speaker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
    let lastSeq: number | undefined;
    const client = track(
      socketClient(
        server.url,
        {},
        {
          reconnection: true,
          reconnectionDelay: 50,
          reconnectionDelayMax: 100,
          auth: (cb: (auth: object) => void) => cb({ session_id: session.id, user_id: 'mobile', name: 'Mobile', ...(lastSeq === undefined ? {} : { last_seq: lastSeq }) }),
        },
      ),
    );
    client.on('message_received', (m: { seq: number }) => (lastSeq = m.seq));
    client.on('spirit_response', (m: { seq: number }) => (lastSeq = m.seq));
    client.on('session_joined', (w: { messages: Array<{ seq: number }> }) => (lastSeq = w.messages.at(-1)?.seq ?? lastSeq));
    await client.inbox.waitFor('session_joined');
    await chat(speaker, 1);
    await client.inbox.waitFor('spirit_response', (m) => m.seq === 2);
    for (let drop = 1; drop <= 2; drop++) {
      // The transport drops (a phone losing its network); the client reconnects by itself.
      client.io.engine.close();
      await client.inbox.waitFor('disconnect', () => true);
      await chat(speaker, 1, `while away ${drop}`);
      const welcome = await client.inbox.waitFor('session_joined', (w) => w.resumed === true && w.messages.some((m: any) => m.message === `while away ${drop}0`));
      expect(welcome.messages.map((m: any) => m.seq)).to.deep.equal([1 + drop * 2, 2 + drop * 2]);
      client.inbox.events.splice(0, client.inbox.events.length);
    }
  });

  for (const during of [1, 12]) {
    // 12 exchanges are more than a node keeps at hand for joins: the join reads the rest from the database.
    it(`neither loses nor repeats ${during === 1 ? 'a message' : `${during} messages`} stored while a join is under way`, async () => {
      const session = await createSession(server.url);
      const speaker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'speaker', name: 'Speaker' }));
      await chat(speaker, 1);
      // The join reads history, then waits on the users table, which a transaction holds.
      const blocker = await server.db.sequelize.transaction();
      await server.db.sequelize.query('LOCK TABLE users IN EXCLUSIVE MODE', { transaction: blocker });
      const joining = socketClient(server.url, { session_id: session.id, user_id: 'late', name: 'Late' });
      track(joining);
      await waitForLock(server);
      await chat(speaker, during, 'during the join');
      await blocker.commit();
      await joining.inbox.waitFor('session_joined');
      await chat(speaker, 1, 'after');
      const last = 2 + during * 2 + 2;
      await joining.inbox.waitFor('spirit_response', (m) => m.seq === last);
      expect(seqsSeen(joining.inbox)).to.deep.equal(Array.from({ length: last }, (_, i) => i + 1));
    });
  }
});

/** Until a statement waits for a lock (the join's, blocked on the users table). */
async function waitForLock(server: TestServer): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [row] = await server.db.sequelize.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'", { type: QueryTypes.SELECT });
    if (Number(row.n) > 0) return;
    if (Date.now() > deadline) throw new Error('the join never waited for the lock');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
