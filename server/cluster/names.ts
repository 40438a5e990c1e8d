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

/** Redis keys and channels. Values are part of the cluster's wire: change them only with a migration path. */
export const redisNames = {
  /** Prefix of the Socket.IO adapter's sharded channels: `seance#/#` + room + `#` (the previous release's names). */
  adapterPrefix: 'seance',
  presence: {
    users: (sessionId: string) => `seance:p:${sessionId}:users`,
    conns: (sessionId: string, userId: string) => `seance:p:${sessionId}:conns:${userId}`,
    nodeConns: (nodeId: string) => `seance:node:${nodeId}:conns`,
    alive: (nodeId: string) => `seance:node:${nodeId}:alive`,
    nodes: 'seance:nodes',
  },
  /** The lease of the node that runs the cluster's maintenance (idle sessions, retention). */
  maintenanceLease: 'seance:maintenance:lease',
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
