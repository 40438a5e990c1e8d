/**
 * Raw /ws clients are members of the same Socket.IO rooms as everyone else, so one emit
 * reaches both transports on every node through the one Redis adapter.
 *
 * Each node keeps its raw connections per session and holds the session's room in the adapter
 * under a member id that is no socket. That makes the adapter subscribe this node to the
 * room's channel like for any socket member. Every broadcast the adapter applies here, from
 * this node or from another, is then also written to the raw clients of its rooms: one frame
 * serialised per broadcast, not per client.
 */
import { MessageType, type Adapter, type BroadcastOptions, type ClusterMessage } from 'socket.io-adapter';
import { rooms } from '../events';

export interface RawClient {
  readonly userId: string;
  /** A JSON text frame, already UTF-8 encoded: shared by every client of the broadcast. */
  sendFrame(frame: Buffer): void;
  close(code: number, reason: string): void;
}

/** The adapter member that stands for this node's raw clients (no socket has this id). */
const RAW_MEMBER = 'seance:raw-clients';
/** Socket.IO's EVENT packet: `data` is `[event, payload]`. */
const EVENT_PACKET = 2;
/** Close code for the connections of an ended session: a normal closure, the séance is over. */
const SESSION_ENDED_CLOSE = 1000;

interface EventPacket {
  type: number;
  data?: unknown[];
}

/** The adapter methods the hub hooks: broadcasts applied here, and (clustered) messages from other nodes. */
type HookableAdapter = Adapter & {
  uid?: string;
  onMessage?: (message: ClusterMessage, offset?: string) => unknown;
};

export class RawHub {
  private readonly sessions = new Map<string, Set<RawClient>>();

  constructor(private readonly adapter: HookableAdapter) {
    const applyHere = adapter.broadcast.bind(adapter);
    adapter.broadcast = (packet: EventPacket, opts: BroadcastOptions) => {
      applyHere(packet, opts);
      this.deliver(packet, opts.rooms, opts.except);
    };
    const onMessage = adapter.onMessage?.bind(adapter);
    if (onMessage) {
      adapter.onMessage = (message, offset) => {
        const result = onMessage(message, offset);
        // Another node's room broadcast: the adapter has just applied it to our sockets.
        if (message.type === MessageType.BROADCAST && message.uid !== adapter.uid && message.nsp === '/' && message.data.requestId === undefined) {
          this.deliver(message.data.packet as EventPacket, new Set(message.data.opts.rooms), new Set(message.data.opts.except));
        }
        return result;
      };
    }
  }

  add(sessionId: string, client: RawClient): void {
    let clients = this.sessions.get(sessionId);
    if (!clients) {
      this.sessions.set(sessionId, (clients = new Set()));
      void this.adapter.addAll(RAW_MEMBER, new Set([rooms.session(sessionId)]));
    }
    clients.add(client);
  }

  remove(sessionId: string, client: RawClient): void {
    const clients = this.sessions.get(sessionId);
    if (!clients?.delete(client) || clients.size > 0) return;
    this.sessions.delete(sessionId);
    void this.adapter.del(RAW_MEMBER, rooms.session(sessionId));
  }

  get size(): number {
    let total = 0;
    for (const clients of this.sessions.values()) total += clients.size;
    return total;
  }

  /** Closes every local client (shutdown), with a code that tells clients to reconnect elsewhere. */
  closeAll(code: number, reason: string): void {
    for (const clients of this.sessions.values()) for (const client of [...clients]) client.close(code, reason);
  }

  private deliver(packet: EventPacket, targetRooms: Set<string>, except: Set<string> | undefined): void {
    if (packet.type !== EVENT_PACKET || !Array.isArray(packet.data)) return;
    let frame: Buffer | null = null;
    const [event, data] = packet.data;
    for (const room of targetRooms) {
      const sessionId = rooms.sessionOf(room);
      const clients = sessionId ? this.sessions.get(sessionId) : undefined;
      if (!clients) continue;
      frame ??= Buffer.from(JSON.stringify({ event, data, timestamp: new Date().toISOString() }));
      for (const client of [...clients]) {
        if (except?.size && except.has(rooms.participant(sessionId!, client.userId))) continue;
        client.sendFrame(frame);
        if (event === 'session_ended') client.close(SESSION_ENDED_CLOSE, 'session ended');
      }
    }
  }
}
