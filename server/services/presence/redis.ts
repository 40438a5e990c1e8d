/**
 * Cluster-wide presence in Redis. Admission and release are Lua scripts, so concurrent joins
 * on different nodes cannot overfill a session, nor give a participant more connections than
 * MAX_CONNECTIONS_PER_PARTICIPANT. Each node refreshes a heartbeat key; a node
 * whose key expired (SIGKILL, power loss) is reaped by whichever live node claims it first,
 * which releases its connections and reports the participants that left.
 *
 * Keys (one session `S`, one user `U`, one node `N`; named in cluster/names.ts):
 *   seance:p:{S}:users        HASH  U -> participant JSON
 *   seance:p:{S}:conns:U      SET   "N/connectionId"
 *   seance:p:{S}:node:N       SET   "N/connectionId"      (N's connections in S: N notices when S's shard lost them)
 *   seance:{nodes}:conns:N    SET   "S/U/connectionId"   (what to release if N dies)
 *   seance:{nodes}:alive:N    STRING with a TTL           (N's heartbeat)
 *   seance:{nodes}            SET   of node ids
 *
 * On a Redis Cluster a script may only touch keys of one hash slot: a session's keys share the
 * hash tag `{S}`, so its scripts run on the shard that owns it, and the node's own record of its
 * connections is written beside the script, not in it. That record is written before admission
 * and cleared after release, so a node that dies in between leaves nothing a reaper would miss
 * (releasing a connection twice is harmless: the script only acts on a connection it holds).
 * The nodes' own keys share the tag `{nodes}`: a shard that restarts empty loses all of them or
 * none, so no node is ever taken for dead because its heartbeat alone was lost.
 */
import type Redis from 'ioredis';
import { redisNames } from '../../cluster/names';
import type { ParticipantView } from '../../events';
import type { Logger } from '../../logger';
import { byJoinTime, type AdmitResult, type AdmitRules, type Holder, type Presence, type PresenceChange } from './types';

const ADMIT = `
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing and ARGV[5] == '1' then return {2, table.concat(redis.call('SMEMBERS', KEYS[2]), '\\n')} end
if existing and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[6]) then return {-2, ''} end
if not existing then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {-1, ''} end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
if existing then return {0, existing} end
return {1, ARGV[2]}`;

const RELEASE = `
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return false end
if redis.call('SCARD', KEYS[2]) == 0 then
  local participant = redis.call('HGET', KEYS[1], ARGV[1])
  if participant then
    redis.call('HDEL', KEYS[1], ARGV[1])
    return participant
  end
end
return false`;

// A dead holder's connection goes, but never a participant's last (that is a leave, its node's to announce).
const EVICT = `
if redis.call('SCARD', KEYS[2]) <= 1 then return 0 end
redis.call('SREM', KEYS[3], ARGV[1])
return redis.call('SREM', KEYS[2], ARGV[1])`;

interface LocalConnection {
  sessionId: string;
  participant: ParticipantView;
}

type ScriptedRedis = Redis & {
  seanceAdmit(users: string, conns: string, nodeInSession: string, uid: string, json: string, conn: string, max: number, exclusive: '0' | '1', maxConnections: number): Promise<[number, string]>;
  seanceEvict(users: string, conns: string, nodeInSession: string, conn: string): Promise<number>;
  seanceRelease(users: string, conns: string, nodeInSession: string, uid: string, conn: string): Promise<string | null>;
};

const presenceKeys = redisNames.presence;

const NO_LIMIT = 1_000_000;

/** A member of a participant's connection set, `node/connectionId` (node ids have no '/'). */
function holderOf(member: string): Holder {
  const slash = member.indexOf('/');
  return { node: member.slice(0, slash), connectionId: member.slice(slash + 1) };
}

