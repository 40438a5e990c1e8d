/** `npm run migrate` / `npm run migrate:undo`: sequelize-cli with .sequelizerc against DATABASE_URL. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { pgQuery } from '../../harness/pg';
import { sharedPostgres } from '../support/hooks';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');

describe('sequelize-cli migrations (npm run migrate)', () => {
  it('applies, undoes and re-applies the schema on PostgreSQL', async function () {
    this.timeout(60_000);
    const pg = await sharedPostgres();
    await pgQuery(pg.url, 'DROP DATABASE IF EXISTS cli_migrations');
    await pgQuery(pg.url, 'CREATE DATABASE cli_migrations');
    const url = pg.url.replace(/\/seance$/, '/cli_migrations');
    const env = { ...process.env, DATABASE_URL: url, NODE_ENV: 'test' };
    const tables = async () =>
      (await pgQuery<{ tablename: string }>(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'SequelizeMeta' ORDER BY 1")).map((r) => r.tablename);

    await run('npm', ['run', 'migrate'], { cwd: ROOT, env });
    expect(await tables()).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
    const seqColumns = async () => (await pgQuery<{ n: string }>(url, "SELECT count(*) AS n FROM information_schema.columns WHERE column_name IN ('seq', 'last_seq')"))[0].n;
    expect(await seqColumns()).to.equal('2');
    const messageIndexes = async () => (await pgQuery<{ indexname: string }>(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'messages' ORDER BY 1")).map((r) => r.indexname);
    const columns = async (table: string) =>
      (await pgQuery<{ column_name: string }>(url, `SELECT column_name FROM information_schema.columns WHERE table_name = '${table}'`)).map((r) => r.column_name);
    expect(await columns('messages')).to.include('answer_owner');
    expect(await columns('spoken_audio')).to.include.members(['content_key', 'message_id', 'used_at']);
    // Each undo reverts one migration: the owed answers' column goes, then the spoken audio's
    // lifetimes, the dropped indexes come back, the trigger numbers every row again, the seq
    // numbering goes, then the spoken audio.
    await run('npm', ['run', 'migrate:undo'], { cwd: ROOT, env });
    expect(await columns('messages')).not.to.include('answer_owner');
    await run('npm', ['run', 'migrate:undo'], { cwd: ROOT, env });
    expect(await columns('spoken_audio')).not.to.include.members(['content_key']);
    await run('npm', ['run', 'migrate:undo'], { cwd: ROOT, env });
    expect(await messageIndexes()).to.include.members(['messages_session_id_idx', 'messages_session_id_timestamp_idx']);
    await run('npm', ['run', 'migrate:undo'], { cwd: ROOT, env });
    expect(await seqColumns()).to.equal('2');
    await run('npm', ['run', 'migrate:undo'], { cwd: ROOT, env });
    expect(await tables()).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
    expect(await seqColumns()).to.equal('0');
    await run('npm', ['run', 'migrate:undo'], { cwd: ROOT, env });
    expect(await tables()).to.deep.equal(['messages', 'sessions', 'users']);
    await run('npm', ['run', 'migrate'], { cwd: ROOT, env });
    expect(await tables()).to.deep.equal(['messages', 'sessions', 'spoken_audio', 'users']);
  });
});
