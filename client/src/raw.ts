import { SeanceError } from './errors';
import { RAW_CLOSE_CODES, type ErrorView, type ServerToClientEvents } from './events';
import { rejection, type JoinRequest, type SentMessage, type Transport, type TransportEvents } from './room';

const REFUSAL_BY_CLOSE_CODE = new Map(Object.entries(RAW_CLOSE_CODES).map(([code, close]) => [close, code]));
const PASSED_ON = new Set(['user_joined', 'user_left', 'user_typing', 'spirit_thinking', 'session_ended', 'error']);
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

interface PendingSend {
  text: string;
  timer: ReturnType<typeof setTimeout>;
  resolve: (sent: SentMessage) => void;
  reject: (err: SeanceError) => void;
}

/**
 * The raw `/ws/{session_id}` transport, for places without Socket.IO: the first frame joins,
 * a drop reconnects (with backoff) and joins again with `last_seq`. The raw protocol has no
 * acknowledgement, so sends go one at a time: the next answer to arrive (our own
 * `message_received`, or an `error`) is the answer to the one in flight.
 */
export function rawTransport(url: string, room: TransportEvents, join: () => JoinRequest): Transport {
  const wsUrl = url.replace(/^http/, 'ws').replace(/\/+$/, '') + '/ws/' + encodeURIComponent(join().session_id);
  let ws: WebSocket | null = null;
  let joined = false;
  let closed = false;
  let retryMs = FIRST_RETRY_MS;
  let me: string | null = null;
  let lastError: ErrorView | null = null;
  const queue: PendingSend[] = [];
  let inFlight: PendingSend | null = null;
  // Who `session_joined.users` listed: the raw path's replayed `user_joined` for them is not news.
  let roster = new Set<string>();

  function connect(): void {
    joined = false;
    lastError = null;
    const socket = new WebSocket(wsUrl);
    ws = socket;
    socket.onopen = () => {
      const { session_id: _sessionId, ...identify } = join();
      socket.send(JSON.stringify(identify));
    };
    socket.onmessage = (frame) => {
      if (ws !== socket) return;
      let parsed: { event?: string; data?: unknown };
      try {
        parsed = JSON.parse(String(frame.data)) as { event?: string; data?: unknown };
      } catch {
        return;
      }
      receive(parsed.event ?? '', parsed.data);
    };
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = null;
      // A refusal for good; the retry codes (1013, 1011) fall through to a reconnect like any drop.
      const refusedCode = REFUSAL_BY_CLOSE_CODE.get(event.code);
      if (!joined && refusedCode !== undefined && !closed) {
        if (!room.refused({ code: refusedCode, message: lastError?.message ?? refusedCode })) return;
      }
      // A message in flight on the connection that died is answered by the rejoin (stored or not).
      if (closed) return;
      room.status('reconnecting');
      const wait = retryMs;
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      setTimeout(() => !closed && connect(), wait * (0.5 + Math.random() / 2));
    };
  }

  function receive(event: string, data: unknown): void {
    switch (event) {
      case 'session_joined': {
        const welcome = data as Parameters<ServerToClientEvents['session_joined']>[0];
        joined = true;
        retryMs = FIRST_RETRY_MS;
        me = welcome.you.id;
        roster = new Set(welcome.users.map((u) => u.id));
        room.joined(welcome);
        for (const m of welcome.messages) if (!m.is_spirit) answered(m.user_id, m.message, m.id, m.seq);
        // Still unanswered: it went with the connection that dropped, and is not in what was stored since.
        if (inFlight) settle(inFlight, new SeanceError('timeout', 'TIMEOUT', 'The connection dropped before the server answered; the message is not stored'));
        return flush();
      }
      case 'message_received': {
        const m = data as Parameters<ServerToClientEvents['message_received']>[0];
        room.stored({ ...m, is_spirit: false });
        return answered(m.user_id, m.message, m.id, m.seq);
      }
      case 'spirit_response': {
        const m = data as Parameters<ServerToClientEvents['spirit_response']>[0];
        return room.stored({ ...m, user_id: null, user_name: null, is_spirit: true });
      }
      case 'user_joined':
        // The raw path replays the people present as `user_joined` after every join; the
        // room already has them in `session_joined.users`.
        if (replaying(data as { id: string })) return;
        break;
    }
    if (event === 'error') {
      const error = data as ErrorView;
      if (!joined) lastError = error;
      // SPIRIT_ERROR is about an answer, not about the message in flight.
      else if (inFlight && error.code !== 'SPIRIT_ERROR') {
        settle(inFlight, rejection(error));
      }
    }
    if (PASSED_ON.has(event)) room.event(event as 'error', data as ErrorView);
  }

  function replaying(person: { id: string }): boolean {
    return roster.delete(person.id);
  }

  function answered(userId: string | null, text: string, id: number, seq: number): void {
    if (!inFlight || userId !== me || text !== inFlight.text.trim()) return;
    settle(inFlight, { id, seq });
  }

  /** Answers one send (in the queue or in flight), once; the next one may go. */
  function settle(pending: PendingSend, outcome: SentMessage | SeanceError): void {
    clearTimeout(pending.timer);
    const at = queue.indexOf(pending);
    if (at >= 0) queue.splice(at, 1);
    if (inFlight === pending) inFlight = null;
    if (outcome instanceof SeanceError) pending.reject(outcome);
    else pending.resolve(outcome);
    flush();
  }

  function flush(): void {
    if (!joined || inFlight || !ws || queue.length === 0) return;
    inFlight = queue.shift()!;
    ws.send(JSON.stringify({ event: 'send_message', data: { message: inFlight.text } }));
  }

  return {
    open: () => {
      room.status('connecting');
      connect();
    },
    sendMessage: (text, timeoutMs) =>
      new Promise<SentMessage>((resolve, reject) => {
        const pending: PendingSend = {
          text,
          resolve,
          reject,
          timer: setTimeout(() => settle(pending, new SeanceError('timeout', 'TIMEOUT', `No answer within ${timeoutMs} ms; the message may still be stored`)), timeoutMs),
        };
        if (closed) return settle(pending, new SeanceError('closed', 'CLOSED', 'The room is closed'));
        queue.push(pending);
        flush();
      }),
    typing: () => {
      if (joined && ws) ws.send(JSON.stringify({ event: 'typing', data: {} }));
    },
    close: (leave) => {
      if (closed) return;
      closed = true;
      for (const p of [...(inFlight ? [inFlight] : []), ...queue]) settle(p, new SeanceError('closed', 'CLOSED', 'The room is closed'));
      if (ws && leave && joined) ws.send(JSON.stringify({ event: 'leave_session', data: {} }));
      ws?.close(1000);
    },
  };
}
