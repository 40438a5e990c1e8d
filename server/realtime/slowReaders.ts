/**
 * Slow readers (MAX_CONNECTION_BUFFER_BYTES): what a node has queued for a connection and not
 * yet handed to the kernel is measured as it grows, and a connection past the limit is told
 * to go. Its session hears of it at once (the caller leaves the session); its socket gets a
 * short grace to take the close (a reader that reads again sees 1008, or Socket.IO's
 * "io server disconnect"), then is destroyed: a reader that never reads holds at most the
 * limit, and for a few seconds.
 *
 * Internals relied on (checked at start by extensions/internals.ts): `ws`'s `bufferedAmount`;
 * engine.io's `packetCreate` and `flush` events, its `writeBuffer`, and a websocket transport's
 * `socket` (the `ws` WebSocket).
 */
import type { WebSocket } from 'ws';

/** How long a closed slow reader's socket may still take to read its close before it is destroyed. */
export const SLOW_READER_GRACE_MS = 5000;

/** The engine.io connection under a Socket.IO socket, as far as this module reaches into it. */
interface EngineConnection {
  readyState: string;
  transport: { name: string; socket?: unknown };
  on(event: 'packetCreate', listener: (packet: { data?: unknown }) => void): unknown;
  on(event: 'flush', listener: (packets: Array<{ data?: unknown }>) => void): unknown;
  close(discard?: boolean): unknown;
}

/** Bytes of a queued packet; text is counted in UTF-16 code units (a cheap, close enough bound). */
const sizeOf = (data: unknown): number => (typeof data === 'string' ? data.length : ((data as { byteLength?: number } | undefined)?.byteLength ?? 0));

/**
 * Raw path: call after every send. When `ws` passed `limit` it is closed with 1008 (destroyed
 * after the grace) and its unsent bytes are returned, once; else null.
 */
export function closeIfSlowReader(ws: WebSocket, limit: number): number | null {
  const unsent = ws.bufferedAmount;
  if (unsent <= limit || ws.readyState !== ws.OPEN) return null;
  ws.close(1008, 'slow reader');
  setTimeout(() => ws.terminate(), SLOW_READER_GRACE_MS).unref();
  return unsent;
}

/**
 * Socket.IO: watches one engine.io connection, on both transports. Unsent output is what waits
 * in engine.io's write buffer (a long-polling client that stops polling, or a websocket whose
 * previous write is still pending) plus, on websocket, what `ws` holds. `onOverflow` runs once,
 * with that figure, when it passes `limit`; the caller disconnects the socket, and after the
 * grace the transport is destroyed.
 */
export function watchEngineOutput(conn: EngineConnection, limit: number, onOverflow: (unsent: number) => void): void {
  let queued = 0;
  let overflowed = false;
  conn.on('flush', (packets) => {
    for (const packet of packets) queued -= sizeOf(packet.data);
  });
  conn.on('packetCreate', (packet) => {
    queued += sizeOf(packet.data);
    if (overflowed) return;
    const ws = conn.transport.name === 'websocket' ? (conn.transport.socket as WebSocket | undefined) : undefined;
    const unsent = queued + (ws?.bufferedAmount ?? 0);
    if (unsent <= limit) return;
    overflowed = true;
    // After this packet is queued (engine.io queues it once this listener returns): the
    // disconnect the caller sends is then the last thing the client gets.
    process.nextTick(onOverflow, unsent);
    setTimeout(() => {
      const current = conn.transport.name === 'websocket' ? (conn.transport.socket as WebSocket | undefined) : undefined;
      if (current) current.terminate();
      else conn.close(true);
    }, SLOW_READER_GRACE_MS).unref();
  });
}
