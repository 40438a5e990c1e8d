/**
 * The Redis connections of a clustered node. Publishing and subscribing need their own
 * connections; commands whose callers can do without Redis (presence reads, rate limits)
 * use one that fails fast instead of queueing while Redis is away.
 */
import Redis, { type RedisOptions } from 'ioredis';
import type { Logger } from './logger';

export interface RedisConnections {
  /** Socket.IO adapter publishing (queues while disconnected, flushes on return). */
  pub: Redis;
  /** Socket.IO adapter subscriptions. */
  sub: Redis;
  /** Presence and rate limits: errors at once while Redis is away. */
  command: Redis;
  isReady(): boolean;
  close(): Promise<void>;
}

export function createRedisConnections(url: string, logger: Logger): RedisConnections {
  const log = logger.child({ component: 'redis' });
  // Reconnect forever with a capped backoff: an outage must heal without a restart.
  const base: RedisOptions = { retryStrategy: (attempt) => Math.min(attempt * 200, 2_000), lazyConnect: false };
  const make = (name: string, extra: RedisOptions = {}) => {
    const client = new Redis(url, { ...base, connectionName: `seance-${name}`, ...extra });
    let down = false;
    client.on('error', (err) => {
      if (!down) log.warn({ err: { message: err.message }, connection: name }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) log.info({ connection: name }, 'redis connection restored');
      down = false;
    });
    return client;
  };
  // Auto-pipelining: the commands one message causes in one tick (publishes, limiter, presence)
  // leave in one write instead of one syscall each.
  const pub = make('pub', { maxRetriesPerRequest: null, enableAutoPipelining: true });
  const sub = make('sub', { maxRetriesPerRequest: null });
  const command = make('command', { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true });
  const all = [pub, sub, command];

  return {
    pub,
    sub,
    command,
    isReady: () => all.every((c) => c.status === 'ready'),
    async close() {
      await Promise.all(all.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}

/** Resolves once every connection is ready, or rejects after `timeoutMs`. */
export async function waitForRedis(connections: RedisConnections, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!connections.isReady()) {
    if (Date.now() > deadline) throw new Error('Redis is not reachable');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
