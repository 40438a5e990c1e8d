/** Single-node presence (no REDIS_URL): everything lives in this process, which is all there is. */
import type { ParticipantView } from '../../events';
import { byJoinTime, type AdmitResult, type AdmitRules, type Holder, type Presence } from './types';

interface Entry {
  participant: ParticipantView;
  connections: Set<string>;
}

export class MemoryPresence implements Presence {
  private readonly sessions = new Map<string, Map<string, Entry>>();

  /** `nodeId`: the node every connection here is on (the holders this presence names). */
  constructor(private readonly nodeId = 'local') {}

  async admit(sessionId: string, candidate: ParticipantView, connectionId: string, maxUsers: number, { exclusive = false, maxConnections = Infinity }: AdmitRules = {}): Promise<AdmitResult> {
    let users = this.sessions.get(sessionId);
    if (!users) this.sessions.set(sessionId, (users = new Map<string, Entry>()));
    const existing = users.get(candidate.id);
    if (existing && exclusive) return { admitted: false, reason: 'USER_ID_TAKEN', holders: [...existing.connections].map((id) => ({ node: this.nodeId, connectionId: id })) };
    if (existing) {
      if (existing.connections.size >= maxConnections) return { admitted: false, reason: 'TOO_MANY_CONNECTIONS' };
      existing.connections.add(connectionId);
      return { admitted: true, participant: existing.participant, isNew: false };
    }
    if (users.size >= maxUsers) return { admitted: false, reason: 'SESSION_FULL' };
    users.set(candidate.id, { participant: candidate, connections: new Set([connectionId]) });
    return { admitted: true, participant: candidate, isNew: true };
  }

  async release(sessionId: string, userId: string, connectionId: string): Promise<ParticipantView | null> {
    const users = this.sessions.get(sessionId);
    const entry = users?.get(userId);
    if (!users || !entry || !entry.connections.delete(connectionId) || entry.connections.size > 0) return null;
    users.delete(userId);
    if (users.size === 0) this.sessions.delete(sessionId);
    return entry.participant;
  }

  async evict(sessionId: string, userId: string, holder: Holder): Promise<void> {
    const entry = this.sessions.get(sessionId)?.get(userId);
    // Every connection here is on this node: a holder on another is none of them.
    if (holder.node === this.nodeId && entry && entry.connections.size > 1) entry.connections.delete(holder.connectionId);
  }

  async list(sessionId: string): Promise<ParticipantView[]> {
    return [...(this.sessions.get(sessionId)?.values() ?? [])].map((e) => e.participant).sort(byJoinTime);
  }

  async count(sessionId: string): Promise<number> {
    return this.sessions.get(sessionId)?.size ?? 0;
  }

  async clear(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }

  onChange(): void {
    // Nothing changes behind a single node's back.
  }

  /** A single node is the only one alive: another NODE_ID is a past life of it. */
  async isNodeAlive(nodeId: string): Promise<boolean> {
    return nodeId === this.nodeId;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.sessions.clear();
  }
}
