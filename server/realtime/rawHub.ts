/**
 * Raw /ws clients are members of the same Socket.IO rooms as everyone else, so one emit
 * reaches both transports on every node through the one adapter.
 *
 * Each node keeps its raw connections per session and holds the session's room in the adapter
 * under a member id that is no socket. That makes the adapter subscribe this node to the
 * room's channel like for any socket member. Every broadcast the adapter applies here, from
 * this node or from another, is then also written to the raw clients of its rooms: one frame
 * serialised per broadcast, not per client. A disconnect of the room's sockets (a session's
 * end) closes its raw clients too.
 */
import type { BroadcastOptions } from 'socket.io-adapter';
import { rawFrame, rooms, SESSION_ENDED_CLOSE } from '../cluster/names';
import type { Packet, SeanceAdapter } from './extensions/clusterAdapter';

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

export class RawHub {
  private readonly sessions = new Map<string, Set<RawClient>>();

  constructor(private readonly adapter: SeanceAdapter) {
    adapter.onApplied((packet, opts) => this.deliver(packet, opts));
    adapter.onDisconnect((opts) => this.closeRooms(opts));
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

  private deliver(packet: Packet, opts: BroadcastOptions): void {
    if (packet.type !== EVENT_PACKET || !Array.isArray(packet.data)) return;
    let frame: Buffer | null = null;
    const [event, data] = packet.data;
    for (const room of opts.rooms) {
      const sessionId = rooms.sessionOf(room);
      const clients = sessionId ? this.sessions.get(sessionId) : undefined;
      if (!sessionId || !clients) continue;
      frame ??= Buffer.from(rawFrame(String(event), data));
      for (const client of clients) {
        if (opts.except?.size && opts.except.has(rooms.participant(sessionId, client.userId))) continue;
        client.sendFrame(frame);
      }
    }
  }

  private closeRooms(opts: BroadcastOptions): void {
    for (const room of opts.rooms) {
      const sessionId = rooms.sessionOf(room);
      const clients = sessionId ? this.sessions.get(sessionId) : undefined;
      for (const client of [...(clients ?? [])]) client.close(SESSION_ENDED_CLOSE.code, SESSION_ENDED_CLOSE.reason);
    }
  }
}