/** `work`, or a rejection once `ms` have passed (the command itself goes on). */
function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export class RedisPresence implements Presence {
  private readonly redis: ScriptedRedis;
  private readonly listeners: Array<(change: PresenceChange) => void> = [];
  /** This node's own connections: what it re-registers after a Redis restart or a false reap. */
  private readonly local = new Map<string, LocalConnection>();
  /** Connections being admitted right now. */
  private readonly admitting = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private beating = false;
  private beatStarted = 0;
  /** No node is reaped before this: after Redis trouble (a restart, a failover) others need a beat to renew. */
  private reapNotBefore = 0;

  constructor(
    redis: Redis,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {
    this.redis = redis as ScriptedRedis;
    this.redis.defineCommand('seanceAdmit', { numberOfKeys: 3, lua: ADMIT });
    this.redis.defineCommand('seanceRelease', { numberOfKeys: 3, lua: RELEASE });
    this.redis.defineCommand('seanceEvict', { numberOfKeys: 3, lua: EVICT });
    // Every node lost Redis too, and their heartbeats may have expired meanwhile: give them a TTL.
    this.redis.on('ready', () => this.holdReaping());
  }

  /** No node is taken for dead for one TTL from now: the others get the time to beat again. */
  private holdReaping(): void {
    this.reapNotBefore = Date.now() + this.ttlMs;
  }

  private static usersKey = presenceKeys.users;
  private static connsKey = presenceKeys.conns;
  private static nodeConnsKey = presenceKeys.nodeConns;
  private static aliveKey = presenceKeys.alive;
  private static readonly nodesKey = presenceKeys.nodes;

  async admit(sessionId: string, candidate: ParticipantView, connectionId: string, maxUsers: number, rules: AdmitRules = {}): Promise<AdmitResult> {
    // Recorded for this node before it is admitted: a resync meanwhile must not take it for stale.
    this.admitting.add(connectionId);
    try {
      const result = await this.runAdmit(this.nodeId, sessionId, candidate, connectionId, maxUsers, rules);
      if (result.admitted) this.local.set(connectionId, { sessionId, participant: result.participant });
      return result;
    } finally {
      this.admitting.delete(connectionId);
    }
  }

  async release(sessionId: string, userId: string, connectionId: string): Promise<ParticipantView | null> {
    this.local.delete(connectionId);
    return this.runRelease(this.nodeId, sessionId, userId, connectionId);
  }

  async evict(sessionId: string, userId: string, holder: Holder): Promise<void> {
    const member = `${holder.node}/${holder.connectionId}`;
    const evicted = await this.redis.seanceEvict(RedisPresence.usersKey(sessionId), RedisPresence.connsKey(sessionId, userId), presenceKeys.nodeInSession(sessionId, holder.node), member);
    if (evicted) await this.redis.srem(RedisPresence.nodeConnsKey(holder.node), `${sessionId}/${userId}/${holder.connectionId}`);
  }

  async list(sessionId: string): Promise<ParticipantView[]> {
    const values = await this.redis.hvals(RedisPresence.usersKey(sessionId));
    return values.map((v) => JSON.parse(v) as ParticipantView).sort(byJoinTime);
  }

  async count(sessionId: string): Promise<number> {
    return this.redis.hlen(RedisPresence.usersKey(sessionId));
  }

  async clear(sessionId: string): Promise<void> {
    for (const [connectionId, conn] of this.local) if (conn.sessionId === sessionId) this.local.delete(connectionId);
    const [users, nodes] = await Promise.all([this.redis.hkeys(RedisPresence.usersKey(sessionId)), this.redis.smembers(RedisPresence.nodesKey)]);
    await this.redis.del(RedisPresence.usersKey(sessionId), ...users.map((u) => RedisPresence.connsKey(sessionId, u)), ...nodes.map((n) => presenceKeys.nodeInSession(sessionId, n)));
  }

  onChange(listener: (change: PresenceChange) => void): void {
    this.listeners.push(listener);
  }

  async isNodeAlive(nodeId: string): Promise<boolean> {
    if (nodeId === this.nodeId || Date.now() < this.reapNotBefore || this.redis.status !== 'ready') return true;
    try {
      return (await within(this.redis.exists(RedisPresence.aliveKey(nodeId)), this.beatIntervalMs())) === 1;
    } catch {
      return true;
    }
  }

  async start(): Promise<void> {
    // A node restarted under the same NODE_ID first releases what its previous life left behind.
    await this.resync();
    await this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat(), this.beatIntervalMs());
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try {
      await this.redis.multi().srem(RedisPresence.nodesKey, this.nodeId).del(RedisPresence.aliveKey(this.nodeId)).exec();
    } catch (err) {
      this.logger.warn({ err }, 'presence: could not deregister node');
    }
  }

  /**
   * Refreshes this node's heartbeat and reaps nodes whose heartbeat expired. A beat is bounded
   * by its interval: a command stuck on an unreachable shard must not stop this node's own
   * heartbeat, nor let it reap others from a view that went stale meanwhile.
   */
  private async heartbeat(): Promise<void> {
    // A beat stuck for a TTL (a command that never came back) no longer holds the next ones up.
    if ((this.beating && Date.now() - this.beatStarted < this.ttlMs) || this.redis.status !== 'ready') return;
    this.beating = true;
    const started = (this.beatStarted = Date.now());
    const budget = this.beatIntervalMs();
    const bounded = <T>(work: Promise<T>) => within(work, Math.max(0, started + budget - Date.now()));
    try {
      const previous = await bounded(this.redis.set(RedisPresence.aliveKey(this.nodeId), '1', 'PX', this.ttlMs, 'GET'));
      await bounded(this.redis.sadd(RedisPresence.nodesKey, this.nodeId));
      // Our key vanished (Redis restarted, or another node took us for dead), or a session we
      // serve lost its participants (its Redis Cluster shard restarted): put our truth back.
      const lost = await bounded(this.lostSessions());
      if (this.timer && (previous === null || lost.size > 0)) await this.resync(lost);
      // Whatever lost our heartbeat (a restarted Redis or shard, a failover) may have lost the others'.
      if (previous === null || Date.now() - started > budget) this.holdReaping();
      if (Date.now() < this.reapNotBefore) return;
      const nodes = await bounded(this.redis.smembers(RedisPresence.nodesKey));
      for (const node of nodes) {
        if (node === this.nodeId || (await bounded(this.redis.exists(RedisPresence.aliveKey(node))))) continue;
        // SREM answers 1 to exactly one claimer: only that node reaps.
        if ((await bounded(this.redis.srem(RedisPresence.nodesKey, node))) === 1) await this.reap(node);
      }
    } catch (err) {
      // If we could not beat, the other nodes may not have either: none is reaped for a TTL.
      this.holdReaping();
      this.logger.warn({ err: { message: (err as Error).message } }, 'presence heartbeat failed');
    } finally {
      if (this.beatStarted === started) this.beating = false;
    }
  }

  private beatIntervalMs(): number {
    return Math.max(200, Math.floor(this.ttlMs / 3));
  }

  /** Sessions this node has connections in that Redis no longer knows it has (their shard restarted empty). */
  private async lostSessions(): Promise<Set<string>> {
    const sessions = [...new Set([...this.local.values()].map((c) => c.sessionId))];
    const present = await Promise.all(sessions.map((s) => this.redis.exists(presenceKeys.nodeInSession(s, this.nodeId))));
    return new Set(sessions.filter((_, i) => present[i] === 0));
  }

  private async reap(deadNode: string): Promise<void> {
    const members = await this.redis.smembers(RedisPresence.nodeConnsKey(deadNode));
    this.logger.warn({ dead_node: deadNode, connections: members.length }, 'presence: reaping a dead node');
    for (const member of members) {
      const [sessionId, userId, connectionId] = member.split('/');
      const left = await this.runRelease(deadNode, sessionId, userId, connectionId);
      if (left) this.emit({ sessionId, participant: left, kind: 'left' });
    }
    await this.redis.del(RedisPresence.nodeConnsKey(deadNode));
  }

  /** Makes Redis agree with this node's own connections: drops stale ones, restores missing ones (all of those in `lost` sessions). */
  private async resync(lost: ReadonlySet<string> = new Set()): Promise<void> {
    const recorded = new Set(await this.redis.smembers(RedisPresence.nodeConnsKey(this.nodeId)));
    for (const member of recorded) {
      const [sessionId, userId, connectionId] = member.split('/');
      if (this.local.has(connectionId) || this.admitting.has(connectionId)) continue;
      const left = await this.runRelease(this.nodeId, sessionId, userId, connectionId);
      if (left) this.emit({ sessionId, participant: left, kind: 'left' });
    }
    for (const [connectionId, conn] of this.local) {
      if (recorded.has(`${conn.sessionId}/${conn.participant.id}/${connectionId}`) && !lost.has(conn.sessionId)) continue;
      const result = await this.runAdmit(this.nodeId, conn.sessionId, conn.participant, connectionId, NO_LIMIT);
      if (result.admitted && result.isNew) this.emit({ sessionId: conn.sessionId, participant: result.participant, kind: 'joined' });
    }
  }

  private async runAdmit(
    node: string,
    sessionId: string,
    candidate: ParticipantView,
    connectionId: string,
    maxUsers: number,
    { exclusive = false, maxConnections = NO_LIMIT }: AdmitRules = {},
  ): Promise<AdmitResult> {
    const nodeMember = `${sessionId}/${candidate.id}/${connectionId}`;
    // The node's record first: if this node dies before admission, a reaper finds nothing to undo.
    await this.redis.sadd(RedisPresence.nodeConnsKey(node), nodeMember);
    const [status, json] = await this.redis.seanceAdmit(
      RedisPresence.usersKey(sessionId),
      RedisPresence.connsKey(sessionId, candidate.id),
      presenceKeys.nodeInSession(sessionId, node),
      candidate.id,
      JSON.stringify(candidate),
      `${node}/${connectionId}`,
      maxUsers,
      exclusive ? '1' : '0',
      maxConnections,
    );
    if (status === -1 || status === -2 || status === 2) await this.redis.srem(RedisPresence.nodeConnsKey(node), nodeMember);
    if (status === -1) return { admitted: false, reason: 'SESSION_FULL' };
    if (status === -2) return { admitted: false, reason: 'TOO_MANY_CONNECTIONS' };
    if (status === 2) return { admitted: false, reason: 'USER_ID_TAKEN', holders: json ? json.split('\n').map(holderOf) : [] };
    return { admitted: true, participant: JSON.parse(json) as ParticipantView, isNew: status === 1 };
  }

  private async runRelease(node: string, sessionId: string, userId: string, connectionId: string): Promise<ParticipantView | null> {
    const json = await this.redis.seanceRelease(
      RedisPresence.usersKey(sessionId),
      RedisPresence.connsKey(sessionId, userId),
      presenceKeys.nodeInSession(sessionId, node),
      userId,
      `${node}/${connectionId}`,
    );
    // The node's record last: a node that dies before this is reaped, and the release repeats harmlessly.
    await this.redis.srem(RedisPresence.nodeConnsKey(node), `${sessionId}/${userId}/${connectionId}`);
    return json ? (JSON.parse(json) as ParticipantView) : null;
  }

  private emit(change: PresenceChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.logger.error({ err }, 'presence listener failed');
      }
    }
  }
}
