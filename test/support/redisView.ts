/**
 * Direct views of a test cluster's Redis, whichever kind it runs on: the connection to the server
 * that holds a key (CLIENT PAUSE, SSUBSCRIBE spies and PUBSUB SHARDNUMSUB act per server) and,
 * on a Redis Cluster, which shard that is.
 */
import Redis from 'ioredis';
import type { ClusterHandle } from '../../harness/cluster';
import { redisNames, rooms } from '../../server/cluster/names';
import { createSession } from './factories';

export interface RedisView {
  /** The sharded Pub/Sub channel of a session's room (on a Redis Cluster, with the session id as hash tag). */
  channelOf(sessionId: string): string;
  /** A plain connection to the Redis server that holds `key` (opened once, closed by close()). */
  serverFor(key: string): Promise<Redis>;
  /** The shard index of `key` on a Redis Cluster; 0 on one server. */
  shardOf(key: string): Promise<number>;
  shardCount: number;
  close(): void;
}

export function redisView(cluster: ClusterHandle): RedisView {
  const open = new Map<number, Redis>();
  const connection = (port: number) => {
    let client = open.get(port);
    if (!client) {
      client = new Redis({ host: '127.0.0.1', port });
      open.set(port, client);
    }
    return client;
  };
  const shards = cluster.redisCluster?.shards;
  return {
    channelOf: (sessionId) => `${redisNames.adapterPrefix}#/#${cluster.redisCluster ? redisNames.clusterSessionChannelRoom(sessionId) : rooms.session(sessionId)}#`,
    shardCount: shards?.length ?? 1,
    shardOf: async (key) => (cluster.redisCluster ? cluster.redisCluster.shardOf(key) : 0),
    serverFor: async (key) => {
      if (cluster.redisCluster) return connection(shards![await cluster.redisCluster.shardOf(key)].port);
      if (cluster.redisSentinel) return connection(await cluster.redisSentinel.masterPort());
      return connection(cluster.redis.port);
    },
    close: () => {
      for (const client of open.values()) client.disconnect();
      open.clear();
    },
  };
}

/** A new session whose room channel lives on `shard` of the Redis Cluster (any session on one Redis). */
export async function sessionOnShard(view: RedisView, baseUrl: string, shard: number, overrides: Record<string, unknown> = {}): Promise<any> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const session = await createSession(baseUrl, overrides);
    if ((await view.shardOf(view.channelOf(session.id))) === shard) return session;
  }
  throw new Error(`no session landed on shard ${shard} in 60 tries`);
}
