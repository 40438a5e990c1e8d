/**
 * The batched message writer on both dialects: everything asked for in one tick is stored,
 * ids and seqs come back to the right callers in order, seqs are 1, 2, 3, … per session, and
 * a spirit answer stored with its question names the question's id.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { QueryTypes, Sequelize } from 'sequelize';
import { loadConfig } from '../../config';
import { createDatabase, type Database } from '../../server/db';
import { createLogger } from '../../server/logger';
import { MessageWriter, type NewMessage, type StoredRef } from '../../server/storage/sequelize/messageWriter';
import { sharedPostgres } from '../support/hooks';

const dialects: Array<{ name: string; url: () => Promise<string> }> = [
  { name: 'PostgreSQL', url: async () => (await sharedPostgres()).url },
  { name: 'SQLite', url: async () => `sqlite:${path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seance-writer-')), 'writer.db')}` },
];

for (const dialect of dialects) {
  describe(`message writer on ${dialect.name}`, () => {
    let db: Database;
    let writer: MessageWriter;
    let sessionId: string;
    const statements: string[] = [];

    before(async () => {
      const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', JWT_SECRET: 'db-test-secret-0123456789abcdef0123456789', DATABASE_URL: await dialect.url() });
      db = createDatabase(config, createLogger(config));
      await db.migrate();
      // Sequelize reports every statement it sends: the batches are counted from here.
      (db.sequelize as unknown as { options: { logging: (sql: string) => void } }).options.logging = (sql: string) => {
        if (sql.includes('seance:message-batch')) statements.push(sql);
      };
      writer = new MessageWriter(db.sequelize, db.models.Message);
    });
    after(() => db.close());
    beforeEach(async () => {
      statements.length = 0;
      sessionId = randomUUID();
      await db.models.Session.create({ id: sessionId, name: 'writer', max_users: 6, is_active: true, created_at: new Date() });
    });

    const question = (n: number): NewMessage => ({
      session_id: sessionId,
      user_id: `u${n % 3}`,
      user_name: `User ${n % 3}`,
      text: `question ${n}`,
      is_spirit: false,
      in_reply_to: null,
      timestamp: new Date(),
    });
    const answer = (n: number) => ({ session_id: sessionId, user_id: null, user_name: null, text: `answer ${n}`, is_spirit: true, timestamp: new Date() });

    /** Statements that stored this session's rows: PostgreSQL tells by transaction id (each statement commits alone), SQLite by Sequelize's log. */
    async function statementCount(): Promise<number> {
      if (dialect.name !== 'PostgreSQL') return statements.length;
      const [row] = await db.sequelize.query<{ n: string }>('SELECT count(DISTINCT xmin::text) AS n FROM messages WHERE session_id = $1', { bind: [sessionId], type: QueryTypes.SELECT });
      return Number(row.n);
    }

    async function stored() {
      return db.sequelize.query<{ id: number; seq: number; text: string; is_spirit: boolean; in_reply_to: number | null; user_id: string | null }>(
        'SELECT id, seq, text, is_spirit, in_reply_to, user_id FROM messages WHERE session_id = $1 ORDER BY id',
        { bind: [sessionId], type: QueryTypes.SELECT },
      );
    }

    it('stores single rows and exchanges asked for in one tick, in order, and answers name their question', async () => {
      const work: Array<Promise<StoredRef | [StoredRef, StoredRef]>> = [];
      for (let n = 0; n < 30; n++) work.push(n % 3 === 0 ? writer.insert(question(n)) : writer.insertExchange(question(n), answer(n)));
      const ids = await Promise.all(work);

      const rows = await stored();
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      ids.forEach((result, n) => {
        if (!Array.isArray(result)) {
          expect(byId.get(result.id)).to.include({ text: `question ${n}`, in_reply_to: null, seq: result.seq });
          return;
        }
        const [q, a] = result;
        expect(byId.get(q.id)).to.include({ text: `question ${n}`, in_reply_to: null, seq: q.seq });
        expect(Boolean(byId.get(a.id)!.is_spirit)).to.equal(true);
        expect(byId.get(a.id)).to.include({ text: `answer ${n}`, in_reply_to: q.id, seq: a.seq });
        expect(a.id).to.be.above(q.id);
        expect(a.seq).to.equal(q.seq + 1);
      });
      // One sender's messages keep the order they were asked in, in ids and in seqs.
      const questions = ids.map((r) => (Array.isArray(r) ? r[0] : r));
      expect(questions.map((r) => r.id)).to.deep.equal(questions.map((r) => r.id).sort((x, y) => x - y));
      expect(questions.map((r) => r.seq)).to.deep.equal(questions.map((r) => r.seq).sort((x, y) => x - y));
      expect(rows).to.have.length(50);
      expect(rows.map((r) => Number(r.seq)).sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 1));
      // PostgreSQL: all in one statement; SQLite: plain rows and questions first, then the answers.
      expect(await statementCount()).to.equal(dialect.name === 'PostgreSQL' ? 1 : 2);
    });

    it('splits a large tick into bounded statements without separating a question from its answer', async () => {
      const exchanges = await Promise.all(Array.from({ length: 150 }, (_, n) => writer.insertExchange(question(n), answer(n))));
      const rows = await stored();
      expect(rows).to.have.length(300);
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      for (const [q, a] of exchanges) expect(byId.get(a.id)!.in_reply_to).to.equal(q.id);
      expect(rows.map((r) => Number(r.seq)).sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(await statementCount()).to.equal(dialect.name === 'PostgreSQL' ? 2 : 4);
    });

    if (dialect.name === 'PostgreSQL') {
      it('holds rows back while its statements are under way and sends them together when one ends', async () => {
        const oneAtATime = new MessageWriter(db.sequelize, db.models.Message, 1);
        // A lock held elsewhere keeps the first statement under way while more rows arrive, tick by tick.
        const blocker = await db.sequelize.transaction();
        await db.sequelize.query('LOCK TABLE messages IN EXCLUSIVE MODE', { transaction: blocker });
        const first = oneAtATime.insert(question(0));
        const rest: Array<Promise<StoredRef>> = [];
        for (let n = 1; n <= 10; n++) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          rest.push(oneAtATime.insert(question(n)));
        }
        await blocker.commit();
        const ids = (await Promise.all([first, ...rest])).map((r) => r.id);
        expect(ids).to.deep.equal([...ids].sort((x, y) => x - y));
        expect(await stored()).to.have.length(11);
        expect(await statementCount()).to.equal(2);
      });
    }

    it('numbers the messages of several writers (as on several nodes) storing into two sessions at once 1, 2, 3, … with no gap and no repeat', async () => {
      const other = randomUUID();
      await db.models.Session.create({ id: other, name: 'writer 2', max_users: 6, is_active: true, created_at: new Date() });
      const writers = [0, 1, 2].map(() => new MessageWriter(db.sequelize, db.models.Message));
      const work: Array<Promise<StoredRef>> = [];
      for (let round = 0; round < 40; round++) {
        // Each writer's batch holds both sessions, in a different order per writer.
        writers.forEach((w, k) => {
          const sessions = k % 2 === 0 ? [sessionId, other] : [other, sessionId];
          for (const session of sessions) work.push(w.insert({ ...question(round), session_id: session }));
        });
        if (round % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const refs = await Promise.all(work);
      for (const session of [sessionId, other]) {
        const seqs = (await db.sequelize.query<{ seq: number }>('SELECT seq FROM messages WHERE session_id = $1 ORDER BY seq', { bind: [session], type: QueryTypes.SELECT })).map((r) => Number(r.seq));
        expect(seqs).to.deep.equal(Array.from({ length: 120 }, (_, i) => i + 1));
      }
      expect(new Set(refs.map((r) => `${r.id}`)).size).to.equal(240);
    });

    it('numbers lone exchanges of several writers into one session at once, mixed with batches, 1, 2, 3, … with no gap and no repeat', async () => {
      const writers = [0, 1, 2].map(() => new MessageWriter(db.sequelize, db.models.Message));
      const work: Array<Promise<[StoredRef, StoredRef]>> = [];
      for (let round = 0; round < 30; round++) {
        // Mostly one exchange per writer per tick (one group: its own statement on PostgreSQL), sometimes two (a batch).
        writers.forEach((w) => work.push(w.insertExchange(question(round), answer(round))));
        if (round % 5 === 0) writers.forEach((w) => work.push(w.insertExchange(question(round), answer(round))));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const refs = await Promise.all(work);
      for (const [q, a] of refs) expect(a.seq).to.equal(q.seq + 1);
      const rows = await stored();
      expect(rows.map((r) => Number(r.seq)).sort((x, y) => x - y)).to.deep.equal(Array.from({ length: refs.length * 2 }, (_, i) => i + 1));
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      for (const [q, a] of refs) expect(byId.get(a.id)).to.include({ in_reply_to: q.id, seq: a.seq });
    });

    it('rejects a lone exchange for a session that does not exist, and stores none of it', async () => {
      const missing = randomUUID();
      const result = await Promise.allSettled([writer.insertExchange({ ...question(1), session_id: missing }, { ...answer(1), session_id: missing })]);
      expect(result[0].status).to.equal('rejected');
      const [count] = await db.sequelize.query<{ n: string }>('SELECT count(*) AS n FROM messages WHERE session_id = $1', { bind: [missing], type: QueryTypes.SELECT });
      expect(Number(count.n)).to.equal(0);
    });

    if (dialect.name === 'PostgreSQL') {
      it("sends one statement per session at a time: a session's next messages wait for it and then share one, while other sessions go on", async () => {
        const other = randomUUID();
        await db.models.Session.create({ id: other, name: 'writer 2', max_users: 6, is_active: true, created_at: new Date() });
        const twoAtATime = new MessageWriter(db.sequelize, db.models.Message, 2);
        // Another transaction holds the session's row: its first statement waits in PostgreSQL.
        const blocker = await db.sequelize.transaction();
        try {
          await db.sequelize.query('SELECT id FROM sessions WHERE id = $1 FOR UPDATE', { bind: [sessionId], transaction: blocker });
          const first = twoAtATime.insert(question(0));
          await new Promise((resolve) => setTimeout(resolve, 20));
          const more = [1, 2, 3].map((n) => twoAtATime.insert(question(n)));
          await new Promise((resolve) => setTimeout(resolve, 20));
          // The session's later messages wait in the writer, so the second slot serves another session.
          let timer: NodeJS.Timeout | undefined;
          const elsewhere = await Promise.race([
            twoAtATime.insert({ ...question(9), session_id: other }),
            new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('another session waited for this one')), 3_000))),
          ]).finally(() => clearTimeout(timer));
          expect(elsewhere.seq).to.equal(1);
          await blocker.commit();
          const refs = await Promise.all([first, ...more]);
          expect(refs.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4]);
          // The first alone, the three that waited in one statement.
          expect(await statementCount()).to.equal(2);
        } finally {
          await blocker.rollback().catch(() => undefined);
        }
      });

      it('stores a lone message or exchange with its own statement, which moves the session counter once, and the batch statement where the trigger would number it again', async () => {
        const url = (await sharedPostgres()).url;
        // One connection, so the statements it has prepared are the writer's.
        const single = new Sequelize(url, { logging: false, pool: { max: 1, min: 1 } });
        const prepared = async () => (await single.query<{ name: string }>('SELECT name FROM pg_prepared_statements', { type: QueryTypes.SELECT })).map((r) => r.name).sort();
        try {
          const [q, a] = await new MessageWriter(single, db.models.Message).insertExchange(question(1), answer(1));
          const lone = await new MessageWriter(single, db.models.Message).insert(question(2));
          expect([q.seq, a.seq, lone.seq]).to.deep.equal([1, 2, 3]);
          expect(await prepared()).to.deep.equal(['seance_message_group']);
          const [session] = await db.sequelize.query<{ last_seq: number }>('SELECT last_seq FROM sessions WHERE id = $1', { bind: [sessionId], type: QueryTypes.SELECT });
          expect(Number(session.last_seq)).to.equal(3);
        } finally {
          await single.close();
        }
        // The trigger as it was before the migration `seq-given-by-writer` (a database not yet
        // migrated): the batch statement serves, and nothing is numbered twice.
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- a migration is a CommonJS module sequelize-cli loads
        const migration = require('../../migrations/20261202000000-seq-given-by-writer.js') as { up(qi: unknown): Promise<void>; down(qi: unknown): Promise<void> };
        // A writer that already found the new trigger notices the old one on its next group (the
        // statement fails whole) and stores it again with the batch statement; a new writer reads
        // the trigger and uses the batch statement at once.
        const running = new MessageWriter(db.sequelize, db.models.Message);
        expect((await running.insert(question(3))).seq).to.equal(4);
        await migration.down(db.sequelize.getQueryInterface());
        try {
          const [oq, oa] = await running.insertExchange(question(4), answer(4));
          const ol = await running.insert(question(5));
          const fresh = await new MessageWriter(db.sequelize, db.models.Message).insert(question(6));
          expect([oq.seq, oa.seq, ol.seq, fresh.seq]).to.deep.equal([5, 6, 7, 8]);
          const seqs = (await stored()).map((r) => Number(r.seq)).sort((x, y) => x - y);
          expect(seqs).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
        } finally {
          await migration.up(db.sequelize.getQueryInterface());
        }
      });
    }

    it('rejects every caller of a batch that cannot be stored, and stores none of it', async () => {
      const missing = randomUUID();
      const results = await Promise.allSettled([writer.insert(question(1)), writer.insertExchange({ ...question(2), session_id: missing }, { ...answer(2), session_id: missing })]);
      expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
      expect(await stored()).to.have.length(0);
    });
  });
}
