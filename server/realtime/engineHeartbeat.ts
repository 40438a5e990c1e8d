/**
 * Socket.IO's heartbeat: the server pings, the client answers with a pong. engine.io takes any
 * pong for an answer and postpones its next ping by a whole interval, so a client that sends
 * pongs of its own accord is never pinged, and a dead reader stays connected for good. A pong
 * with no ping outstanding breaks the protocol: the connection is closed (Socket.IO clients
 * never send one; the raw path ignores them instead, as RFC 6455 allows them there).
 *
 * Internals relied on: engine.io's `packetCreate` (every packet queued, pings included) and
 * `packet` (every packet received, before engine.io acts on it) events.
 */
interface EngineConnection {
  on(event: 'packetCreate' | 'packet', listener: (packet: { type: string }) => void): unknown;
  close(discard?: boolean): unknown;
}

export function closeOnUnsolicitedPong(conn: EngineConnection, onViolation: () => void): void {
  let pingsOutstanding = 0;
  conn.on('packetCreate', (packet) => {
    if (packet.type === 'ping') pingsOutstanding += 1;
  });
  conn.on('packet', (packet) => {
    if (packet.type !== 'pong') return;
    if (pingsOutstanding > 0) {
      pingsOutstanding -= 1;
      return;
    }
    onViolation();
    conn.close(true);
  });
}
