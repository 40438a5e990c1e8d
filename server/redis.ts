/**
 * The Redis connections of a clustered node, to one server, to the master a Sentinel set
 * names, or to a Redis Cluster. Publishing and subscribing need their own connections;
 * commands whose callers can do without Redis (presence reads, rate limits) use one that
 * fails fast instead of queueing while Redis is away.
 *
 * The stores above this module do not care which it is: ioredis's Cluster speaks the same
 * command API as a single connection (it routes each command, script and sharded publish to
 * the shard of its key), so all three are handed out as `Redis`. What the stores must do for
 * a Cluster is keep every multi-key command inside one hash slot (see their key builders).
 */
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config';
import type { Logger } from './logger';

export interface RedisConnections {
  /** Which kind of Redis these connections reach. */
  mode: RedisTarget['mode'];
  /** Socket.IO adapter publishing (queues while disconnected, flushes on return). */
  pub: Redis;
  /** Socket.IO adapter subscriptions (sharded ones go to each channel's shard on a Cluster). */
  sub: Redis;
  /** Presence and rate limits: errors at once while Redis is away. */
  command: Redis;
  /** Every connection can serve commands (on Sentinel: a master is known and reached). */
  isReady(): boolean;
  close(): Promise<void>;
}

/** Reconnect forever with a capped backoff: an outage or a failover must heal without a restart. */
const retry = (attempt: number) => Math.min(attempt * 100, 1_000);

interface ConnectionRole {
  name: 'pub' | 'sub' | 'command';
  /** false: commands fail at once while disconnected instead of waiting. */
  queueOffline: boolean;
  autoPipelining: boolean;
}

const ROLES: ConnectionRole[] = [
  // No auto-pipelining for publishes: the adapter already sends one tick's publishes to a
  // channel as one message, and ioredis's auto-pipeline (a Pipeline object per tick, at most
  // one in flight per connection) made each publish wait for the previous one's reply, and kept
  // enough alive across young-generation collections to triple their pauses.
  { name: 'pub', queueOffline: true, autoPipelining: false },
  { name: 'sub', queueOffline: true, autoPipelining: false },
  // Auto-pipelining: the limiter's and presence's commands of one tick leave in one write.
  { name: 'command', queueOffline: false, autoPipelining: true },
];

function connect(target: RedisTarget, role: ConnectionRole): Redis {
  const common: RedisOptions = {
    connectionName: `seance-${role.name}`,
    retryStrategy: retry,
    enableOfflineQueue: role.queueOffline,
    maxRetriesPerRequest: role.queueOffline ? null : 1,
    enableAutoPipelining: role.autoPipelining,
  };
  switch (target.mode) {
    case 'single':
      return new Redis(target.url, common);
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: target.name,
        sentinelPassword: target.sentinelPassword ?? undefined,
        password: target.password ?? undefined,
        // A dead or demoted master closes our connections, and each reconnection asks the
        // sentinels for the master anew. (ioredis's failoverDetector is left off: when its
        // +switch-master arrives during such a reconnection it ends the connection for good.)
        sentinelRetryStrategy: retry,
      });
    case 'cluster': {
      const options: ClusterOptions = {
        redisOptions: { connectionName: common.connectionName, password: target.password ?? undefined, maxRetriesPerRequest: common.maxRetriesPerRequest },
        clusterRetryStrategy: retry,
        enableOfflineQueue: role.queueOffline,
        enableAutoPipelining: role.autoPipelining,
        // SSUBSCRIBE goes to the shard that owns each channel's slot (one connection per shard),
        // and those connections follow the slots when they move.
        shardedSubscribers: role.name === 'sub',
        // A shard that restarts or fails over answers MOVED/CLUSTERDOWN for a moment: retry soon.
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        retryDelayOnMoved: 0,
        slotsRefreshTimeout: 2_000,
      };
      return new Cluster(
        target.nodes.map((n) => ({ host: n.host, port: n.port })),
        options,
      ) as unknown as Redis;
    }
  }
}

/** `target` may be a plain `redis://` URL (tests and tools). */
export function createRedisConnections(target: RedisTarget | string, logger: Logger): RedisConnections {
  const resolved: RedisTarget = typeof target === 'string' ? { mode: 'single', url: target } : target;
  const log = logger.child({ component: 'redis', redis_mode: resolved.mode });
  const make = (role: ConnectionRole) => {
    const client = connect(resolved, role);
    let down = false;
    client.on('error', (err: Error) => {
      if (!down) log.warn({ err: { message: err.message }, connection: role.name }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) log.info({ connection: role.name }, 'redis connection restored');
      down = false;
    });
    return client;
  };
  const [pub, sub, command] = ROLES.map(make);
  const all = [pub, sub, command];

  return {
    mode: resolved.mode,
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
