/**
 * The raw WebSocket edge (`/ws/{session_id}`) the existing web frontend speaks: JSON text
 * frames `{event, data, timestamp}`, identification in the first frame, the contract's close
 * codes, a 16 KiB frame limit and a 25 s heartbeat.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Config } from '../../config';
import { AppError, toPublicError, WS_CLOSE_CODE, WS_CLOSE_JOIN_TIMEOUT } from '../errors';
import type { ServerEventData, ServerEventName } from '../events';
import type { Logger } from '../logger';
import type { RequestPolicy } from '../requestPolicy';
import type { RateLimits } from '../services/rateLimits';
import type { Participation, RoomService } from '../services/rooms';
import type { RawClient, RawHub } from './rawHub';
import { corkUntilTickEnd, tcpSocketOf } from './writeCoalescing';

export const RAW_PATH = /^\/ws\/([^/?#]*)\/?$/;
const MAX_FRAME_BYTES = 16 * 1024;

export interface RawEdgeDeps {
  config: Pick<Config, 'realtime' | 'nodeId'>;
  rooms: RoomService;
  hub: RawHub;
  limits: RateLimits;
  policy: RequestPolicy;
  logger: Logger;
}

export interface RawEdge {
  /** Handles an HTTP upgrade for /ws/...; returns false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

export function createRawEdge(deps: RawEdgeDeps): RawEdge {
  const { rooms: roomService, hub, limits, policy, logger, config } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  const alive = new Map<WebSocket, boolean>();
  // The upgrade response names its node, like every HTTP reply: how an operator (and the
  // tests) see which node nginx picked for a session.
  wss.on('headers', (headers) => headers.push(`X-Seance-Node: ${config.nodeId}`));

  // One timer for every raw connection of this node: ping, and drop whoever missed the last pong.
  const heartbeat = setInterval(() => {
    for (const [ws, answered] of alive) {
      if (!answered) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, config.realtime.pingIntervalMs);
  heartbeat.unref();

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = RAW_PATH.exec(url.pathname);
    if (!match) return false;
    if (!policy.isOriginAllowed(req.headers.origin)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      let sessionId = match[1];
      try {
        sessionId = decodeURIComponent(match[1]);
      } catch {
        // A malformed escape is just an unknown session.
      }
      onConnection(ws, req, sessionId, url.searchParams.get('token') ?? undefined);
    });
    return true;
  }

  function onConnection(ws: WebSocket, req: IncomingMessage, sessionId: string, queryToken: string | undefined): void {
    const connectionId = randomUUID();
    const log = logger.child({ connection_id: connectionId, transport: 'ws' });
    let participation: Participation | null = null;
    let closed = false;
    alive.set(ws, true);
    ws.on('pong', () => alive.set(ws, true));

    const send = <E extends ServerEventName>(event: E, data: ServerEventData<E>) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, data, timestamp: new Date().toISOString() }));
    };
    const sendError = (err: AppError) => send('error', { code: err.code, message: err.message });
    const refuse = (err: unknown) => {
      const publicError = toPublicError(err);
      if (publicError.code === 'INTERNAL_ERROR') log.error({ err }, 'raw join failed');
      sendError(publicError);
      ws.close(WS_CLOSE_CODE[publicError.code] ?? 1008, publicError.code);
    };
    const client: RawClient = {
      userId: '',
      // A text frame even though the payload is a Buffer: the bytes were encoded once for everyone.
      sendFrame: (frame) => {
        if (ws.readyState !== ws.OPEN) return;
        corkUntilTickEnd(tcpSocketOf(ws));
        ws.send(frame, { binary: false });
      },
      close: (code, reason) => ws.close(code, reason),
    };

    const joinTimer = setTimeout(() => {
      sendError(new AppError('VALIDATION_ERROR', `No identification within ${config.realtime.joinTimeoutMs / 1000} s`));
      ws.close(WS_CLOSE_JOIN_TIMEOUT, 'identification timeout');
    }, config.realtime.joinTimeoutMs);

    const identify = async (frame: Record<string, unknown>) => {
      clearTimeout(joinTimer);
      const body = frame.event === 'join_session' ? frame.data : frame.event === undefined ? frame : null;
      if (body === null) throw new AppError('VALIDATION_ERROR', 'Identify first: {"name": "...", "user_id": "..."}');
      await limits.consume('connection', policy.clientAddress(req));
      const outcome = await roomService.join({ sessionId, body, token: queryToken }, connectionId, send);
      if (closed) {
        await roomService.leave(outcome.participation);
        return;
      }
      participation = outcome.participation;
      Object.assign(client, { userId: participation.participant.id });
      hub.add(sessionId, client);
      send('session_joined', outcome.welcome);
      replayRoster(send, outcome.welcome);
      roomService.announceJoin(outcome);
    };

    const handle = async (frame: Record<string, unknown>) => {
      const p = participation!;
      switch (frame.event) {
        case 'send_message':
          await roomService.sendMessage(p, frame.data);
          return;
        case 'typing':
          roomService.typing(p);
          return;
        case 'leave_session':
          ws.close(1000, 'left');
          return;
        case 'join_session':
          throw new AppError('INVALID_PAYLOAD', 'Already joined');
        default:
          if (typeof frame.event !== 'string') throw new AppError('INVALID_PAYLOAD', 'A frame needs an "event" string');
          throw new AppError('UNKNOWN_EVENT', `Unknown event ${JSON.stringify(frame.event.slice(0, 64))}`);
      }
    };

    // Frames are handled one at a time, in arrival order: the join completes before the
    // first message, and one sender's messages fan out in the order sent.
    let queue: Promise<void> = Promise.resolve();
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      const frame = parseFrame(raw, isBinary);
      queue = queue.then(async () => {
        if (closed) return;
        if (frame instanceof AppError) return sendError(frame);
        if (participation) {
          try {
            await handle(frame);
          } catch (err) {
            const publicError = toPublicError(err);
            if (publicError.code === 'INTERNAL_ERROR') log.error({ err }, 'raw frame failed');
            sendError(publicError);
          }
          return;
        }
        try {
          await identify(frame);
        } catch (err) {
          refuse(err);
        }
      });
    });

    ws.on('close', () => {
      closed = true;
      clearTimeout(joinTimer);
      alive.delete(ws);
      void queue.then(async () => {
        if (!participation) return;
        hub.remove(participation.sessionId, client);
        await roomService.leave(participation);
      });
    });
    ws.on('error', (err) => log.debug({ err }, 'raw socket error'));
  }

  return {
    handleUpgrade,
    close() {
      clearInterval(heartbeat);
      wss.close();
    },
  };
}

/**
 * Raw transport only: the existing frontend builds its list of people from `user_joined`
 * alone, so after `session_joined` a raw client gets one `user_joined` per participant
 * present, itself included. Socket.IO clients read `session_joined.users` instead.
 */
function replayRoster(send: <E extends ServerEventName>(event: E, data: ServerEventData<E>) => void, welcome: ServerEventData<'session_joined'>): void {
  const present = welcome.users.some((u) => u.id === welcome.you.id) ? welcome.users : [...welcome.users, welcome.you];
  for (const participant of present) send('user_joined', participant);
}

/** A JSON object, or the INVALID_PAYLOAD error to send back. */
function parseFrame(raw: RawData, isBinary: boolean): Record<string, unknown> | AppError {
  if (isBinary) return new AppError('INVALID_PAYLOAD', 'Frames must be JSON text');
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch {
    return new AppError('INVALID_PAYLOAD', 'Frames must be valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return new AppError('INVALID_PAYLOAD', 'A frame must be a JSON object');
  }
  return value as Record<string, unknown>;
}

