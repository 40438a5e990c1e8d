/**
 * What the services need from the layers around them, defined here where they are used:
 * realtime/ implements the broadcaster (both transports, every node), ordering/ the session
 * subscriptions. Services depend on these interfaces only, never on those folders.
 */
import type { ServerEventData, ServerEventName } from '../events';

export interface BroadcastOptions {
  /** Every connection of this participant is skipped ("everyone else"). */
  exceptUserId?: string;
}

/** The one way an event reaches a session, whichever transport and node each listener is on. */
export interface Broadcaster {
  toSession<E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts?: BroadcastOptions): void;
  /** `session_ended` to everyone in the session on every node, then every connection of it closes (both transports). */
  endSession(sessionId: string, data: ServerEventData<'session_ended'>): void;
}

/** Keeps this node subscribed to a session while one of its connections is in it. */
export interface SessionSubscriptions {
  open(sessionId: string): Promise<void>;
  close(sessionId: string): void;
}
