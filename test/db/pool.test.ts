/**
 * The connection pool keeps DB_POOL_SIZE connections once it has opened them and lets only the
 * overflow go when idle: a burst of joins must not leave every node opening (and PostgreSQL
 * forking) a fresh backend for each burst that follows.
 */
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { createDatabase, type Database } from '../../server/db';
import { createLogger } from '../../server/logger';
import { sharedPostgres } from '../support/hooks';
import { waitUntil } from '../../harness/processes';

/** The sequelize-pool behind Sequelize's connection manager (no read replicas configured). */
function poolOf(db: Database): { size: number } {
  return (db.sequelize.connectionManager as unknown as { pool: { size: number } }).pool;
}

describe('database connection pool', function () {
  // Idle connections are looked at every 5 s and go after 10 s idle.
  this.timeout(30_000);
  let db: Database;

  before(async () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'fatal',
      JWT_SECRET: 'db-test-secret-0123456789abcdef0123456789',
      DATABASE_URL: (await sharedPostgres()).url,
      DB_POOL_SIZE: '2',
      DB_POOL_OVERFLOW: '2',
    });
    db = createDatabase(config, createLogger(config));
  });
  after(() => db.close());

  it('opens the overflow under load and, once idle, closes only the overflow', async () => {
    await Promise.all(Array.from({ length: 6 }, () => db.sequelize.query('SELECT pg_sleep(0.2)')));
    expect(poolOf(db).size).to.equal(4);
    // The overflow closes one connection at a time: wait for the end state, not the first close.
    await waitUntil('idle overflow connections closed', async () => poolOf(db).size <= 2, { timeoutMs: 25_000 });
    expect(poolOf(db).size).to.equal(2);
  });
});
