/**
 * What the storage ports promise (server/storage/ports.ts), one suite over every implementation:
 * the in-memory twin the unit tests run on, and the Sequelize stores on SQLite and on PostgreSQL.
 * Each implementation is fresh (its own store, temp file or database), so what a port answers
 * about the whole deployment (owed questions, idle sessions, eviction) holds only this suite's rows.
 *
 * Where the databases order uses by a millisecond timestamp, a test waits for the clock to pass
 * one (nextMillisecond) rather than for a fixed time.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { pgQuery } from '../../harness/pg';
import { createDatabase } from '../../server/db';
import type { ChatMessageView, ParticipantView } from '../../server/events';
import { createLogger } from '../../server/logger';
import { MemoryMaintenanceStore, memoryStores } from '../../server/storage/memory';
import type { MaintenanceStore, StoredAudio, Stores } from '../../server/storage/ports';
import { sequelizeMaintenance, sequelizeStores } from '../../server/storage/sequelize';
import { sharedPostgres } from '../support/hooks';

interface Impl {
  stores: Stores;
  maintenance: MaintenanceStore;
  /** The identity remembered for a user id (the port has no read: the users table, or the memory map). */
  joinedAs: (userId: string) => Promise<ParticipantView | null>;
  close: () => Promise<void>;
}

async function onDatabase(url: string): Promise<Impl> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', DATABASE_URL: url, JWT_SECRET: 'store-ports-contract-secret-0123456789abcdef' });
  const db = createDatabase(config, createLogger(config));
  await db.migrate();
  return {
    stores: sequelizeStores(db, 'contract-node'),
    maintenance: sequelizeMaintenance(db),
    joinedAs: async (userId) => {
      const row = await db.models.User.findByPk(userId);
      return row && { id: row.id, name: row.name, joined_at: row.joined_at.toISOString() };
    },
    close: () => db.close(),
  };
}

const memory = {
  name: 'memory',
  async open(): Promise<Impl> {
    const stores = memoryStores();
    return { stores, maintenance: new MemoryMaintenanceStore(stores), joinedAs: async (userId) => stores.users.known.get(userId) ?? null, close: async () => undefined };
  },
};

const sqlite = {
  name: 'SQLite',
  async open(): Promise<Impl> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-ports-'));
    const impl = await onDatabase(`sqlite:${path.join(dir, 'ports.sqlite')}`);
    const close = async () => {
      await impl.close();
      fs.rmSync(dir, { recursive: true, force: true });
    };
    return { ...impl, close };
  },
};

const postgres = {
  name: 'PostgreSQL',
  /** A database of its own on the run's shared server, dropped at the end. */
  async open(): Promise<Impl> {
    const server = (await sharedPostgres()).url;
    const name = `ports_${randomBytes(4).toString('hex')}`;
    await pgQuery(server, `CREATE DATABASE ${name}`);
    const impl = await onDatabase(server.replace(/\/seance$/, `/${name}`));
    const close = async () => {
      await impl.close();
      await pgQuery(server, `DROP DATABASE ${name} WITH (FORCE)`);
    };
    return { ...impl, close };
  },
};

const ada: ParticipantView = { id: 'u-ada', name: 'Ada', joined_at: '2026-01-01T10:00:00.000Z' };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Resolves once Date.now() has moved on: what is stamped after it is later by at least 1 ms. */
async function nextMillisecond(): Promise<void> {
  const now = Date.now();
  while (Date.now() === now) await new Promise((resolve) => setImmediate(resolve));
}

function audioOf(text: string, bytes = 1000): StoredAudio {
  const data = Buffer.alloc(bytes, text);
  return { bytes: data, contentType: 'audio/mpeg', digest: createHash('sha256').update(data).digest('hex'), provider: 'openai', fallback: false };
}

/** A key or content key (the columns hold 64 characters). */
const newKey = (kind: string) => `${kind}-${randomUUID()}`;

