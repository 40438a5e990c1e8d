/**
 * The Socket.IO edge: the join happens in the handshake (a refusal is a `connect_error`
 * whose message is the code), then client events go to the connection core (connection.ts)
 * and acknowledgements carry its answer.
 */
import type { Socket as EngineSocket } from 'engine.io';
import type { Server, Socket } from 'socket.io';
import { AppError } from '../errors';
import type { ClientToServerEvents, SendMessageAck, ServerToClientEvents } from '../events';
import type { RequestPolicy } from '../requestPolicy';
import { rooms } from '../cluster/names';
import { Connection, type ConnectionCoreDeps } from './connection';
import { closeOnUnsolicitedPong } from './engineHeartbeat';
import { answerWithin } from './liveness';
import { watchEngineOutput } from './slowReaders';

interface SocketData {
  connection: Connection;
}

export type SeanceServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type SeanceSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface SocketEdgeDeps extends ConnectionCoreDeps {
  policy: RequestPolicy;
}

export function attachSocketHandlers(io: SeanceServer, deps: SocketEdgeDeps): void {
  const logger = deps.logger.child({ transport: 'socket.io' });

  io.use((socket, next) => void admit(socket, next));

  /** The handshake: the join, whose refusal becomes a `connect_error`. */
  async function admit(socket: SeanceSocket, next: (err?: Error) => void): Promise<void> {
    const connection = new Connection(
      deps,
      {
        send: (event, data) => socket.emit(event, ...([data] as Parameters<ServerToClientEvents[typeof event]>)),
        listen: (p) => void socket.join([rooms.session(p.sessionId), rooms.participant(p.sessionId, p.participant.id)]),
        // Socket.IO leaves every room on disconnect by itself.
        unlisten: () => undefined,
        end: () => void socket.disconnect(true),
        ping: (timeoutMs) => pingEngine(socket.conn, timeoutMs),
        terminate: () => void socket.disconnect(true),
      },
      socket.id,
      logger,
    );
    socket.data.connection = connection;
    // A transport that closes before 'connection' makes socket.io drop the socket silently:
    // the seat taken by the join must still be given back.
    socket.conn.once('close', () => connection.close());
    try {
      const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
      const address = deps.policy.clientAddress(socket.request);
      connection.holdAddress(address);
      if (auth.session_id === undefined) throw new AppError('VALIDATION_ERROR', 'Invalid session_id', { session_id: "'session_id' is required" });
      await connection.join(address, { sessionId: auth.session_id, body: auth });
      next();
    } catch (err) {
      // Refused: it holds nothing any more (its address slot goes back at once).
      connection.close();
      const refusal = new Error((err as AppError).code) as Error & { data: unknown };
      refusal.data = { code: (err as AppError).code, message: (err as AppError).message };
      next(refusal);
    }
  }

  io.on('connection', (socket: SeanceSocket) => {
    const connection = socket.data.connection;
    watchEngineOutput(socket.conn, deps.config.clients.maxBufferBytes, (unsent) => {
      connection.closeSlowReader(unsent);
      socket.disconnect(true);
    });
    closeOnUnsolicitedPong(socket.conn, () => connection.refuse('unsolicited_pong', 'connection closed: a pong nobody asked for'));
    void connection.attach();
    socket.onAny((event: unknown, ...args: unknown[]) => {
      // The acknowledgement, when there is one, is always the last argument.
      const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: SendMessageAck) => void) : undefined;
      if (!connection.admitEvent()) return ack?.({ ok: false, error: { code: 'RATE_LIMITED', message: 'Too many events; slow down' } });
      void connection.handle(event, args[0]).then((reply) => reply && ack?.(reply));
    });
    socket.on('disconnect', () => connection.close());
  });
}

/**
 * Sends an engine.io ping now (the regular one may be 25 s away) and resolves true on the next
 * pong. engine.io's pong carries no payload, so this is the best it can tell: a pong after this
 * ping. `sendPacket` is engine.io's own (checked at start, extensions/internals.ts).
 */
function pingEngine(conn: EngineSocket, timeoutMs: number): Promise<boolean> {
  const answered = answerWithin(conn, 'packet', (packet: { type: string }) => packet.type === 'pong', timeoutMs);
  (conn as unknown as { sendPacket(type: 'ping'): void }).sendPacket('ping');
  return answered;
}
