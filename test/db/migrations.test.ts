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
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', DATABASE_URL: url });
  const db = createDatabase(config, createLogger(config));
  try {
    await work(db);
  } finally {
    await db.close();
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
      expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'users']);
      expect(await indexNames(db, 'sessions')).to.include.members(['sessions_created_at_idx', 'sessions_is_active_idx']);
      expect(await indexNames(db, 'messages')).to.include.members(['messages_session_id_idx', 'messages_session_id_timestamp_idx']);
      expect(await indexNames(db, 'users')).to.include('users_name_idx');
      await db.undoLast();
      expect(await tables(db)).to.deep.equal([]);
      await db.migrate();
      expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'users']);
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
        expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'users']);
        expect(await indexNames(db, 'messages')).to.include('messages_session_id_timestamp_idx');
        await db.undoLast();
        expect(await tables(db)).to.deep.equal([]);
        await db.migrate();
        expect(await tables(db)).to.deep.equal(['messages', 'sessions', 'users']);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
