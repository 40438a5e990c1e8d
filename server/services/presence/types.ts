/**
 * Who is in a session. A participant is a distinct user_id; each of its connections is
 * tracked so that the participant leaves only when its last connection anywhere closes.
 */
import type { ParticipantView } from '../../events';

/** One connection that holds a participant: the node it is on and its id there. */
export interface Holder {
  node: string;
  connectionId: string;
}

export interface AdmitRules {
  exclusive?: boolean;
  maxConnections?: number;
}

export type AdmitResult =
  | { admitted: true; participant: ParticipantView; isNew: boolean }
  | { admitted: false; reason: 'SESSION_FULL' }
  /** The participant already holds `maxConnections` connections (everywhere). */
  | { admitted: false; reason: 'TOO_MANY_CONNECTIONS' }
  /** Only for an exclusive admission: the user id is connected right now, through these connections. */
  | { admitted: false; reason: 'USER_ID_TAKEN'; holders: Holder[] };

/** Presence changes nobody's own connection caused (a dead node reaped, a resync after an outage). */
export interface PresenceChange {
  sessionId: string;
  participant: ParticipantView;
  kind: 'joined' | 'left';
}

export interface Presence {
  /**
   * Atomically admits a connection: a new participant only below maxUsers; an existing one
   * while it holds fewer than `maxConnections` connections (default: no cap), unless
   * `exclusive`, which refuses it with the connections that hold it.
   */
  admit(sessionId: string, candidate: ParticipantView, connectionId: string, maxUsers: number, rules?: AdmitRules): Promise<AdmitResult>;
  /** Forgets one connection of a participant, on whichever node (it was found dead); never the participant's last. */
  evict(sessionId: string, userId: string, holder: Holder): Promise<void>;
  /** Returns the participant when this was its last connection (so `user_left` is due), else null. */
  release(sessionId: string, userId: string, connectionId: string): Promise<ParticipantView | null>;
  list(sessionId: string): Promise<ParticipantView[]>;
  count(sessionId: string): Promise<number>;
  /** Forgets everyone in an ended session (their connections are being closed). */
  clear(sessionId: string): Promise<void>;
  onChange(listener: (change: PresenceChange) => void): void;
  /**
   * False once the node's heartbeat is gone (it died, or it left presence while draining). True
   * when in doubt (Redis away, or just back and the others not yet beating again). Never rejects.
   */
  isNodeAlive(nodeId: string): Promise<boolean>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Oldest first, so `users` reads in joining order. */
export const byJoinTime = (a: ParticipantView, b: ParticipantView) => (a.joined_at < b.joined_at ? -1 : a.joined_at > b.joined_at ? 1 : a.id.localeCompare(b.id));
