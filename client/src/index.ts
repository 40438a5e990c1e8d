/**
 * @seance/client: join a Séance room from a frontend (or any program) over Socket.IO or the
 * raw `/ws/{id}` protocol, with the wire's types, resumes after every drop, and each stored
 * message handed on exactly once, in `seq` order.
 */
import { rawTransport } from './raw';
import { SeanceRoom, type ConnectOptions } from './room';
import { socketIoTransport } from './socketio';

export function connect(options: ConnectOptions): SeanceRoom {
  const transport = options.transport === 'ws' ? rawTransport : socketIoTransport;
  return new SeanceRoom(options, (room, join) => transport(options.url, room, join));
}

export { SeanceRoom, type ConnectOptions, type RoomEvents, type RoomStatus, type SentMessage } from './room';
export { SeanceError, type SeanceErrorCode, type SeanceErrorKind } from './errors';
export type { SeanceMessage } from './ordering';
export * from './events';
