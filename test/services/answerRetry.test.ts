/**
 * The bounds of an answer's store retried through a database outage, on the in-memory store
 * with failures injected: one attempt while the database is up, retries until it is back,
 * a bounded time and a bounded number of waiting answers, and no second copy of an answer
 * whose failed attempt was stored after all. The real outage is in test/cluster/pendingWork.
 */
import bunyan from 'bunyan';
import { expect } from 'chai';
import { AnswerRetry } from '../../server/services/answerRetry';
import { MemoryMessageStore } from '../../server/storage/memory';

const SESSION = '00000000-0000-4000-8000-000000000001';

/** What pg says when PostgreSQL is not there. */
function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { name: 'SequelizeConnectionRefusedError' });
}

/** A store whose next `failures` spirit stores fail as a database outage would (the last `storedAnyway` of them after storing). */
class FlakyStore extends MemoryMessageStore {
  attempts = 0;
  constructor(
    public failures: number,
    private readonly storedAnyway = 0,
  ) {
    super();
  }
  override async storeOwedAnswer(sessionId: string, questionId: number, owner: string, text: string) {
    this.attempts += 1;
    if (this.failures > 0) {
      this.failures -= 1;
      if (this.failures < this.storedAnyway) await super.storeOwedAnswer(sessionId, questionId, owner, text);
      throw refused();
    }
    return super.storeOwedAnswer(sessionId, questionId, owner, text);
  }
}

const NODE = 'node-1';

/** Questions owed by NODE, as the rooms store them; resolves with their ids. */
async function ask(store: MemoryMessageStore, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push((await store.storeChat(SESSION, { id: 'u', name: 'U', joined_at: new Date().toISOString() }, `q${i}`, { owesAnswer: NODE })).id);
  return ids;
}

function logs() {
  const ring = new bunyan.RingBuffer({ limit: 50 });
  const logger = bunyan.createLogger({ name: 'test', streams: [{ type: 'raw', stream: ring, level: 'info' }] });
  return { logger, lines: ring.records as Array<{ level: number; msg: string }> };
}

describe('AnswerRetry', () => {
  it('stores at once while the database is up: one attempt, nothing logged', async () => {
    const store = new FlakyStore(0);
    const { logger, lines } = logs();
    const [q] = await ask(store, 1);
    const stored = await new AnswerRetry(store, logger).store(SESSION, q, NODE, 'YES');
    expect(stored).to.include({ message: 'YES', is_spirit: true });
    expect(store.attempts).to.equal(1);
    expect(lines).to.deep.equal([]);
  });

  it('retries through an outage, logging it once when it starts and once when it ends', async () => {
    const store = new FlakyStore(4);
    const { logger, lines } = logs();
    const retry = new AnswerRetry(store, logger, { windowMs: 10_000 });
    const [q1, q2] = await ask(store, 2);
    const answers = await Promise.all([retry.store(SESSION, q1, NODE, 'YES'), retry.store(SESSION, q2, NODE, 'NO')]);
    expect(answers.map((a) => a?.message)).to.deep.equal(['YES', 'NO']);
    expect(store.attempts).to.be.above(4);
    expect(lines.map((l) => l.msg)).to.deep.equal(['spirit answers cannot be stored: retrying them until the database is back', 'spirit answers stored again']);
    expect(retry.size).to.equal(0);
  });

  it('does not store an answer twice when a failed attempt was stored after all', async () => {
    const store = new FlakyStore(1, 1);
    const { logger } = logs();
    const [q] = await ask(store, 1);
    await new AnswerRetry(store, logger, { windowMs: 10_000 }).store(SESSION, q, NODE, 'NEVER');
    expect((await store.recent(SESSION, 10)).map((m) => m.message)).to.deep.equal(['q0', 'NEVER']);
  });

  it('stores nothing once another node owes the answer (it took the question over)', async () => {
    const store = new FlakyStore(0);
    const [q] = await ask(store, 1);
    expect(await store.takeOver(q, NODE, 'node-2')).to.equal(true);
    expect(await new AnswerRetry(store, logs().logger).store(SESSION, q, NODE, 'YES')).to.equal(null);
    expect((await store.recent(SESSION, 10)).map((m) => m.message)).to.deep.equal(['q0']);
  });

  it('gives up after its window, and at once when too many answers already wait', async () => {
    const store = new FlakyStore(1_000_000);
    const { logger, lines } = logs();
    const retry = new AnswerRetry(store, logger, { windowMs: 300, maxWaiting: 1 });
    const started = Date.now();
    const [q1, q2] = await ask(store, 2);
    const waiting = retry.store(SESSION, q1, NODE, 'YES').then(
      () => 'stored',
      () => 'gave up',
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(retry.size).to.equal(1);
    const attemptsBefore = store.attempts;
    expect(await retry.store(SESSION, q2, NODE, 'NO').catch((err: Error) => err.name)).to.equal('SequelizeConnectionRefusedError');
    expect(store.attempts).to.equal(attemptsBefore + 1);
    expect(await waiting).to.equal('gave up');
    expect(Date.now() - started).to.be.within(250, 2_000);
    expect(lines.at(-1)).to.include({ msg: 'spirit answers lost: the database stayed away too long' });
  });

  it('does not retry what is not an outage (a bad statement fails at once)', async () => {
    const store = new MemoryMessageStore();
    store.storeOwedAnswer = async () => {
      throw new Error('insert or update on table "messages" violates foreign key constraint');
    };
    const { logger } = logs();
    const err = await new AnswerRetry(store, logger).store(SESSION, 1, NODE, 'YES').catch((e: Error) => e);
    expect((err as Error).message).to.match(/foreign key/);
  });
});
