/**
 * The bare floor the benchmark compares Séance against: one process of a minimal cluster
 * that does only the happy path of the contract, the way a bare Socket.IO + Redis adapter
 * cluster would. Socket.IO with @socket.io/redis-adapter and a raw `ws` endpoint on one HTTP
 * server; join, `user_joined` / `user_left`, `message_received` to the room, `spirit_thinking`
 * and a short canned `spirit_response`. No database, no validation, no presence, no limits.
 * Never shipped: it exists so the benchmark can say what our features cost.
 *
 * One path between nodes, whatever the transports: `io.to(room).emit()` publishes the event
 * once through the adapter. Raw clients ride along: the adapter below applies every broadcast
 * it delivers here (emitted here, or read from Redis) to this node's raw members of the room
 * as well, with the frame serialised once per node. So a raw client costs no Redis channel or
 * publish of its own, and a Socket.IO-only session costs nothing for raw clients.
 *
 * With DATABASE_URL it is the **committing floor**: the same server, but each message and
 * its canned answer are stored first, durably, numbered in their session (`seq`), in one
 * statement on a plain pg pool, and broadcast once PostgreSQL confirmed the commit; a created
 * session gets a row. That is the least the contract's "stored before it is broadcast" costs a
 * bare cluster, with no validation, limits, presence, ordering or repair around it.
 *
 * Environment: PORT, HOST (default 127.0.0.1), REDIS_URL, NODE_ID, NODE_INDEX (0-63),
 * DATABASE_URL (optional: the committing floor).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { RedisAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { Server, type Namespace } from 'socket.io';
import { Adapter, type BroadcastOptions } from 'socket.io-adapter';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const nodeId = process.env.NODE_ID ?? `floor-${process.pid}`;
const nodeIndex = Number(process.env.NODE_INDEX ?? 0);
const redisUrl = process.env.REDIS_URL;
const databaseUrl = process.env.DATABASE_URL;
if (!redisUrl) {
  process.stderr.write('floor: REDIS_URL is required\n');
  process.exit(1);
}

// Ids must not collide across nodes (the generator matches spirit replies by in_reply_to):
// the low 6 bits say which node made it.
let counter = 0;
const nextId = () => ++counter * 64 + nodeIndex;

// A short canned answer, as a bare server would send.
const SPIRIT_TEXT = 'YES.';
const SPIRIT_TIMINGS = [250, 300, 280, 320];

interface RawMember {
  ws: WebSocket;
  /** What `except` names this member by (Socket.IO's socket ids play the same part). */
  id: string;
}

/** This node's raw clients, by room (the session id). */
const rawRooms = new Map<string, Set<RawMember>>();

interface Packet {
  type: number;
  data?: unknown[];
  nsp?: string;
}

/** Hands an EVENT packet to this node's raw members of its rooms, serialised once. */
function applyToRaw(packet: Packet, opts: BroadcastOptions): void {
  if (rawRooms.size === 0 || packet.type !== 2 || !Array.isArray(packet.data)) return;
  let frame: string | null = null;
  for (const room of opts.rooms) {
    const members = rawRooms.get(room);
    if (!members) continue;
    for (const member of members) {
      if (opts.except?.has(member.id) || member.ws.readyState !== member.ws.OPEN) continue;
      frame ??= JSON.stringify({ event: packet.data[0], data: packet.data[1], timestamp: new Date().toISOString() });
      member.ws.send(frame);
    }
  }
}

/** What the subclass uses of RedisAdapter (its typings keep these private). */
interface RedisAdapterParts extends Adapter {
  readonly channel: string;
  readonly uid: string;
  readonly parser: { decode(msg: Buffer): unknown };
}
const RedisAdapterBase = RedisAdapter as unknown as new (nsp: Namespace, pub: Redis, sub: Redis, opts: { key: string }) => RedisAdapterParts;

/**
 * The Redis adapter with one more kind of local listener. Publishing is the adapter's own;
 * each broadcast applied here reaches Socket.IO sockets and raw clients from one decode.
 */
class FloorAdapter extends RedisAdapterBase {
  override broadcast(packet: Packet, opts: BroadcastOptions): void {
    super.broadcast(packet as Parameters<Adapter['broadcast']>[0], opts);
    applyToRaw(packet, opts);
  }

