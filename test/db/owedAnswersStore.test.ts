/**
 * The message store's owed answers, the same contract on the in-memory store, SQLite and
 * PostgreSQL: a question stored as owed is listed with its owner until its answer is stored,
 * only its owner can store that answer (once), a takeover and a give-up are conditional on the
 * owner, and two nodes racing for one question store one answer between them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { createDatabase, type Database } from '../../server/db';
import type { ParticipantView } from '../../server/events';
import { createLogger } from '../../server/logger';
import { memoryStores } from '../../server/storage/memory';
import type { Stores } from '../../server/storage/ports';
import { sequelizeStores } from '../../server/storage/sequelize';
import { sharedPostgres } from '../support/hooks';

const backends: Array<{ name: string; open: () => Promise<{ stores: Stores; close: () => Promise<void> }> }> = [
  { name: 'memory', open: async () => ({ stores: memoryStores(), close: async () => undefined }) },
  { name: 'SQLite', open: () => openDatabase(`sqlite:${path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seance-owed-')), 'owed.db')}`) },
  { name: 'PostgreSQL', open: async () => openDatabase((await sharedPostgres()).url) },
];

async function openDatabase(url: string): Promise<{ stores: Stores; close: () => Promise<void> }> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', DATABASE_URL: url, JWT_SECRET: 'owed-answers-store-test-secret-0123456789' });
  const db: Database = createDatabase(config, createLogger(config));
  await db.migrate();
  return { stores: sequelizeStores(db, 'test-node'), close: () => db.close() };
}

const asker: ParticipantView = { id: 'asker', name: 'Asker', joined_at: new Date().toISOString() };

for (const backend of backends) {
  describe(`owed answers in the ${backend.name} message store`, () => {
    let stores: Stores;
    let close: () => Promise<void>;
    let sessionId: string;

    before(async () => ({ stores, close } = await backend.open()));
    after(() => close());
    beforeEach(async () => {
      sessionId = (await stores.sessions.create({ name: 'owed', max_users: 6 })).id;
    });

    const ours = async () => (await stores.messages.owed({ limit: 1000 })).filter((q) => q.session_id === sessionId);

    it('lists a question stored as owed, with its owner, until its owner stores the answer (once)', async () => {
      const { messages } = stores;
      const plain = await messages.storeChat(sessionId, asker, 'nobody waits for this');
      const owed = await messages.storeChat(sessionId, asker, 'Are you there?', { owesAnswer: 'node-a' });
      expect(await ours()).to.deep.equal([{ id: owed.id, seq: owed.seq, session_id: sessionId, user_name: 'Asker', message: 'Are you there?', timestamp: owed.timestamp, owner: 'node-a' }]);
      expect((await messages.owed({ owner: 'node-b', limit: 10 })).filter((q) => q.session_id === sessionId)).to.deep.equal([]);

      const answer = await messages.storeOwedAnswer(sessionId, owed.id, 'node-a', 'YES');
      expect(answer).to.include({ seq: owed.seq + 1, message: 'YES', is_spirit: true });
      expect(Date.parse(answer!.timestamp)).to.be.at.least(Date.parse(owed.timestamp));
      expect(await ours()).to.deep.equal([]);
      expect(await messages.storeOwedAnswer(sessionId, owed.id, 'node-a', 'YES again')).to.equal(null);
      expect(await messages.answerTo(sessionId, owed.id)).to.deep.equal(answer);
      const history = await messages.after(sessionId, 0, 10);
      expect(history.map((m) => [m.id, m.in_reply_to])).to.deep.equal([
        [plain.id, null],
        [owed.id, null],
        [answer!.id, owed.id],
      ]);
    });

    it('stores nothing for a node that does not owe the answer; a takeover moves the debt only from its owner', async () => {
      const { messages } = stores;
      const owed = await messages.storeChat(sessionId, asker, 'Who is there?', { owesAnswer: 'node-a' });
      expect(await messages.storeOwedAnswer(sessionId, owed.id, 'node-b', 'NO')).to.equal(null);
      expect(await messages.takeOver(owed.id, 'node-c', 'node-b')).to.equal(false);
      expect(await messages.takeOver(owed.id, 'node-a', 'node-b')).to.equal(true);
      expect((await ours()).map((q) => q.owner)).to.deep.equal(['node-b']);
      // The node that heard it comes back too late: its answer is not stored.
      expect(await messages.storeOwedAnswer(sessionId, owed.id, 'node-a', 'NO')).to.equal(null);
      expect(await messages.storeOwedAnswer(sessionId, owed.id, 'node-b', 'NEVER')).to.include({ seq: owed.seq + 1, message: 'NEVER' });
      expect((await messages.after(sessionId, 0, 10)).map((m) => m.message)).to.deep.equal(['Who is there?', 'NEVER']);
    });

    it('gives a question up only for its owner: the debt is cleared and no answer can follow', async () => {
      const { messages } = stores;
      const owed = await messages.storeChat(sessionId, asker, 'Will it rain?', { owesAnswer: 'node-a' });
      expect(await messages.giveUp(owed.id, 'node-b')).to.equal(false);
      expect(await messages.giveUp(owed.id, 'node-a')).to.equal(true);
      expect(await ours()).to.deep.equal([]);
      expect(await messages.storeOwedAnswer(sessionId, owed.id, 'node-a', 'YES')).to.equal(null);
      expect(await messages.latestSeq(sessionId)).to.equal(owed.seq);
    });

    it('keeps every owner of questions stored together (one batch) and answers them with seqs after each', async () => {
      const { messages } = stores;
      const asked = await Promise.all(Array.from({ length: 20 }, (_, i) => messages.storeChat(sessionId, asker, `q${i}`, { owesAnswer: `node-${i % 2}` })));
      const listed = await ours();
      expect(listed.map((q) => [q.id, q.owner])).to.deep.equal(asked.map((q, i) => [q.id, `node-${i % 2}`]));
      const answers = await Promise.all(asked.map((q, i) => messages.storeOwedAnswer(sessionId, q.id, `node-${i % 2}`, `a${i}`)));
      for (const [i, a] of answers.entries()) expect(a!.seq).to.be.above(asked[i].seq);
      const seqs = (await messages.after(sessionId, 0, 100)).map((m) => m.seq);
      expect(seqs).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    });

    it('two nodes racing for the same questions (one answering, one taking over) store one answer each', async () => {
      const { messages } = stores;
      const asked = await Promise.all(Array.from({ length: 30 }, (_, i) => messages.storeChat(sessionId, asker, `race ${i}`, { owesAnswer: 'node-a' })));
      const outcomes = await Promise.all(
        asked.map(async (q) => {
          const [mine, taken] = await Promise.all([messages.storeOwedAnswer(sessionId, q.id, 'node-a', 'from a'), messages.takeOver(q.id, 'node-a', 'node-b')]);
          const theirs = taken ? await messages.storeOwedAnswer(sessionId, q.id, 'node-b', 'from b') : null;
          return [mine !== null, theirs !== null];
        }),
      );
      for (const [mine, theirs] of outcomes) expect(mine !== theirs, 'exactly one of the two stored').to.equal(true);
      const history = await messages.after(sessionId, 0, 100);
      const answered = history.filter((m) => m.is_spirit).map((m) => m.in_reply_to);
      expect(answered.sort((a, b) => a! - b!)).to.deep.equal(asked.map((q) => q.id));
      expect(history.map((m) => m.seq)).to.deep.equal(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(await ours()).to.deep.equal([]);
    });
  });
}
