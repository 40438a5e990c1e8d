/**
 * The bare floor the benchmark compares Séance against: one process of a minimal cluster
 * that does only the happy path of the contract. Socket.IO with the Redis adapter and a raw
 * `ws` endpoint on one HTTP server; join, `message_received` to the room, `spirit_thinking`
 * and a canned `spirit_response`. No database, no validation, no presence, no limits.
 * Never shipped: it exists so the benchmark can say what our features cost.
 *
 * Environment: PORT, HOST (default 127.0.0.1), REDIS_URL, NODE_ID, NODE_INDEX (0-63).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server } from 'socket.io';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const nodeId = process.env.NODE_ID ?? `floor-${process.pid}`;
const nodeIndex = Number(process.env.NODE_INDEX ?? 0);
const redisUrl = process.env.REDIS_URL;
if (!redisUrl) {
  process.stderr.write('floor: REDIS_URL is required\n');
  process.exit(1);
}

// Ids must not collide across nodes (the generator matches spirit replies by in_reply_to):
// the low 6 bits say which node made it.
let counter = 0;
const nextId = () => ++counter * 64 + nodeIndex;

// A typical oracle answer, with its per-character timings computed once.
const SPIRIT_TEXT = 'The veil is thin tonight. Ask again when the candle burns low.';
const SPIRIT_TIMINGS = Array.from(SPIRIT_TEXT, (c, i) => (i === 0 || c === ' ' ? 250 : '.!?'.includes(SPIRIT_TEXT[i - 1]) ? 300 : 120));
const SPIRIT_WORDS = SPIRIT_TEXT.split(/\s+/).length;

const pub = new Redis(redisUrl);
const sub = pub.duplicate();
const rawSub = pub.duplicate();

const httpServer = createServer(onRequest);
const io = new Server(httpServer, {
  serveClient: false,
  destroyUpgrade: false,
  perMessageDeflate: false,
  httpCompression: false,
});
io.adapter(createAdapter(pub, sub, { key: 'floor' }));

/** Raw connections of this node, per session. */
const rawClients = new Map<string, Set<WebSocket>>();
const subscriptions = new Map<string, Promise<unknown>>();
const RAW_CHANNEL = 'floor:raw:';

rawSub.on('message', (channel: string, message: string) => {
  // "<origin node>\n<frame>": frames from this node were already delivered locally.
  const cut = message.indexOf('\n');
  if (message.slice(0, cut) === nodeId) return;
  deliverRaw(channel.slice(RAW_CHANNEL.length), message.slice(cut + 1));
});

function deliverRaw(sessionId: string, frame: string): void {
  const clients = rawClients.get(sessionId);
  if (!clients) return;
  for (const ws of clients) ws.send(frame);
}

/** The one way an event reaches a session: Socket.IO room (all nodes) and raw clients (all nodes). */
function broadcast(sessionId: string, event: string, data: unknown): void {
  io.to(sessionId).emit(event, data);
  const frame = JSON.stringify({ event, data, timestamp: new Date().toISOString() });
  deliverRaw(sessionId, frame);
  void pub.publish(RAW_CHANNEL + sessionId, `${nodeId}\n${frame}`);
}

function onMessage(sessionId: string, userId: string, userName: string, message: string): number {
  const id = nextId();
  const timestamp = new Date().toISOString();
  broadcast(sessionId, 'message_received', { id, session_id: sessionId, user_id: userId, user_name: userName, message, timestamp });
  broadcast(sessionId, 'spirit_thinking', { session_id: sessionId, in_reply_to: id });
  broadcast(sessionId, 'spirit_response', {
    id: nextId(),
    session_id: sessionId,
    in_reply_to: id,
    message: SPIRIT_TEXT,
    word_count: SPIRIT_WORDS,
    letter_timings: SPIRIT_TIMINGS,
    audio_url: null,
    timestamp,
  });
  return id;
}

function welcome(sessionId: string, userId: string, name: string) {
  const now = new Date().toISOString();
  const you = { id: userId, name, joined_at: now };
  return {
    session: { id: sessionId, name: 'floor', created_at: now, max_users: 12, is_active: true },
    you,
    users: [you],
    messages: [],
  };
}

io.on('connection', (socket) => {
  const auth = socket.handshake.auth as { session_id: string; name: string; user_id?: string };
  const sessionId = auth.session_id;
  const userId = auth.user_id ?? randomUUID();
  void socket.join(sessionId);
  socket.emit('session_joined', welcome(sessionId, userId, auth.name));
  socket.on('send_message', (data: { message: string }, ack?: (reply: unknown) => void) => {
    const id = onMessage(sessionId, userId, auth.name, data.message);
    if (typeof ack === 'function') ack({ ok: true, id });
  });
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
httpServer.on('upgrade', (req, socket, head) => {
  const match = /^\/ws\/([^/?#]+)/.exec(req.url ?? '');
  if (!match) {
    // Socket.IO handles its own path; anything else is not ours.
    if (!(req.url ?? '').startsWith('/socket.io/')) socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onRaw(ws, match[1]));
});

function onRaw(ws: WebSocket, sessionId: string): void {
  let user: { id: string; name: string } | null = null;
  ws.on('message', (raw) => {
    const frame = JSON.parse((raw as Buffer).toString()) as { event?: string; data?: { message: string }; user_id?: string; name?: string };
    if (!user) {
      user = { id: frame.user_id ?? randomUUID(), name: frame.name ?? 'anonymous' };
      let clients = rawClients.get(sessionId);
      if (!clients) rawClients.set(sessionId, (clients = new Set()));
      clients.add(ws);
      let subscribed = subscriptions.get(sessionId);
      if (!subscribed) subscriptions.set(sessionId, (subscribed = rawSub.subscribe(RAW_CHANNEL + sessionId)));
      const joined = welcome(sessionId, user.id, user.name);
      // Joined only once remote frames for the session can reach this node.
      subscribed.then(
        () => ws.send(JSON.stringify({ event: 'session_joined', data: joined, timestamp: new Date().toISOString() })),
        () => ws.close(1011),
      );
      return;
    }
    if (frame.event === 'send_message' && frame.data) onMessage(sessionId, user.id, user.name, frame.data.message);
  });
  ws.on('close', () => {
    const clients = rawClients.get(sessionId);
    if (!clients?.delete(ws) || clients.size > 0) return;
    rawClients.delete(sessionId);
    subscriptions.delete(sessionId);
    void rawSub.unsubscribe(RAW_CHANNEL + sessionId);
  });
  ws.on('error', () => undefined);
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/health') {
    json(200, { status: 'healthy', redis: 'connected', node_id: nodeId, uptime_s: Math.round(process.uptime()), timestamp: new Date().toISOString() });
    return;
  }
  if (req.method === 'POST' && req.url === '/api/sessions') {
    // The body is read and ignored: the floor has no sessions to validate or store.
    req.resume();
    req.on('end', () => {
      const now = new Date().toISOString();
      json(201, {
        success: true,
        data: { id: randomUUID(), name: 'floor', created_at: now, max_users: 12, is_active: true },
        meta: { timestamp: now, request_id: randomUUID() },
      });
    });
    return;
  }
  json(404, { success: false, error: { code: 'NOT_FOUND', message: 'Not found' } });
}

httpServer.listen(port, host);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 3_000).unref();
  void io.close();
  httpServer.closeAllConnections();
  void Promise.allSettled([pub.quit(), sub.quit(), rawSub.quit()]).then(() => process.exit(0));
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
