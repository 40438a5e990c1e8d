/**
 * The one way an event reaches a session, whichever transport and node each listener is on:
 * Socket.IO rooms through the Redis adapter, raw /ws clients through the RawHub.
 */
import type { Server } from 'socket.io';
import { rooms, type ServerEventData, type ServerEventName } from '../events';
import type { RawHub } from './rawHub';

export interface BroadcastOptions {
  /** Every connection of this participant is skipped ("everyone else"). */
  exceptUserId?: string;
}

export interface Broadcaster {
  toSession<E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts?: BroadcastOptions): void;
  /** Disconnects every connection of the session on every node. */
  disconnectSession(sessionId: string): void;
}

export function createBroadcaster(io: Server, rawHub: RawHub): Broadcaster {
  return {
    toSession(sessionId, event, data, opts = {}) {
      const target = opts.exceptUserId
        ? io.to(rooms.session(sessionId)).except(rooms.participant(sessionId, opts.exceptUserId))
        : io.to(rooms.session(sessionId));
      (target.emit as (ev: string, payload: unknown) => boolean)(event, data);
      rawHub.publish(sessionId, event, data, opts.exceptUserId);
    },
    disconnectSession(sessionId) {
      io.in(rooms.session(sessionId)).disconnectSockets(true);
      rawHub.closeSession(sessionId);
    },
  };
}
