/**
 * Every name the nodes of a cluster must agree on, in one place: Socket.IO room names, Redis
 * keys and channels, and the raw WebSocket frame envelope. Two nodes that disagree on one of
 * these silently stop hearing each other, so nothing else spells them out.
 */

/** Socket.IO rooms: a session's room, and one per participant (for "everyone else"). */
export const rooms = {
  session: (sessionId: string) => `session:${sessionId}`,
  participant: (sessionId: string, userId: string) => `session:${sessionId}:user:${userId}`,
  /** The session id of a session room (not of a participant room), or null. */
  sessionOf: (room: string): string | null => (room.startsWith('session:') && room.indexOf(':', 8) === -1 ? room.slice(8) : null),
};

/**
 * Redis keys and channels. Values are part of the cluster's wire: change them only with a migration path.
 * On a Redis Cluster every multi-key script must stay in one hash slot: a session's keys carry
 * its id as hash tag `{S}` (as its room does), the nodes' own keys the tag `{nodes}`.
 */
export const redisNames = {
  /** Prefix of the Socket.IO adapter's sharded channels: `seance#/#` + room + `#`. */
  adapterPrefix: 'seance',
  /**
   * On a Redis Cluster only, a session room's channel names the session as hash tag
   * (`seance#/#session:{S}#`): it lives on the shard of the session's keys, so a shard that is
   * down affects its own sessions only, wholly. (One Redis and Sentinel keep the previous
   * release's channel names, so both releases hear each other during a rolling upgrade.)
   */
  clusterSessionChannelRoom: (sessionId: string) => `session:{${sessionId}}`,
  presence: {
    users: (sessionId: string) => `seance:p:{${sessionId}}:users`,
    conns: (sessionId: string, userId: string) => `seance:p:{${sessionId}}:conns:${userId}`,
    /** One node's connections in one session: how a node notices that the session's shard lost them. */
    nodeInSession: (sessionId: string, nodeId: string) => `seance:p:{${sessionId}}:node:${nodeId}`,
    nodeConns: (nodeId: string) => `seance:{nodes}:conns:${nodeId}`,
    alive: (nodeId: string) => `seance:{nodes}:alive:${nodeId}`,
    nodes: 'seance:{nodes}',
  },
  /** A node's channel for liveness probes of its connections (realtime/liveness.ts). */
  liveness: (nodeId: string) => `seance:liveness:${nodeId}`,
  /** The lease of the node that runs the cluster's maintenance (idle sessions, retention). */
  maintenanceLease: 'seance:maintenance:lease',
  /** The lease of the node that answers the questions owed by nodes that are gone. */
  answersLease: 'seance:answers:lease',
  /** The admin UI's login sessions, shared by every node. */
  adminUiPrefix: 'seance:admin-ui',
  rateLimits: {
    /** rate-limiter-flexible's key prefix of one limit. */
    limiterPrefix: (limit: string) => `seance:rl:${limit}`,
    leaseHolder: (key: string) => `seance:rl:lease:${key}`,
    leaseChannel: (nodeId: string) => `seance:rl:lease-node:${nodeId}`,
  },
};

/** A raw WebSocket server frame: `{event, data, timestamp}` as JSON text. */
export function rawFrame(event: string, data: unknown): string {
  return JSON.stringify({ event, data, timestamp: new Date().toISOString() });
}

/** The close of every connection of an ended session: a normal closure, the séance is over. */
export const SESSION_ENDED_CLOSE = { code: 1000, reason: 'session ended' } as const;
