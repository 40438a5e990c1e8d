/**
 * The Socket.IO edge: the join happens in the handshake (a refusal is a `connect_error`
 * whose message is the code), then client events are handed to the RoomService.
 */
import type { Server, Socket } from 'socket.io';
import { AppError, toPublicError } from '../errors';
import { CLIENT_EVENTS, rooms, type ClientToServerEvents, type SendMessageAck, type ServerToClientEvents } from '../events';
import type { Logger } from '../logger';
import type { RequestPolicy } from '../requestPolicy';
import type { RateLimits } from '../services/rateLimits';
import type { JoinOutcome, RoomService } from '../services/rooms';

interface SocketData {
  outcome: JoinOutcome;
  /** Set once the 'connection' handler owns the participation (and its leave). */
  live: boolean;
}

export type SeanceServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type SeanceSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface SocketEdgeDeps {
  rooms: RoomService;
  limits: RateLimits;
  policy: RequestPolicy;
  logger: Logger;
}

const KNOWN_EVENTS = new Set<string>(CLIENT_EVENTS);

export function attachSocketHandlers(io: SeanceServer, deps: SocketEdgeDeps): void {
  const { rooms: roomService, limits, policy, logger } = deps;

  io.use(async (socket, next) => {
    try {
      await limits.consume('connection', policy.clientAddress(socket.request));
      const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
      if (auth.session_id === undefined) {
        throw new AppError('VALIDATION_ERROR', 'Invalid session_id', { session_id: "'session_id' is required" });
      }
      socket.data.outcome = await roomService.join(
        { sessionId: auth.session_id, body: auth },
        socket.id,
        (event, data) => (socket.emit as (ev: string, payload: unknown) => boolean)(event, data),
      );
      // A transport that closes before 'connection' makes socket.io drop the socket silently:
      // the seat taken above must still be given back.
      socket.conn.once('close', () => {
        if (!socket.data.live) void roomService.leave(socket.data.outcome.participation);
      });
      next();
    } catch (err) {
      const publicError = toPublicError(err);
      if (publicError.code === 'INTERNAL_ERROR') logger.error({ err }, 'socket.io join failed');
      const refusal = new Error(publicError.code) as Error & { data: unknown };
      refusal.data = { code: publicError.code, message: publicError.message };
      next(refusal);
    }
  });

  io.on('connection', (socket) => onConnection(socket));

  function onConnection(socket: SeanceSocket): void {
    const outcome = socket.data.outcome;
    const p = outcome.participation;
    socket.data.live = true;
    socket.join([rooms.session(p.sessionId), rooms.participant(p.sessionId, p.participant.id)]);
    socket.emit('session_joined', outcome.welcome);
    roomService.announceJoin(outcome);

    const fail = (err: unknown, ack?: (reply: SendMessageAck) => void) => {
      const publicError = toPublicError(err);
      if (publicError.code === 'INTERNAL_ERROR') logger.error({ err, session_id: p.sessionId, user_id: p.participant.id }, 'send_message failed');
      const error = { code: publicError.code, message: publicError.message };
      socket.emit('error', error);
      ack?.({ ok: false, error });
    };

    // One sender's messages are handled one after another, so they fan out in the order sent.
    let queue: Promise<void> = Promise.resolve();
    socket.on('send_message', (...args: unknown[]) => {
      // The acknowledgement, when there is one, is always the last argument.
      const ack = (typeof args.at(-1) === 'function' ? args.pop() : undefined) as ((reply: SendMessageAck) => void) | undefined;
      const payload = args[0];
      queue = queue.then(async () => {
        try {
          const message = await roomService.sendMessage(p, payload);
          ack?.({ ok: true, id: message.id });
        } catch (err) {
          fail(err, ack);
        }
      });
    });
    socket.on('typing', () => roomService.typing(p));
    socket.on('leave_session', () => socket.disconnect(true));
    socket.onAny((event: unknown) => {
      if (typeof event === 'string' && KNOWN_EVENTS.has(event)) return;
      socket.emit('error', { code: 'UNKNOWN_EVENT', message: `Unknown event ${JSON.stringify(String(event)).slice(0, 80)}` });
    });
    socket.on('disconnect', () => {
      void queue.then(() => roomService.leave(p));
    });
  }
}
