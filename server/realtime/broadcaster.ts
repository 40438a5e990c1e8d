/**
 * The one way an event reaches a session, whichever transport and node each listener is on:
 * an emit to the session's Socket.IO room, which the cluster adapter carries to every node
 * that holds a member, Socket.IO socket or raw /ws client alike (see RawHub).
 */
import type { Server } from 'socket.io';
import { rooms } from '../cluster/names';
import type { ClientToServerEvents, ServerEventData, ServerEventName, ServerToClientEvents } from '../events';

export interface BroadcastOptions {
  /** Every connection of this participant is skipped ("everyone else"). */
  exceptUserId?: string;
}

export interface Broadcaster {
  toSession<E extends ServerEventName>(sessionId: string, event: E, data: ServerEventData<E>, opts?: BroadcastOptions): void;
  /** `session_ended` to everyone in the session on every node, then every connection of it closes (both transports). */
  endSession(sessionId: string, data: ServerEventData<'session_ended'>): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- socket.io's own default for the socket data type
export type SeanceIo = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, any>;

export function createBroadcaster(io: SeanceIo): Broadcaster {
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
