import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { createDatabase, type Database } from '../../server/db';
import { createLogger } from '../../server/logger';
import { sharedPostgres } from '../support/hooks';

async function tables(db: Database): Promise<string[]> {
  const names = (await db.sequelize.getQueryInterface().showAllTables()) as Array<string | { tableName: string }>;
  return names
    .map((n) => (typeof n === 'string' ? n : n.tableName))
    .filter((n) => n !== 'SequelizeMeta')
    .sort();
}

async function indexNames(db: Database, table: string): Promise<string[]> {
  const indexes = (await db.sequelize.getQueryInterface().showIndex(table)) as Array<{ name: string }>;
  return indexes.map((i) => i.name);
}

async function withDatabase(url: string, work: (db: Database) => Promise<void>) {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', DATABASE_URL: url, JWT_SECRET: 'migrations-test-secret-0123456789abcdef' });
  const db = createDatabase(config, createLogger(config));
  try {
    await work(db);
  } finally {
    await db.close();
  }
}

/** The migrations after the one that adds `seq` (undone first). */
const AFTER_SEQ = 4;

/**
 * Undoes the seq migration, stores messages the way the previous release did (no seq), and
 * migrates again: they are numbered per session in id order, and the sessions' counters go on
 * from there (on PostgreSQL a plain INSERT, as an older node makes, gets the next seq, and an
 * INSERT that gives its seq, as the message writer's, keeps it).
 */
async function backfillsSeq(db: Database): Promise<void> {
  for (let n = 0; n <= AFTER_SEQ; n++) await db.undoLast();
  const sessions = ['6b0a8a38-5d0c-4a8e-9d0e-000000000001', '6b0a8a38-5d0c-4a8e-9d0e-000000000002'];
  for (const id of sessions) await db.sequelize.query("INSERT INTO sessions (id, name, max_users, is_active, created_at) VALUES ($1, 'old', 6, true, CURRENT_TIMESTAMP)", { bind: [id] });
  for (const n of [0, 1, 2, 3, 4]) {
    await db.sequelize.query("INSERT INTO messages (session_id, user_id, user_name, text, is_spirit, timestamp) VALUES ($1, 'u', 'U', $2, false, CURRENT_TIMESTAMP)", {
      bind: [sessions[n % 2], `m${n}`],
    });
  }
  await db.migrate();
  const rows = (await db.sequelize.query('SELECT session_id, seq, text FROM messages ORDER BY id'))[0] as Array<{ session_id: string; seq: number; text: string }>;
  expect(rows.map((r) => [r.text, Number(r.seq)])).to.deep.equal([
    ['m0', 1],
    ['m1', 1],
    ['m2', 2],
    ['m3', 2],
    ['m4', 3],
  ]);
  const counters = (await db.sequelize.query('SELECT last_seq FROM sessions ORDER BY id'))[0] as Array<{ last_seq: number }>;
  expect(counters.map((c) => Number(c.last_seq))).to.deep.equal([3, 2]);
  if (db.sequelize.getDialect() === 'postgres') {
    await db.sequelize.query("INSERT INTO messages (session_id, user_id, user_name, text, is_spirit, timestamp) VALUES ($1, 'u', 'U', 'from an older node', false, CURRENT_TIMESTAMP)", {
      bind: [sessions[1]],
    });
    const [late] = (await db.sequelize.query("SELECT seq FROM messages WHERE text = 'from an older node'"))[0] as Array<{ seq: number }>;
    expect(Number(late.seq)).to.equal(3);
    await db.sequelize.query('UPDATE sessions SET last_seq = 4 WHERE id = $1', { bind: [sessions[1]] });
    await db.sequelize.query("INSERT INTO messages (session_id, seq, user_id, user_name, text, is_spirit, timestamp) VALUES ($1, 4, 'u', 'U', 'numbered by the writer', false, CURRENT_TIMESTAMP)", {
      bind: [sessions[1]],
    });
    const [given] = (await db.sequelize.query("SELECT seq FROM messages WHERE text = 'numbered by the writer'"))[0] as Array<{ seq: number }>;
    expect(Number(given.seq)).to.equal(4);
  }
}

describe('migrations', () => {
  it('go up, down and up again on PostgreSQL, with the indexes of the design', async () => {
    const pg = await sharedPostgres();
    // A database of its own, so the shared one stays migrated for the other suites.
    await withDatabase(pg.url, (db) =>
      db.sequelize
        .query('DROP DATABASE IF EXISTS migrations_roundtrip')
        .then(() => db.sequelize.query('CREATE DATABASE migrations_roundtrip'))
        .then(() => undefined),
    );
    await withDatabase(pg.url.replace(/\/seance$/, '/migrations_roundtrip'), async (db) => {
      expect(await db.migrate()).to.have.length.above(0);
      expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
      expect(await indexNames(db, 'sessions')).to.include.members(['sessions_created_at_idx', 'sessions_is_active_idx']);
      // (session_id) and (session_id, timestamp) are gone: (session_id, seq) serves what they did.
      expect(await indexNames(db, 'messages')).not.to.include.members(['messages_session_id_idx']);
      expect(await indexNames(db, 'messages')).not.to.include.members(['messages_session_id_timestamp_idx']);
      expect(await indexNames(db, 'users')).to.include('users_name_idx');
      expect(await indexNames(db, 'messages')).to.include('messages_session_id_seq_idx');
      // Only the questions still owed an answer: the sweep that finds them reads a handful of rows.
      expect(await indexNames(db, 'messages')).to.include('messages_owed_answers_idx');
      await backfillsSeq(db);
      for (let n = 0; n <= AFTER_SEQ + 1; n++) await db.undoLast();
      expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'users']);
      await db.undoLast();
      expect(await tables(db)).to.deep.equal([]);
      await db.migrate();
      expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
      expect(await db.migrate()).to.deep.equal([]);
    });
  });

  it('do not race when several replicas migrate at once (advisory lock)', async () => {
    const pg = await sharedPostgres();
    await withDatabase(pg.url, (db) =>
      db.sequelize
        .query('DROP DATABASE IF EXISTS migrations_race')
        .then(() => db.sequelize.query('CREATE DATABASE migrations_race'))
        .then(() => undefined),
    );
    const url = pg.url.replace(/\/seance$/, '/migrations_race');
    const applied: string[][] = [];
    await Promise.all(Array.from({ length: 4 }, () => withDatabase(url, async (db) => void applied.push(await db.migrate()))));
    expect(applied.filter((a) => a.length > 0)).to.have.length(1);
  });

  it('go up, down and up again on SQLite', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-migrate-'));
    try {
      await withDatabase(`sqlite:${path.join(dir, 'm.sqlite')}`, async (db) => {
        await db.migrate();
        expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
        expect(await indexNames(db, 'messages')).not.to.include('messages_session_id_timestamp_idx');
        expect(await indexNames(db, 'messages')).to.include('messages_session_id_seq_idx');
        expect(await indexNames(db, 'messages')).to.include('messages_owed_answers_idx');
        await backfillsSeq(db);
        for (let n = 0; n <= AFTER_SEQ + 1; n++) await db.undoLast();
        expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'users']);
        await db.undoLast();
        expect(await tables(db)).to.deep.equal([]);
        await db.migrate();
        expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
