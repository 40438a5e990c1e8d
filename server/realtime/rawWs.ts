/**
 * The raw WebSocket edge (`/ws/{session_id}`) the existing web frontend speaks: JSON text
 * frames `{event, data, timestamp}`, identification in the first frame, the contract's close
 * codes, a 16 KiB frame limit and a 25 s heartbeat. What a connection does once identified is
 * the connection core's (connection.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Config } from '../../config';
import { rawFrame } from '../cluster/names';
import { AppError, WS_CLOSE_CODE, WS_CLOSE_JOIN_TIMEOUT } from '../errors';
import type { ServerEventData, ServerEventName } from '../events';
import type { RequestPolicy } from '../requestPolicy';
import { Connection, type ConnectionCoreDeps } from './connection';
import { corkUntilTickEnd, tcpSocketOf } from './extensions/engineWrites';
import type { RawClient, RawHub } from './rawHub';
import { answerWithin } from './liveness';
import { closeIfSlowReader } from './slowReaders';

const RAW_PATH = /^\/ws\/([^/?#]*)\/?$/;
const MAX_FRAME_BYTES = 16 * 1024;

export interface RawEdgeDeps extends ConnectionCoreDeps {
  config: Pick<Config, 'realtime' | 'nodeId' | 'clients'>;
  hub: RawHub;
  policy: RequestPolicy;
}

export interface RawEdge {
  /** Handles an HTTP upgrade for /ws/...; returns false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

export function createRawEdge(deps: RawEdgeDeps): RawEdge {
  const { hub, policy, logger, config } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  /** Each connection's unanswered ping payload (null: it answered the last one). */
  const awaitedPong = new Map<WebSocket, Buffer | null>();
  // The upgrade response names its node, like every HTTP reply: how an operator (and the
  // tests) see which node nginx picked for a session.
  wss.on('headers', (headers) => headers.push(`X-Seance-Node: ${config.nodeId}`));

  // One timer for every raw connection of this node: ping, and drop whoever missed the last pong.
  // Each ping carries a fresh payload and only a pong echoing it counts, so a client that sends
  // pongs of its own accord (without reading our pings) is not kept alive by them.
  const heartbeat = setInterval(() => {
    for (const [ws, awaited] of awaitedPong) {
      if (awaited) {
        deps.metrics?.refused('missed_pong');
        ws.terminate();
        continue;
      }
      const payload = randomBytes(8);
      awaitedPong.set(ws, payload);
      ws.ping(payload);
    }
  }, config.realtime.pingIntervalMs);
  heartbeat.unref();

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = RAW_PATH.exec(url.pathname);
    if (!match) return false;
    if (!policy.isOriginAllowed(req.headers.origin, req.headers.host)) {
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
    awaitedPong.set(ws, null);
    ws.on('pong', (payload) => {
      const awaited = awaitedPong.get(ws);
      if (awaited && awaited.equals(payload)) awaitedPong.set(ws, null);
    });

    // Every send is followed by the slow-reader check: past the limit the connection is closed
    // (1008) and leaves its session at once, whatever the client does with the close.
    const checkBuffer = () => {
      const unsent = closeIfSlowReader(ws, config.clients.maxBufferBytes);
      if (unsent !== null) connection.closeSlowReader(unsent);
    };
    const send = <E extends ServerEventName>(event: E, data: ServerEventData<E>) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(rawFrame(event, data));
      checkBuffer();
    };
    const client: RawClient = {
      userId: '',
      // A text frame even though the payload is a Buffer: the bytes were encoded once for everyone.
      sendFrame: (frame) => {
        if (ws.readyState !== ws.OPEN) return;
        corkUntilTickEnd(tcpSocketOf(ws));
        ws.send(frame, { binary: false });
        checkBuffer();
      },
      close: (code, reason) => ws.close(code, reason),
    };
    const connection = new Connection(
      deps,
      {
        send,
        listen: (p) => {
          Object.assign(client, { userId: p.participant.id });
          hub.add(p.sessionId, client);
        },
        unlisten: (p) => hub.remove(p.sessionId, client),
        welcomed: (welcome) => replayRoster(send, welcome),
        end: () => ws.close(1000, 'left'),
        ping: (timeoutMs) => pingWithNonce(ws, timeoutMs),
        terminate: () => ws.terminate(),
      },
      connectionId,
      log,
    );

    try {
      connection.holdAddress(policy.clientAddress(req));
    } catch (err) {
      awaitedPong.delete(ws);
      send('error', { code: 'RATE_LIMITED', message: (err as AppError).message });
      ws.close(WS_CLOSE_CODE.RATE_LIMITED, 'RATE_LIMITED');
      return;
    }

    const joinTimer = setTimeout(() => {
      send('error', { code: 'VALIDATION_ERROR', message: `No identification within ${config.realtime.joinTimeoutMs / 1000} s` });
      ws.close(WS_CLOSE_JOIN_TIMEOUT, 'identification timeout');
    }, config.realtime.joinTimeoutMs);

    /** The first frame identifies the participant; a refusal is an error frame and the contract's close code. */
    const identify = async (frame: Record<string, unknown>) => {
      clearTimeout(joinTimer);
      try {
        const body = frame.event === 'join_session' ? frame.data : frame.event === undefined ? frame : null;
        if (body === null) throw new AppError('VALIDATION_ERROR', 'Identify first: {"name": "...", "user_id": "..."}');
        await connection.join(policy.clientAddress(req), { sessionId, body, token: queryToken });
        await connection.attachNow();
      } catch (err) {
        const error = err as AppError;
        send('error', { code: error.code, message: error.message });
        ws.close(WS_CLOSE_CODE[error.code] ?? 1008, error.code);
      }
    };

    /** One frame, in the connection's queue: frames are handled one at a time, in arrival order. */
    const receive = async (frame: Record<string, unknown> | AppError) => {
      if (connection.isClosed) return;
      if (frame instanceof AppError) return connection.rejectNow(frame);
      if (!connection.joined) return identify(frame);
      // What only a raw frame can get wrong: no event name, or a second identification.
      if (typeof frame.event !== 'string') return connection.rejectNow(new AppError('INVALID_PAYLOAD', 'A frame needs an "event" string'));
      if (frame.event === 'join_session') return connection.rejectNow(new AppError('INVALID_PAYLOAD', 'Already joined'));
      await connection.handleNow(frame.event, frame.data);
    };
    // Every frame after the identifying one spends the connection's event budget; over it a
    // frame is dropped unread: a flood is neither parsed nor queued.
    let identifying = true;
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      if (identifying || connection.admitEvent()) void connection.enqueue(() => receive(parseFrame(raw, isBinary)));
      identifying = false;
    });

    ws.on('close', () => {
      clearTimeout(joinTimer);
      awaitedPong.delete(ws);
      connection.close();
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

/**
 * Pings with a random payload and resolves true when the pong echoes it (RFC 6455: a pong
 * answers with the ping's payload; browsers do it by themselves): a pong nobody asked for,
 * or one answering another ping, is no sign that this one was read.
 */
function pingWithNonce(ws: WebSocket, timeoutMs: number): Promise<boolean> {
  if (ws.readyState !== ws.OPEN) return Promise.resolve(false);
  const nonce = randomBytes(16);
  const answered = answerWithin(ws, 'pong', (data: Buffer) => nonce.equals(data), timeoutMs);
  ws.ping(nonce);
  return answered;
}

/** A JSON object, or the INVALID_PAYLOAD error to send back. */
function parseFrame(raw: RawData, isBinary: boolean): Record<string, unknown> | AppError {
  if (isBinary) return new AppError('INVALID_PAYLOAD', 'Frames must be JSON text');
  let value: unknown;
  try {
    value = JSON.parse((raw as Buffer).toString());
  } catch {
    return new AppError('INVALID_PAYLOAD', 'Frames must be valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return new AppError('INVALID_PAYLOAD', 'A frame must be a JSON object');
  }
  return value as Record<string, unknown>;
}
