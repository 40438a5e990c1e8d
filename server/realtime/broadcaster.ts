/**
 * The one way an event reaches a session, whichever transport and node each listener is on:
 * an emit to the session's Socket.IO room, which the cluster adapter carries to every node
 * that holds a member, Socket.IO socket or raw /ws client alike (see RawHub).
 */
import { rooms } from '../cluster/names';
import type { ServerEventData, ServerEventName, ServerToClientEvents } from '../events';
import type { SeanceServer } from './socketio';

export interface BroadcastOptions {
  /** Every connection of this participant is skipped ("everyone else"). */
  exceptUserId?: string;
}

export interface Broadcaster {
  toSession<E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts?: BroadcastOptions): void;
  /** `session_ended` to everyone in the session on every node, then every connection of it closes (both transports). */
  endSession(sessionId: string, data: ServerEventData<'session_ended'>): void;
}

export function createBroadcaster(io: SeanceServer): Broadcaster {
  const emit = <E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts: BroadcastOptions = {}) => {
    const room = io.to(rooms.session(sessionId));
    const target = opts.exceptUserId ? room.except(rooms.participant(sessionId, opts.exceptUserId)) : room;
    target.emit(event, ...([data] as Parameters<ServerToClientEvents[E]>));
  };
  return {
    toSession: emit,
    endSession(sessionId, data) {
      emit(sessionId, 'session_ended', data);
      io.in(rooms.session(sessionId)).disconnectSockets(true);
    },
  };
}
