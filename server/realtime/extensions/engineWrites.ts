/**
 * One write per connection per tick. A chat message sends each listener several frames in
 * the same turn of the event loop (message_received and spirit_thinking, and under load the
 * frames of other messages stored or relayed in the same batch). Written one by one, each
 * frame is its own writev system call on the node, its own read and write in nginx and its
 * own read in the browser: the largest CPU cost of a busy node. Corking the TCP socket until
 * the tick ends sends them as one.
 *
 * It adds no delay: the frames leave in the same macrotask, as soon as the code that emitted
 * them returns. The order of frames on a connection is unchanged.
 *
 * Internals relied on (checked at start by ./internals.ts): `ws` keeps a connection's TCP
 * socket as `_socket`; engine.io's `Socket#flush` sends what is queued, and a connection's
 * `transport.socket` is the `ws` WebSocket of its websocket transport.
 */
import type { Socket as NetSocket } from 'node:net';

/** The part of a `ws` WebSocket we reach into: its TCP socket (`ws` keeps it as `_socket`). */
interface WithTcpSocket {
  _socket?: NetSocket | null;
}

const corkedThisTick = new WeakSet<NetSocket>();

function uncork(tcp: NetSocket): void {
  corkedThisTick.delete(tcp);
  tcp.uncork();
}

/** Holds the socket's writes until the current tick ends, then sends them in one writev. */
export function corkUntilTickEnd(tcp: NetSocket | null | undefined): void {
  if (!tcp || corkedThisTick.has(tcp) || tcp.destroyed) return;
  corkedThisTick.add(tcp);
  tcp.cork();
  process.nextTick(uncork, tcp);
}

/** The TCP socket under a `ws` WebSocket, if it still has one. */
export function tcpSocketOf(ws: unknown): NetSocket | null {
  return (ws as WithTcpSocket | null)?._socket ?? null;
}

/** The engine.io internals this reaches into (the tests also count writes per connection). */
interface FlushableEngineSocket {
  flush(): void;
  transport: { name: string; socket?: unknown };
}

/**
 * engine.io sends a packet the moment it is queued if its transport is writable, and then
 * holds the rest until the write completes: two emits in one tick become two writes. Here a
 * connection's flush waits for the end of the tick, and its packets go out corked together.
 */
export function coalesceEngineWrites(engine: { on(event: 'connection', listener: (socket: unknown) => void): unknown }): void {
  engine.on('connection', (socket) => {
    const target = socket as FlushableEngineSocket;
    const flushNow = target.flush.bind(target);
    let scheduled = false;
    const flushAtTickEnd = () => {
      scheduled = false;
      // Long-polling answers one request with everything queued: only WebSocket needs the cork.
      const tcp = target.transport.name === 'websocket' ? tcpSocketOf(target.transport.socket) : null;
      tcp?.cork();
      try {
        flushNow();
      } finally {
        tcp?.uncork();
      }
    };
    target.flush = () => {
      if (scheduled) return;
      scheduled = true;
      process.nextTick(flushAtTickEnd);
    };
  });
}
