/**
 * The database: one Sequelize instance (PostgreSQL, or the embedded SQLite default), the
 * models, and migrations run through umzug on the very files sequelize-cli uses (both
 * record progress in the same `SequelizeMeta` table, so either tool can take over).
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Sequelize, type Options } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import type { ConnectionOptions } from 'node:tls';
import type { Config, DatabaseTls } from '../config';
import { initModels, type Models } from '../models';
import type { Logger } from './logger';
import type { DatabasePoolStats } from './metrics';

export interface Database {
  sequelize: Sequelize;
  models: Models;
  /** Applies pending migrations; safe when several replicas start at once (see below). */
  migrate(): Promise<string[]>;
  /** Reverts the last migration (tests prove the schema goes down and up again). */
  undoLast(): Promise<void>;
  ping(): Promise<void>;
  poolStats(): DatabasePoolStats;
  close(): Promise<void>;
}

/** The part of sequelize-pool's Pool the metrics read (Sequelize does not export its type). */
interface PoolCounts {
  using: number;
  available: number;
  waiting: number;
  maxSize: number;
}

/** One step of a migration file, called with the QueryInterface and the Sequelize class. */
type MigrationStep = (queryInterface: unknown, sequelize: typeof Sequelize) => Promise<void>;

/** Any constant shared by every replica: the key of the PostgreSQL advisory lock taken while migrating. */
const MIGRATION_LOCK_KEY = 746_353_100;

/**
 * pg as Sequelize gets it, with a client that listens for 'error' from birth. Sequelize adds
 * its listener only once the connection is up; an error in the same read as the end of the
 * start-up (PostgreSQL's 57P01 "terminating connection" while it restarts) would otherwise be
 * an unhandled 'error' event, which ends the process. Sequelize's own listener still retires
 * the connection.
 */
class GuardedClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}
const guardedPg = { ...pg, Client: GuardedClient };

/** Options shared with sequelize-cli (config/sequelize-cli.js). */
export function sequelizeOptions(config: Pick<Config, 'database'>): Options {
  const db = config.database;
  if (db.dialect === 'sqlite') {
    return {
      dialect: 'sqlite',
      storage: db.storage,
      // SQLite has one writer: a single connection avoids SQLITE_BUSY between pooled ones.
      pool: { max: 1, min: 0, idle: 10_000 },
      logging: false,
    };
  }
  return {
    dialect: 'postgres',
    dialectModule: guardedPg,
    // "20 + 10 overflow" in Sequelize's terms: up to pool+overflow connections; the first
    // `poolSize` stay open once opened (`min`), only the overflow is released after 10 s idle,
    // so a burst of joins does not make PostgreSQL fork fresh backends for every burst after
    // it. `evict` sweeps them, and pg marks broken connections so the pool's validate()
    // replaces them instead of handing them out.
    pool: { max: db.poolSize + db.poolOverflow, min: db.poolSize, idle: 10_000, acquire: 10_000, evict: 5_000 },
    dialectOptions: { keepAlive: true, connectionTimeoutMillis: 5_000, statement_timeout: 15_000, ...(db.tls ? { ssl: tlsOptions(db.tls) } : {}) },
    logging: false,
  };
}

/**
 * The pg driver's `ssl` option (Node's tls.connect options) for a libpq sslmode: `require`
 * encrypts without checking who answers; `verify-ca` checks the chain against the CA;
 * `verify-full` checks the host name in DATABASE_URL too.
 */
export function tlsOptions(tls: DatabaseTls): ConnectionOptions {
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  const ca = tls.ca === null ? {} : { ca: tls.ca };
  if (tls.mode === 'verify-ca') return { rejectUnauthorized: true, ...ca, checkServerIdentity: () => undefined };
  return { rejectUnauthorized: true, ...ca };
}

/** A TLS failure reaching PostgreSQL, said in the operator's terms (the driver's words alone rarely point at the setting). */
export function explainDatabaseError(err: unknown, config: Pick<Config, 'database'>): Error {
  const message = err instanceof Error ? err.message : String(err);
  const tls = config.database.tls;
  if (tls && /does not support SSL/i.test(message)) return new Error(`PostgreSQL does not accept TLS but DATABASE_URL asks for sslmode=${tls.mode}: ${message}`);
  if (tls && /certificate|altnames|self[- ]signed|SSL|TLS|unable to verify/i.test(message)) {
    const against = tls.caFile ? `the CA in ${tls.caFile}` : "the system's CAs (set PGSSLROOTCERT to the server's CA)";
    const check = tls.mode === 'verify-full' ? `${against} and the host name in DATABASE_URL` : against;
    return new Error(`TLS to PostgreSQL failed with sslmode=${tls.mode}, which checks the server certificate against ${check}: ${message}`);
  }
  return err instanceof Error ? err : new Error(message);
}

export function createDatabase(config: Pick<Config, 'database' | 'rootDir'>, logger: Logger): Database {
  const options = sequelizeOptions(config);
  if (config.database.dialect === 'sqlite' && config.database.storage && config.database.storage !== ':memory:') {
    fs.mkdirSync(path.dirname(config.database.storage), { recursive: true });
  }
  const sequelize = config.database.dialect === 'sqlite' ? new Sequelize(options) : new Sequelize(config.database.url, options);
  const models = initModels(sequelize);
  const log = logger.child({ component: 'db' });

  const umzug = new Umzug({
    migrations: {
      glob: ['migrations/*.js', { cwd: config.rootDir }],
      resolve: ({ name, path: file, context }) => {
        // sequelize-cli's migration files are CommonJS modules: required, not imported.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const migration = require(file!) as { up: MigrationStep; down: MigrationStep };
        return {
          name,
          up: async () => migration.up(context, Sequelize),
          down: async () => migration.down(context, Sequelize),
        };
      },
    },
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize }),
    logger: undefined,
  });

  /**
   * Replicas that start together must not race on migrations: on PostgreSQL the run holds a
   * transaction-scoped advisory lock, so the others wait, then find nothing pending.
   */
  async function migrate(): Promise<string[]> {
    try {
      return await migrateNow();
    } catch (err) {
      throw explainDatabaseError(err, config);
    }
  }

  async function migrateNow(): Promise<string[]> {
    const run = async () => (await umzug.up()).map((m) => m.name);
    const applied =
      config.database.dialect === 'postgres'
        ? await sequelize.transaction(async (transaction) => {
            await sequelize.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`, { transaction });
            return run();
          })
        : await run();
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    return applied;
  }

  return {
    sequelize,
    models,
    migrate,
    undoLast: async () => {
      await umzug.down();
    },
    ping: async () => {
      await sequelize.query('SELECT 1');
    },
    poolStats: () => {
      // PostgreSQL goes through sequelize-pool; SQLite keeps its one connection outside any pool.
      const pool = (sequelize.connectionManager as unknown as { pool?: Partial<PoolCounts> }).pool;
      if (config.database.dialect !== 'postgres' || typeof pool?.using !== 'number') return { inUse: 0, idle: 0, waiting: 0, max: 0 };
      return { inUse: pool.using, idle: pool.available ?? 0, waiting: pool.waiting ?? 0, max: pool.maxSize ?? 0 };
    },
    close: () => sequelize.close(),
  };
}