  /** Replaces RedisAdapter's handler of a Redis message (it calls this method by name). */
  onmessage(_pattern: string, channel: string | Buffer, msg: Buffer): void {
    const name = channel.toString();
    if (!name.startsWith(this.channel)) return;
    const room = name.slice(this.channel.length, -1);
    // Messages for rooms without a member here, of either kind, are skipped before decoding.
    if (room !== '' && !this.rooms.has(room) && !rawRooms.has(room)) return;
    const [uid, packet, wire] = this.parser.decode(msg) as [string, Packet | undefined, { rooms: string[]; except: string[]; flags?: BroadcastOptions['flags'] }];
    if (uid === this.uid || !packet) return;
    const nspName = (this.nsp as Namespace).name;
    if ((packet.nsp ?? '/') !== nspName) return;
    packet.nsp = nspName;
    const opts: BroadcastOptions = { rooms: new Set(wire.rooms), except: new Set(wire.except), flags: wire.flags };
    // The in-memory delivery to this node's sockets, as RedisAdapter does after its own decode.
    Adapter.prototype.broadcast.call(this, packet as Parameters<Adapter['broadcast']>[0], opts);
    applyToRaw(packet, opts);
  }
}

const pub = new Redis(redisUrl, { maxRetriesPerRequest: null });
const sub = pub.duplicate();

const httpServer = createServer(onRequest);
const io = new Server(httpServer, {
  serveClient: false,
  destroyUpgrade: false,
  cors: { origin: true, credentials: true },
});
io.adapter(function (this: unknown, nsp: Namespace) {
  return new FloorAdapter(nsp, pub, sub, { key: 'floor' });
} as never);

const now = () => new Date().toISOString();

interface Stored {
  id: number;
  seq: number;
}

/**
 * The committing floor's storage: a plain pg pool, a named statement per message, no batching.
 * The one statement takes two numbers from the session's row and inserts the question and
 * the answer that replies to it; it returns once the commit is durable (PostgreSQL's defaults).
 */
class FloorStore {
  private readonly pool: Pool;
  private readonly ready: Promise<void>;

  constructor(url: string) {
    this.pool = new Pool({ connectionString: url, max: 10 });
    this.ready = this.createTables();
    // A pooled client's connection error must not end the process; the next query reports it.
    this.pool.on('error', () => undefined);
  }

  async createSession(id: string): Promise<void> {
    await this.ready;
    await this.pool.query({ name: 'floor_session', text: 'INSERT INTO floor_sessions (id) VALUES ($1)', values: [id] });
  }

  async storeExchange(sessionId: string, you: { id: string; name: string }, message: string): Promise<[Stored, Stored]> {
    await this.ready;
    const { rows } = await this.pool.query<{ qid: string; qseq: number; aid: string; aseq: number }>({
      name: 'floor_exchange',
      text: `WITH s AS (UPDATE floor_sessions SET last_seq = last_seq + 2 WHERE id = $1 RETURNING last_seq),
q AS (INSERT INTO floor_messages (session_id, seq, user_id, user_name, body, is_spirit)
      SELECT $1, s.last_seq - 1, $2, $3, $4, false FROM s RETURNING id, seq),
a AS (INSERT INTO floor_messages (session_id, seq, body, is_spirit, in_reply_to)
      SELECT $1, q.seq + 1, $5, true, q.id FROM q RETURNING id, seq)
SELECT q.id AS qid, q.seq AS qseq, a.id AS aid, a.seq AS aseq FROM q, a`,
      values: [sessionId, you.id, you.name, message, SPIRIT_TEXT],
    });
    if (rows.length !== 1) throw new Error(`no session ${sessionId}`);
    const [row] = rows;
    return [
      { id: Number(row.qid), seq: row.qseq },
      { id: Number(row.aid), seq: row.aseq },
    ];
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async createTables(): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Every node starts at once: one creates the tables while the others wait for it.
      await client.query('SELECT pg_advisory_lock(7201)');
      await client.query('CREATE TABLE IF NOT EXISTS floor_sessions (id uuid PRIMARY KEY, last_seq integer NOT NULL DEFAULT 0)');
      await client.query(`CREATE TABLE IF NOT EXISTS floor_messages (
  id bigserial PRIMARY KEY, session_id uuid NOT NULL REFERENCES floor_sessions (id), seq integer NOT NULL,
  user_id text, user_name text, body text NOT NULL, is_spirit boolean NOT NULL, in_reply_to bigint,
  created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (session_id, seq))`);
      await client.query('SELECT pg_advisory_unlock(7201)');
    } finally {
      client.release();
    }
  }
}

/** Null: the bare floor, which stores nothing. */
const store = databaseUrl ? new FloorStore(databaseUrl) : null;

