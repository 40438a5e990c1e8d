/**
 * Participants' joins are remembered in the users table; on PostgreSQL the joins of one tick
 * share one statement (a node's clients all join again at once after a failover).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { QueryTypes } from 'sequelize';
import { loadConfig } from '../../config';
import { createDatabase, type Database } from '../../server/db';
import { createLogger } from '../../server/logger';
import { PgStatements } from '../../server/storage/sequelize/pgStatements';
import { SequelizeUserStore } from '../../server/storage/sequelize/users';
import { sharedPostgres } from '../support/hooks';

describe('user joins on PostgreSQL', () => {
  let db: Database;
  let users: SequelizeUserStore;

  before(async () => {
    const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'fatal', JWT_SECRET: 'db-test-secret-0123456789abcdef0123456789', DATABASE_URL: (await sharedPostgres()).url });
    db = createDatabase(config, createLogger(config));
    await db.migrate();
    users = new SequelizeUserStore(db.models, new PgStatements(db.sequelize));
  });
  after(() => db.close());

  const participant = (id: string, name: string, at = new Date()) => ({ id, name, joined_at: at.toISOString() });

  async function rows(ids: string[]) {
    return db.sequelize.query<{ id: string; name: string; joined_at: Date; tx: string }>('SELECT id, name, joined_at, xmin::text AS tx FROM users WHERE id = ANY($1) ORDER BY id', {
      bind: [ids],
      type: QueryTypes.SELECT,
    });
  }

  it('stores the joins of one tick in one statement, the latest join of an id winning', async () => {
    const ids = Array.from({ length: 40 }, () => randomUUID());
    const later = new Date(Date.now() + 1000);
    await Promise.all([...ids.map((id, n) => users.recordJoin(participant(id, `Guest ${n}`))), users.recordJoin(participant(ids[0], 'Renamed', later))]);
    const stored = await rows(ids);
    expect(stored).to.have.length(40);
    expect(new Set(stored.map((r) => r.tx)).size).to.equal(1);
    const first = stored.find((r) => r.id === ids[0])!;
    expect(first.name).to.equal('Renamed');
    expect(new Date(first.joined_at).getTime()).to.equal(later.getTime());
  });

  it('updates a returning participant and keeps writing after a refused batch', async () => {
    const id = randomUUID();
    await users.recordJoin(participant(id, 'First'));
    await users.recordJoin(participant(id, 'Second'));
    expect((await rows([id]))[0].name).to.equal('Second');
    // A name longer than the column refuses the batch it is in: each of its callers is told.
    const refused = await Promise.allSettled([users.recordJoin(participant(randomUUID(), 'x'.repeat(80))), users.recordJoin(participant(randomUUID(), 'fine'))]);
    expect(refused.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    const next = randomUUID();
    await users.recordJoin(participant(next, 'After'));
    expect((await rows([next]))[0].name).to.equal('After');
  });
});
