/**
 * What every join reads, its session and the session's latest messages, is read on
 * PostgreSQL by one statement for all the joins asked for together (a node's clients all
 * join again at once after a failover); each caller still gets exactly its own answer.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { createDatabase, type Database } from '../../server/db';
import type { ParticipantView } from '../../server/events';
import { createLogger } from '../../server/logger';
import { SequelizeMessageStore } from '../../server/storage/sequelize/messages';
import { PgStatements } from '../../server/storage/sequelize/pgStatements';
import { SequelizeSessionStore } from '../../server/storage/sequelize/sessions';
import { sharedPostgres } from '../support/hooks';

describe('session and history reads on PostgreSQL', () => {
  let db: Database;
  let statements: PgStatements;
  let sessions: SequelizeSessionStore;
  let messages: SequelizeMessageStore;
  /** The names of the statements sent, in order (counted on the real PgStatements). */
  const sent: string[] = [];
  const author: ParticipantView = { id: 'reader-1', name: 'Reader', joined_at: new Date().toISOString() };

  before(async () => {
    const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', JWT_SECRET: 'db-test-secret-0123456789abcdef0123456789', DATABASE_URL: (await sharedPostgres()).url });
    db = createDatabase(config, createLogger(config));
    await db.migrate();
    statements = new PgStatements(db.sequelize);
    const run = statements.run.bind(statements);
    statements.run = <R>(name: string, text: string, values: unknown[]): Promise<R[]> => {
      sent.push(name);
      return run<R>(name, text, values);
    };
    sessions = new SequelizeSessionStore(db.models, statements);
    messages = new SequelizeMessageStore(db.models, db.sequelize, statements);
  });
  after(() => db.close());
  beforeEach(() => {
    sent.length = 0;
  });

  async function session(name: string, chats = 0) {
    const created = await sessions.create({ name, max_users: 6 });
    for (let n = 1; n <= chats; n++) await messages.storeChat(created.id, author, `${name} ${n}`);
    return created;
  }
  const reads = (name: string) => sent.filter((s) => s === name).length;

  it('looks up the sessions asked for in one tick with one statement, each caller getting its own', async () => {
    const [a, b] = await Promise.all([session('alpha'), session('beta')]);
    await sessions.end(b.id);
    sent.length = 0;
    const missing = randomUUID();
    const found = await Promise.all([sessions.find(a.id), sessions.find(b.id), sessions.find(missing), sessions.find(a.id.toUpperCase()), sessions.find(a.id)]);
    expect(reads('seance_sessions_find')).to.equal(1);
    expect(found[0]).to.deep.equal(a);
    expect(found[1]).to.include({ id: b.id, name: 'beta', is_active: false });
    expect(found[2]).to.equal(null);
    // A uuid is the same whatever its case; PostgreSQL writes it in lower case.
    expect(found[3]).to.deep.equal(a);
    expect(found[4]).to.deep.equal(a);
    expect(found[4]).to.not.equal(found[0]);
    // Asked one after the other, each is its own statement.
    expect(await sessions.find(b.id)).to.include({ id: b.id, is_active: false });
    expect(await sessions.find(missing)).to.equal(null);
    expect(reads('seance_sessions_find')).to.equal(3);
  });

  it('reads the latest messages of the sessions asked for in one tick with one statement, oldest first', async () => {
    const [quiet, some, many] = await Promise.all([session('quiet'), session('some', 3), session('many', 60)]);
    sent.length = 0;
    const [ofQuiet, ofSome, ofMany, lastTwo, again] = await Promise.all([
      messages.recent(quiet.id, 50),
      messages.recent(some.id, 50),
      messages.recent(many.id, 50),
      messages.recent(many.id, 2),
      messages.recent(some.id, 50),
    ]);
    expect(reads('seance_messages_recent_many')).to.equal(1);
    expect(ofQuiet).to.deep.equal([]);
    expect(ofSome.map((m) => [m.seq, m.message])).to.deep.equal([
      [1, 'some 1'],
      [2, 'some 2'],
      [3, 'some 3'],
    ]);
    expect(ofSome[0]).to.include({ session_id: some.id, user_id: author.id, user_name: author.name, is_spirit: false });
    expect(ofMany.map((m) => m.seq)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 11));
    expect(lastTwo.map((m) => m.message)).to.deep.equal(['many 59', 'many 60']);
    // The same ask twice: the same messages, in an array of its own.
    expect(again).to.deep.equal(ofSome);
    expect(again).to.not.equal(ofSome);
  });

  it('finds nothing for what is no session id, without failing the lookups beside it', async () => {
    const alive = await session('alive', 1);
    sent.length = 0;
    const found = await Promise.all([sessions.find(alive.id), sessions.find('not-a-uuid'), sessions.find(`${alive.id}'; --`)]);
    expect(found[0]).to.include({ id: alive.id, name: 'alive' });
    expect(found.slice(1)).to.deep.equal([null, null]);
    expect(reads('seance_sessions_find')).to.equal(1);
    expect(await sessions.find('not-a-uuid')).to.equal(null);
    expect(reads('seance_sessions_find')).to.equal(1);
  });
});