/** The three events of a message, to the whole room (`seq` only when stored). */
function emitExchange(sessionId: string, you: { id: string; name: string }, message: string, question: Partial<Stored> & { id: number }, answer: Partial<Stored> & { id: number }): void {
  const room = io.to(sessionId);
  room.emit('message_received', { id: question.id, seq: question.seq, session_id: sessionId, user_id: you.id, user_name: you.name, message, timestamp: now() });
  room.emit('spirit_thinking', { session_id: sessionId, in_reply_to: question.id });
  room.emit('spirit_response', {
    id: answer.id,
    seq: answer.seq,
    session_id: sessionId,
    in_reply_to: question.id,
    message: SPIRIT_TEXT,
    word_count: 1,
    letter_timings: SPIRIT_TIMINGS,
    audio_url: null,
    timestamp: now(),
  });
}

/** The one place events are made, for both transports; `ack` gets the question's id. */
function onMessage(sessionId: string, you: { id: string; name: string }, message: string, ack?: (reply: unknown) => void): void {
  if (!store) {
    const question = { id: nextId() };
    emitExchange(sessionId, you, message, question, { id: nextId() });
    ack?.({ ok: true, id: question.id });
    return;
  }
  store.storeExchange(sessionId, you, message).then(
    ([question, answer]) => {
      emitExchange(sessionId, you, message, question, answer);
      ack?.({ ok: true, id: question.id, seq: question.seq });
    },
    () => ack?.({ ok: false, error: { code: 'DATABASE_ERROR', message: 'not stored' } }),
  );
}

function welcome(sessionId: string, you: { id: string; name: string; joined_at: string }) {
  return { session: { id: sessionId, name: 'floor', created_at: you.joined_at, max_users: 12, is_active: true }, you, users: [you], messages: [], resumed: false };
}

io.on('connection', (socket) => {
  const auth = socket.handshake.auth as { session_id: string; name: string; user_id?: string };
  const sessionId = auth.session_id;
  const you = { id: auth.user_id ?? randomUUID(), name: auth.name, joined_at: now() };
  void socket.join(sessionId);
  socket.emit('session_joined', welcome(sessionId, you));
  socket.to(sessionId).emit('user_joined', you);
  socket.on('send_message', (data: { message: string }, ack?: (reply: unknown) => void) => {
    onMessage(sessionId, you, data.message, typeof ack === 'function' ? ack : undefined);
  });
  socket.on('disconnect', () => io.to(sessionId).emit('user_left', you));
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
  const member: RawMember = { ws, id: `raw:${randomUUID()}` };
  let you: { id: string; name: string; joined_at: string } | null = null;
  ws.on('message', (raw) => {
    const frame = JSON.parse((raw as Buffer).toString()) as { event?: string; data?: { message: string }; user_id?: string; name?: string };
    if (!you) {
      you = { id: frame.user_id ?? randomUUID(), name: frame.name ?? 'anonymous', joined_at: now() };
      let members = rawRooms.get(sessionId);
      if (!members) rawRooms.set(sessionId, (members = new Set()));
      members.add(member);
      ws.send(JSON.stringify({ event: 'session_joined', data: welcome(sessionId, you), timestamp: now() }));
      io.to(sessionId).except(member.id).emit('user_joined', you);
      return;
    }
    if (frame.event === 'send_message' && frame.data) onMessage(sessionId, you, frame.data.message);
  });
  ws.on('close', () => {
    const members = rawRooms.get(sessionId);
    if (members?.delete(member) && members.size === 0) rawRooms.delete(sessionId);
    if (you) io.to(sessionId).emit('user_left', you);
  });
  ws.on('error', () => undefined);
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-seance-node': nodeId });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/health') {
    json(200, { status: 'healthy', redis: 'connected', node_id: nodeId, uptime_s: Math.round(process.uptime()), timestamp: now() });
    return;
  }
  if (req.method === 'POST' && req.url === '/api/sessions') {
    // The body is read and ignored: the floor validates nothing (the committing floor stores the session's row).
    req.resume();
    req.on('end', () => {
      const id = randomUUID();
      const created = () => {
        const at = now();
        json(201, { success: true, data: { id, name: 'floor', created_at: at, max_users: 12, is_active: true }, meta: { timestamp: at, request_id: randomUUID() } });
      };
      if (!store) return created();
      store.createSession(id).then(created, () => json(500, { success: false, error: { code: 'DATABASE_ERROR', message: 'not stored' } }));
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
  void Promise.allSettled([pub.quit(), sub.quit(), store?.close()]).then(() => process.exit(0));
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
