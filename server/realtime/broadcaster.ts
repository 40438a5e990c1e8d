/**
 * The one way an event reaches a session, whichever transport and node each listener is on:
 * an emit to the session's Socket.IO room, which the Redis adapter carries to every node that
 * holds a member, Socket.IO socket or raw /ws client alike (see RawHub).
 */
import type { Server } from 'socket.io';
import { rooms, type ServerEventData, type ServerEventName } from '../events';

export interface BroadcastOptions {
  /** Every connection of this participant is skipped ("everyone else"). */
  exceptUserId?: string;
}

export interface Broadcaster {
  toSession<E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts?: BroadcastOptions): void;
  /** Disconnects every Socket.IO connection of the session on every node (raw clients close on `session_ended`). */
  disconnectSession(sessionId: string): void;
}

export function createBroadcaster(io: Server): Broadcaster {
  return {
    toSession(sessionId, event, data, opts = {}) {
      const target = opts.exceptUserId
        ? io.to(rooms.session(sessionId)).except(rooms.participant(sessionId, opts.exceptUserId))
        : io.to(rooms.session(sessionId));
      (target.emit as (ev: string, payload: unknown) => boolean)(event, data);
    },
    disconnectSession(sessionId) {
      io.in(rooms.session(sessionId)).disconnectSockets(true);
    },
  };
}
