/**
 * Process entry: read config, connect, migrate, build the app, listen, and shut down
 * gracefully on SIGTERM/SIGINT.
 */
import { ConfigError, loadConfig } from '../config';
import { createApp } from './app';
import { createDatabase } from './db';
import { createLogger } from './logger';
import { createRedisConnections, waitForRedis } from './redis';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config);
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  if (!config.auth.jwtSecret) logger.info({ kept_in: config.auth.jwtSecretFile ?? 'memory' }, "JWT_SECRET is not set: tokens are signed with this node's own random secret, kept with its data");

  const db = createDatabase(config, logger);
  if (config.database.migrateOnStart) await db.migrate();
  const redis = config.redis ? createRedisConnections(config.redis, logger) : null;
  if (redis) await waitForRedis(redis, 30_000);

  const app = await createApp({ config, logger, db, redis });
  await new Promise<void>((resolve) => app.httpServer.listen(config.port, config.host, resolve));
  const address = app.httpServer.address();
  logger.info(
    { port: typeof address === 'object' && address ? address.port : config.port, database: config.database.dialect, redis: Boolean(redis), spirit: config.spirit.provider },
    'séance listening',
  );

  const stop = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    // The drain stops waiting at SHUTDOWN_TIMEOUT_MS; this only catches a close that hangs after it.
    setTimeout(() => process.exit(1), config.hardExitMs).unref();
    try {
      await app.close();
      await redis?.close();
      await db.close();
      logger.info('shut down cleanly');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`séance failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
