/**
 * The one way an event reaches a session, whichever transport and node each listener is on:
 * an emit to the session's Socket.IO room, which the cluster adapter carries to every node
 * that holds a member, Socket.IO socket or raw /ws client alike (see RawHub).
 */
import { rooms } from '../cluster/names';
import type { ServerEventData, ServerEventName, ServerToClientEvents } from '../events';
import type { BroadcastOptions, Broadcaster } from '../services/ports';
import type { SeanceServer } from './socketio';

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