for (const impl of [memory, sqlite, postgres])
  describe(`storage ports on ${impl.name}`, function () {
    this.timeout(20_000);
    let stores: Stores;
    let maintenance: MaintenanceStore;
    let joinedAs: Impl['joinedAs'];
    let close: () => Promise<void> = async () => undefined;

    before(async () => ({ stores, maintenance, joinedAs, close } = await impl.open()));
    after(() => close());

    const newSession = async () => (await stores.sessions.create({ name: 'contract', max_users: 6 })).id;
    const seqsOf = async (sessionId: string) => (await stores.messages.after(sessionId, 0, 1000)).map((m) => m.seq);
    const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

    // Not held to the contract: an id in upper case (a valid UUID all the same) finds its session,
    // and stores messages in it, on PostgreSQL (a uuid column) but not on SQLite (text) nor in
    // memory, which agrees with SQLite. SessionService.get looks ids up in lower case, so callers
    // see one behaviour (test/services/rooms.test.ts).
    describe('SessionStore', () => {
      it('creates an active session that lookups find, together or alone; an unknown id finds nothing', async () => {
        const before = Date.now();
        const session = await stores.sessions.create({ name: 'Table turning', max_users: 4 });
        expect(session).to.deep.include({ name: 'Table turning', max_users: 4, is_active: true });
        expect(session.created_at).to.match(ISO);
        expect(Date.parse(session.created_at)).to.be.within(before, Date.now());
        const other = await stores.sessions.create({ name: 'Ouija', max_users: 6 });
        expect(await Promise.all([stores.sessions.find(session.id), stores.sessions.find(randomUUID()), stores.sessions.find(other.id)])).to.deep.equal([session, null, other]);
      });

      it('ends a session once: ending it again keeps the first time; an unknown id ends nothing', async () => {
        const session = await stores.sessions.create({ name: 'Last rites', max_users: 6 });
        const first = await stores.sessions.end(session.id);
        expect(first!.session).to.deep.equal({ ...session, is_active: false });
        await nextMillisecond();
        const again = await stores.sessions.end(session.id);
        expect(again!.session).to.deep.equal({ ...session, is_active: false });
        expect(again!.endedAt.getTime()).to.equal(first!.endedAt.getTime());
        expect(await stores.sessions.find(session.id)).to.deep.equal({ ...session, is_active: false });
        expect(await stores.sessions.end(randomUUID())).to.equal(null);
      });
    });

    describe('MessageStore', () => {
      it('numbers each session 1, 2, 3… with no gap, and an exchange question then answer, whatever is stored together', async () => {
        const [a, b] = [await newSession(), await newSession()];
        const stored = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            i % 3 === 0 ? stores.messages.storeExchange(a, ada, `q${i}`, `a${i}`) : stores.messages.storeChat(i % 3 === 1 ? a : b, ada, `m${i}`).then((message) => ({ message, answer: null })),
          ),
        );
        expect(await seqsOf(a)).to.deep.equal(upTo(12));
        expect(await seqsOf(b)).to.deep.equal(upTo(4));
        expect([await stores.messages.latestSeq(a), await stores.messages.latestSeq(b)]).to.deep.equal([12, 4]);
        const history = new Map((await stores.messages.after(a, 0, 100)).map((m) => [m.id, m]));
        for (const { message, answer } of stored.filter((s) => s.answer !== null)) {
          expect(answer.seq).to.equal(message.seq + 1);
          expect(history.get(answer.id)).to.deep.equal({ ...answer, in_reply_to: message.id });
          expect(history.get(message.id)).to.deep.equal({ ...message, is_spirit: false, in_reply_to: null });
        }
        // Not held to the contract: the databases stamp an exchange's two messages with one
        // timestamp, the memory twin each with its own (a millisecond apart at most).
        const ids = stored.flatMap((s) => [s.message.id, ...(s.answer ? [s.answer.id] : [])]);
        expect(new Set(ids).size).to.equal(16);
      });

      it('reads back what it stored: a chat message as its view, the spirit answer with what it answers', async () => {
        const sessionId = await newSession();
        const chat = await stores.messages.storeChat(sessionId, ada, 'Is anyone there?');
        expect(chat).to.have.all.keys('id', 'seq', 'session_id', 'user_id', 'user_name', 'message', 'timestamp');
        expect(chat).to.deep.include({ seq: 1, session_id: sessionId, user_id: 'u-ada', user_name: 'Ada', message: 'Is anyone there?' });
        expect(chat.timestamp).to.match(ISO);
        const spirit = await stores.messages.storeSpirit(sessionId, chat.id, 'YES');
        expect(spirit).to.deep.include({ seq: 2, session_id: sessionId, user_id: null, user_name: null, message: 'YES', is_spirit: true });
        expect(Date.parse(spirit.timestamp)).to.be.at.least(Date.parse(chat.timestamp));
        expect(await stores.messages.after(sessionId, 0, 10)).to.deep.equal([
          { ...chat, is_spirit: false, in_reply_to: null },
          { ...spirit, in_reply_to: chat.id },
        ]);
        expect(await stores.messages.recent(sessionId, 10)).to.deep.equal([{ ...chat, is_spirit: false }, spirit]);
      });

      it('pages history oldest first, each older page through the cursor, until the start', async () => {
        const sessionId = await newSession();
        for (let i = 1; i <= 7; i++) await stores.messages.storeChat(sessionId, ada, `m${i}`);
        const page = async (limit: number, before?: string) => {
          const { messages, nextCursor } = await stores.messages.page(sessionId, { limit, before });
          return [messages.map((m) => m.seq), nextCursor];
        };
        expect(await page(3)).to.deep.equal([[5, 6, 7], '5']);
        expect(await page(3, '5')).to.deep.equal([[2, 3, 4], '2']);
        expect(await page(3, '2')).to.deep.equal([[1], null]);
        expect(await page(6)).to.deep.equal([[2, 3, 4, 5, 6, 7], '2']);
        expect(await page(7)).to.deep.equal([upTo(7), null]);
        expect(await page(2, '100')).to.deep.equal([[6, 7], '6']);
        expect((await stores.messages.recent(sessionId, 3)).map((m) => m.message)).to.deep.equal(['m5', 'm6', 'm7']);
        expect((await stores.messages.after(sessionId, 2, 3)).map((m) => m.seq)).to.deep.equal([3, 4, 5]);
        expect(await stores.messages.after(sessionId, 7, 10)).to.deep.equal([]);

        const empty = await newSession();
        expect(await stores.messages.page(empty, { limit: 5 })).to.deep.equal({ messages: [], nextCursor: null });
        expect([await stores.messages.recent(empty, 5), await stores.messages.after(empty, 0, 5), await stores.messages.latestSeq(empty)]).to.deep.equal([[], [], 0]);
      });

      it('gives each caller of recent its own answer, when asked together', async () => {
        const [a, b] = [await newSession(), await newSession()];
        for (const text of ['one', 'two', 'three']) await stores.messages.storeChat(a, ada, text);
        await stores.messages.storeChat(b, ada, 'other');
        const [first, second, third] = await Promise.all([stores.messages.recent(a, 2), stores.messages.recent(a, 2), stores.messages.recent(b, 5)]);
        first.pop();
        expect(second.map((m) => m.message)).to.deep.equal(['two', 'three']);
        expect(third.map((m) => m.message)).to.deep.equal(['other']);
      });

      it("finds the spirit's first answer to a question, and an answer's text, in their session only", async () => {
        const [sessionId, elsewhere] = [await newSession(), await newSession()];
        const question = await stores.messages.storeChat(sessionId, ada, 'Will it rain?');
        expect(await stores.messages.answerTo(sessionId, question.id)).to.equal(null);
        const answer = await stores.messages.storeSpirit(sessionId, question.id, 'YES');
        await stores.messages.storeSpirit(sessionId, question.id, 'YES, AGAIN');
        expect(await stores.messages.answerTo(sessionId, question.id)).to.deep.equal(answer);
        expect(await stores.messages.answerTo(elsewhere, question.id)).to.equal(null);
        const exchange = await stores.messages.storeExchange(sessionId, ada, 'Who?', 'ME');
        expect(await stores.messages.answerTo(sessionId, exchange.message.id)).to.deep.equal(exchange.answer);

        expect(await stores.messages.spiritText(sessionId, answer.id)).to.equal('YES');
        expect(await stores.messages.spiritText(sessionId, question.id), 'a question is no answer').to.equal(null);
        expect(await stores.messages.spiritText(elsewhere, answer.id)).to.equal(null);
        expect(await stores.messages.spiritText(sessionId, exchange.answer.id + 1000)).to.equal(null);
      });

      it('stores nothing for a session that does not exist', async () => {
        const nowhere = randomUUID();
        const refused = (stored: Promise<unknown>) =>
          stored.then(
            () => false,
            () => true,
          );
        expect(await refused(stores.messages.storeChat(nowhere, ada, 'hello?'))).to.equal(true);
        expect(await refused(stores.messages.storeExchange(nowhere, ada, 'hello?', 'NO'))).to.equal(true);
        expect(await stores.messages.after(nowhere, 0, 10)).to.deep.equal([]);
        expect(await stores.messages.latestSeq(nowhere)).to.equal(0);
      });

      describe('owed answers', () => {
        /** Owners of this test only: owed() lists the whole deployment's. */
        const newOwner = () => `node-${randomUUID().slice(0, 8)}`;

        it('owes a question its answer until its owner stores the answer, once', async () => {
          const [sessionId, elsewhere] = [await newSession(), await newSession()];
          const [owner, other] = [newOwner(), newOwner()];
          await stores.messages.storeChat(sessionId, ada, 'nobody waits for this');
          const question = await stores.messages.storeChat(sessionId, ada, 'Are you there?', { owesAnswer: owner });
          const listed = { id: question.id, seq: question.seq, session_id: sessionId, user_name: 'Ada', message: 'Are you there?', timestamp: question.timestamp, owner };
          expect(await stores.messages.owed({ owner, limit: 10 })).to.deep.equal([listed]);
          expect((await stores.messages.owed({ limit: 1000 })).filter((q) => q.session_id === sessionId)).to.deep.equal([listed]);
          expect(await stores.messages.owed({ owner: other, limit: 10 })).to.deep.equal([]);

          expect(await stores.messages.storeOwedAnswer(sessionId, question.id, other, 'NO')).to.equal(null);
          expect(await stores.messages.storeOwedAnswer(elsewhere, question.id, owner, 'NO')).to.equal(null);
          const answer = await stores.messages.storeOwedAnswer(sessionId, question.id, owner, 'YES');
          expect(answer).to.deep.include({ seq: 3, session_id: sessionId, user_id: null, user_name: null, message: 'YES', is_spirit: true });
          expect(await stores.messages.storeOwedAnswer(sessionId, question.id, owner, 'YES AGAIN')).to.equal(null);
          expect(await stores.messages.owed({ owner, limit: 10 })).to.deep.equal([]);
          expect(await stores.messages.answerTo(sessionId, question.id)).to.deep.equal(answer);
          expect((await stores.messages.after(sessionId, 0, 10)).map((m) => [m.seq, m.in_reply_to])).to.deep.equal([
            [1, null],
            [2, null],
            [3, question.id],
          ]);
        });

        it('lists owed questions oldest first, at most limit', async () => {
          const sessionId = await newSession();
          const owner = newOwner();
          const asked: ChatMessageView[] = [];
          for (const text of ['first', 'second', 'third']) asked.push(await stores.messages.storeChat(sessionId, ada, text, { owesAnswer: owner }));
          expect((await stores.messages.owed({ owner, limit: 2 })).map((q) => q.id)).to.deep.equal([asked[0].id, asked[1].id]);
        });

        it('moves a debt only from its owner, after which only the new owner answers', async () => {
          const sessionId = await newSession();
          const [owner, heir] = [newOwner(), newOwner()];
          const question = await stores.messages.storeChat(sessionId, ada, 'Who is there?', { owesAnswer: owner });
          expect(await stores.messages.takeOver(question.id, heir, owner)).to.equal(false);
          expect(await stores.messages.takeOver(question.id, owner, heir)).to.equal(true);
          expect(await stores.messages.takeOver(question.id, owner, heir), 'it moved already').to.equal(false);
          expect(await stores.messages.owed({ owner, limit: 10 })).to.deep.equal([]);
          expect((await stores.messages.owed({ owner: heir, limit: 10 })).map((q) => [q.id, q.owner])).to.deep.equal([[question.id, heir]]);
          expect(await stores.messages.storeOwedAnswer(sessionId, question.id, owner, 'LATE')).to.equal(null);
          expect(await stores.messages.storeOwedAnswer(sessionId, question.id, heir, 'HERE')).to.deep.include({ seq: 2, message: 'HERE' });
          expect(await stores.messages.takeOver(question.id, heir, owner), 'answered: nothing to move').to.equal(false);
        });

        it('gives a debt up only for its owner; no answer can follow', async () => {
          const sessionId = await newSession();
          const owner = newOwner();
          const question = await stores.messages.storeChat(sessionId, ada, 'Will it rain?', { owesAnswer: owner });
          expect(await stores.messages.giveUp(question.id, newOwner())).to.equal(false);
          expect(await stores.messages.giveUp(question.id, owner)).to.equal(true);
          expect(await stores.messages.giveUp(question.id, owner)).to.equal(false);
          expect(await stores.messages.owed({ owner, limit: 10 })).to.deep.equal([]);
          expect(await stores.messages.storeOwedAnswer(sessionId, question.id, owner, 'YES')).to.equal(null);
          expect(await stores.messages.takeOver(question.id, owner, newOwner())).to.equal(false);
          expect(await stores.messages.latestSeq(sessionId)).to.equal(question.seq);
        });
      });
    });

    describe('UserStore', () => {
      it('remembers a participant as of its latest join, joins recorded together included', async () => {
        const id = `u-${randomUUID().slice(0, 8)}`;
        await stores.users.recordJoin({ id, name: 'First', joined_at: '2026-01-01T10:00:00.000Z' });
        expect(await joinedAs(id)).to.deep.equal({ id, name: 'First', joined_at: '2026-01-01T10:00:00.000Z' });
        const latest = { id, name: 'Third', joined_at: '2026-01-01T10:02:00.000Z' };
        await Promise.all([stores.users.recordJoin({ id, name: 'Second', joined_at: '2026-01-01T10:01:00.000Z' }), stores.users.recordJoin(latest)]);
        expect(await joinedAs(id)).to.deep.equal(latest);
      });
    });

    describe('AudioStore', () => {
      it('lets one claim win a key; the audio it completes is what lookups and its content key find', async () => {
        const [key, contentKey] = [newKey('k'), newKey('c')];
        expect(await stores.audio.lookup(key)).to.deep.equal({ state: 'absent' });
        const before = Date.now();
        const claim = await stores.audio.claim(key, 'onyx', { contentKey, messageId: null });
        expect(claim).to.be.a('string');
        expect(await stores.audio.claim(key, 'onyx', { contentKey, messageId: null })).to.equal(null);
        const pending = await stores.audio.lookup(key);
        expect(pending).to.deep.include({ state: 'pending', claim });
        expect((pending as { claimedAt: Date }).claimedAt.getTime()).to.be.within(before, Date.now());
        expect(await stores.audio.findContent(contentKey), 'a claim is no audio yet').to.equal(null);

        const audio = audioOf('a');
        await stores.audio.complete(key, claim!, audio);
        expect(await stores.audio.lookup(key)).to.deep.equal({ state: 'ready', audio });
        expect(await stores.audio.findContent(contentKey)).to.deep.equal(audio);
        expect(await stores.audio.claim(key, 'onyx', { contentKey, messageId: null })).to.equal(null);
        expect(await stores.audio.findContent(newKey('c'))).to.equal(null);

        // The same content spoken for an answer, under a key of its own.
        const answerKey = newKey('k');
        const answerContent = newKey('c');
        const answerClaim = await stores.audio.claim(answerKey, 'onyx', { contentKey: answerContent, messageId: 1 });
        const spoken = { ...audioOf('b'), fallback: true, provider: 'builtin' };
        await stores.audio.complete(answerKey, answerClaim!, spoken);
        expect(await stores.audio.findContent(answerContent)).to.deep.equal(spoken);
      });

      it('takes a stale claim over once; the claim it replaced can neither complete nor abandon the key', async () => {
        const key = newKey('k');
        const stale = (await stores.audio.claim(key, 'onyx', { contentKey: newKey('c'), messageId: null }))!;
        expect(await stores.audio.takeOver(key, 'not-the-claim')).to.equal(null);
        const fresh = await stores.audio.takeOver(key, stale);
        expect(fresh).to.be.a('string').that.does.not.equal(stale);
        expect(await stores.audio.takeOver(key, stale), 'taken over already').to.equal(null);
        await stores.audio.complete(key, stale, audioOf('x'));
        await stores.audio.abandon(key, stale);
        expect(await stores.audio.lookup(key)).to.deep.include({ state: 'pending', claim: fresh });
        const audio = audioOf('y');
        await stores.audio.complete(key, fresh!, audio);
        expect(await stores.audio.takeOver(key, fresh!), 'the audio is there').to.equal(null);
        await stores.audio.abandon(key, fresh!);
        expect(await stores.audio.lookup(key)).to.deep.equal({ state: 'ready', audio });
        expect(await stores.audio.takeOver(newKey('k'), fresh!)).to.equal(null);
      });

      it('leaves an abandoned key to the next claim', async () => {
        const key = newKey('k');
        const owner = { contentKey: newKey('c'), messageId: null };
        const first = (await stores.audio.claim(key, 'onyx', owner))!;
        await stores.audio.abandon(key, first);
        expect(await stores.audio.lookup(key)).to.deep.equal({ state: 'absent' });
        expect(await stores.audio.claim(key, 'onyx', owner))
          .to.be.a('string')
          .that.does.not.equal(first);
      });

      it("evicts the least recently used audio of no message beyond maxBytes; an answer's audio and claims stay", async () => {
        await stores.audio.evict(0); // what the tests before left
        const make = async (key: string, messageId: number | null, bytes = 1000) => {
          await nextMillisecond(); // the databases order uses by the millisecond
          const claim = await stores.audio.claim(key, 'onyx', { contentKey: newKey('c'), messageId });
          await stores.audio.complete(key, claim!, audioOf(key, bytes));
        };
        const [k1, k2, k3, answer, pending] = ['k1', 'k2', 'k3', 'answer', 'pending'].map(newKey);
        await make(k1, null);
        await make(k2, null);
        await make(k3, null);
        await make(answer, 7, 5000);
        await stores.audio.claim(pending, 'onyx', { contentKey: newKey('c'), messageId: null });
        const states = async () => Promise.all([k1, k2, k3, answer, pending].map(async (key) => (await stores.audio.lookup(key)).state));

        expect(await stores.audio.evict(3000)).to.equal(0);
        expect(await stores.audio.evict(2000)).to.equal(1);
        expect(await states()).to.deep.equal(['absent', 'ready', 'ready', 'ready', 'pending']);
        await nextMillisecond();
        await stores.audio.touch(k2);
        await stores.audio.touch(newKey('k')); // no such key: nothing happens
        expect(await stores.audio.evict(1500)).to.equal(1);
        expect(await states()).to.deep.equal(['absent', 'ready', 'absent', 'ready', 'pending']);
        expect(await stores.audio.evict(0)).to.equal(1);
        expect(await states()).to.deep.equal(['absent', 'absent', 'absent', 'ready', 'pending']);
      });
    });

    describe('MaintenanceStore', () => {
      it('names active sessions created before the cutoff with no message since, at most limit of them', async () => {
        const quiet = await newSession();
        const spoke = await newSession();
        await stores.messages.storeChat(spoke, ada, 'long ago');
        const chatting = await newSession();
        await stores.messages.storeChat(chatting, ada, 'long ago');
        const ended = await newSession();
        await stores.sessions.end(ended);
        await nextMillisecond();
        const cutoff = new Date();
        await nextMillisecond();
        await stores.messages.storeChat(chatting, ada, 'just now');
        const fresh = await newSession();

        const ours = [quiet, spoke, chatting, ended, fresh];
        const idle = (await maintenance.idleCandidates(cutoff, 10_000)).filter((id) => ours.includes(id));
        expect(idle.sort()).to.deep.equal([quiet, spoke].sort());
        expect(await maintenance.idleCandidates(cutoff, 1)).to.have.length(1);
      });

      it('ends a session only while it is active, at the time given', async () => {
        const sessionId = await newSession();
        const endedAt = new Date('2026-02-03T04:05:06.789Z');
        expect(await maintenance.endIfActive(sessionId, endedAt)).to.equal(true);
        expect(await maintenance.endIfActive(sessionId, new Date())).to.equal(false);
        expect((await stores.sessions.find(sessionId))?.is_active).to.equal(false);
        expect((await stores.sessions.end(sessionId))?.endedAt.toISOString()).to.equal(endedAt.toISOString());

        const endedByItsCreator = await newSession();
        await stores.sessions.end(endedByItsCreator);
        expect(await maintenance.endIfActive(endedByItsCreator, new Date())).to.equal(false);
        expect(await maintenance.endIfActive(randomUUID(), new Date())).to.equal(false);
      });

      it('deletes at most limit messages of sessions ended before the cutoff, and their audio; their seqs are not reused', async () => {
        // Ended in 2000: no other test's session ends before this cutoff.
        const [expired, endedLater, active] = [await newSession(), await newSession(), await newSession()];
        await stores.messages.storeChat(expired, ada, 'old');
        const exchange = await stores.messages.storeExchange(expired, ada, 'old question', 'OLD ANSWER');
        const audioKey = newKey('k');
        const claim = await stores.audio.claim(audioKey, 'onyx', { contentKey: newKey('c'), messageId: exchange.answer.id });
        await stores.audio.complete(audioKey, claim!, audioOf('o'));
        await stores.messages.storeChat(endedLater, ada, 'kept');
        await stores.messages.storeChat(active, ada, 'kept');
        await maintenance.endIfActive(expired, new Date('2000-01-01T00:00:00.000Z'));
        await maintenance.endIfActive(endedLater, new Date('2000-01-03T00:00:00.000Z'));

        const cutoff = new Date('2000-01-02T00:00:00.000Z');
        expect(await maintenance.deleteExpiredMessages(cutoff, 2)).to.equal(2);
        expect(await maintenance.deleteExpiredMessages(cutoff, 10)).to.equal(1);
        expect(await maintenance.deleteExpiredMessages(cutoff, 10)).to.equal(0);
        expect(await stores.messages.after(expired, 0, 10)).to.deep.equal([]);
        expect(await stores.audio.lookup(audioKey)).to.deep.equal({ state: 'absent' });
        expect(await stores.messages.latestSeq(expired)).to.equal(3);
        expect([await seqsOf(endedLater), await seqsOf(active)]).to.deep.equal([[1], [1]]);
      });
    });
  });
