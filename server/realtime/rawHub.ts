/**
 * Fan-out for raw /ws clients. Each node keeps the raw connections it holds, per session, and
 * subscribes to a session's Redis channel only while it holds one of them, so a session's raw
 * traffic reaches only the nodes that serve its members. A frame is serialised once per
 * broadcast, not once per client.
 */
import type Redis from 'ioredis';
import type { Logger } from '../logger';

export interface RawClient {
  readonly userId: string;
  sendFrame(frame: string): void;
  close(code: number, reason: string): void;
}

const CHANNEL_PREFIX = 'seance:raw:';
const FRAME = 'f';
const CLOSE = 'c';
/** Close code for connections of an ended session: a normal closure, the session is over. */
const SESSION_ENDED_CLOSE = 1000;

export interface RawHubRedis {
  pub: Redis;
  sub: Redis;
}

export class RawHub {
  private readonly sessions = new Map<string, Set<RawClient>>();

  constructor(
    private readonly nodeId: string,
    private readonly redis: RawHubRedis | null,
    private readonly logger: Logger,
  ) {
    redis?.sub.on('message', (channel: string, message: string) => this.onRemote(channel, message));
  }

  /** Registers a client; resolves once remote frames for its session will reach it. */
  async add(sessionId: string, client: RawClient): Promise<void> {
    let clients = this.sessions.get(sessionId);
    if (!clients) {
      this.sessions.set(sessionId, (clients = new Set()));
      if (this.redis) {
        await this.redis.sub.subscribe(CHANNEL_PREFIX + sessionId).catch((err) => {
          this.logger.warn({ err, session_id: sessionId }, 'raw hub: subscribe failed (will retry on reconnect)');
        });
      }
    }
    clients.add(client);
  }

  remove(sessionId: string, client: RawClient): void {
    const clients = this.sessions.get(sessionId);
    if (!clients?.delete(client) || clients.size > 0) return;
    this.sessions.delete(sessionId);
    this.redis?.sub.unsubscribe(CHANNEL_PREFIX + sessionId).catch(() => undefined);
  }

  get size(): number {
    let total = 0;
    for (const clients of this.sessions.values()) total += clients.size;
    return total;
  }

  publish(sessionId: string, event: string, data: unknown, exceptUserId?: string): void {
    const frame = JSON.stringify({ event, data, timestamp: new Date().toISOString() });
    this.deliver(sessionId, FRAME, frame, exceptUserId ?? '');
    this.send(sessionId, FRAME, frame, exceptUserId ?? '');
  }

  closeSession(sessionId: string): void {
    this.deliver(sessionId, CLOSE, '', '');
    this.send(sessionId, CLOSE, '', '');
  }

  /** Closes every local client (shutdown), with a code that tells clients to reconnect elsewhere. */
  closeAll(code: number, reason: string): void {
    for (const clients of this.sessions.values()) for (const client of clients) client.close(code, reason);
  }

  private send(sessionId: string, kind: string, frame: string, exceptUserId: string): void {
    if (!this.redis) return;
    // Node ids and user ids never contain a newline, so the header needs no escaping.
    this.redis.pub.publish(CHANNEL_PREFIX + sessionId, `${this.nodeId}\n${kind}\n${exceptUserId}\n${frame}`).catch((err) => {
      this.logger.warn({ err, session_id: sessionId }, 'raw hub: publish failed');
    });
  }

  private onRemote(channel: string, message: string): void {
    if (!channel.startsWith(CHANNEL_PREFIX)) return;
    const [origin, kind, exceptUserId] = message.split('\n', 3);
    if (origin === this.nodeId) return;
    const frame = message.slice(origin.length + kind.length + exceptUserId.length + 3);
    this.deliver(channel.slice(CHANNEL_PREFIX.length), kind, frame, exceptUserId);
  }

  private deliver(sessionId: string, kind: string, frame: string, exceptUserId: string): void {
    const clients = this.sessions.get(sessionId);
    if (!clients) return;
    for (const client of [...clients]) {
      if (kind === CLOSE) client.close(SESSION_ENDED_CLOSE, 'session ended');
      else if (client.userId !== exceptUserId) client.sendFrame(frame);
    }
  }
}
