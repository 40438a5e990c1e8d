/**
 * Starts the real application in this process on 127.0.0.1:0 with real dependencies:
 * PostgreSQL (the run's shared server) or a temp SQLite file, and Redis when given.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../../config';
import { createApp, type App } from '../../server/app';
import { createDatabase, type Database } from '../../server/db';
import { createLogger, type Logger } from '../../server/logger';
import { createRedisConnections, waitForRedis, type RedisConnections } from '../../server/redis';
import { sharedPostgres } from './hooks';

export interface TestServer {
  url: string;
  wsUrl: string;
  port: number;
  app: App;
  db: Database;
  config: Config;
  redis: RedisConnections | null;
  close(): Promise<void>;
}

/**
 * The signing secret of test servers that name none (a clustered node must have one): random
 * for each run, so no test can lean on a secret it did not choose.
 */
export const TEST_JWT_SECRET = randomBytes(32).toString('hex');

export interface TestServerOptions {
  database?: 'postgres' | 'sqlite';
  redisUrl?: string;
  env?: Record<string, string>;
  /** Replaces the stdout logger (tests that read what the node logs). */
  logger?: Logger;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  let sqliteDir: string | null = null;
  let databaseUrl: string;
  if (opts.database === 'sqlite') {
    sqliteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-sqlite-'));
    databaseUrl = `sqlite:${path.join(sqliteDir, 'test.sqlite')}`;
  } else {
    databaseUrl = (await sharedPostgres()).url;
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    // Tests that watch the oracle take its time set this themselves.
    SPIRIT_ORACLE_DELAY_MS: '0',
    JWT_SECRET: TEST_JWT_SECRET,
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...opts.env,
  });
  const logger = opts.logger ?? createLogger(config);
  const db = createDatabase(config, logger);
  await db.migrate();
  const redis = config.redis ? createRedisConnections(config.redis, logger) : null;
  if (redis) await waitForRedis(redis, 10_000);
  const app = await createApp({ config, logger, db, redis });
  await new Promise<void>((resolve) => app.httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = app.httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    app,
    db,
    config,
    redis,
    async close() {
      await app.close();
      await redis?.close();
      await db.close();
      if (sqliteDir) fs.rmSync(sqliteDir, { recursive: true, force: true });
    },
  };
}
