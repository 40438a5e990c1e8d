/**
 * Is the participant already there still there? When a join names a connected user id without
 * its token, the connections that hold it are pinged wherever they are: this node's directly,
 * another node's by asking that node over Redis Pub/Sub (`seance:liveness:N`). A connection
 * counts as alive only when it answers this very ping (raw: a pong echoing a random nonce;
 * Socket.IO: an engine.io pong after this ping, its protocol carries no payload). A node that
 * does not answer in time counts as dead with its connections. A network that dropped leaves a
 * connection looking open for up to a ping timeout; this finds out in `timeoutMs` instead.
 */
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type Redis from 'ioredis';
import { redisNames } from '../cluster/names';
import type { Logger } from '../logger';
import type { Holder } from '../services/presence/types';

/**
 * Resolves true when `source` (a `ws` WebSocket or an engine.io socket) emits `event` with a payload `isAnswer` accepts within
 * `timeoutMs`, false at its close or the timeout; call it before sending what is answered.
 */
export function answerWithin<T>(source: EventEmitter, event: string, isAnswer: (payload: T) => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onEvent = (payload: T) => {
      if (isAnswer(payload)) finish(true);
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(alive: boolean) {
      clearTimeout(timer);
      source.off(event, onEvent);
      source.off('close', onClose);
      resolve(alive);
    }
    source.on(event, onEvent);
    source.once('close', onClose);
  });
}

/** What a transport gives for each of its connections. */
export interface LivenessTarget {
  /** Pings the client now; true when it answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean>;
  /** Closes the connection at once, without waiting for the client (it is dead). */
  drop(): void;
}

type Request = { t: 'ping'; id: string; from: string; conns: string[]; ms: number } | { t: 'pong'; id: string; alive: boolean } | { t: 'drop'; conns: string[] };

/** Contract: a holder that gives no sign of life within 3 s is gone. */
export const HOLDER_TIMEOUT_MS = 3_000;
/** A remote node answers this much before the asker gives up on it: the reply's own trip. */
const REPLY_MARGIN_MS = 250;
const MAX_CONNS = 64;

export class Liveness {
  private readonly targets = new Map<string, LivenessTarget>();
  private readonly awaiting = new Map<string, (alive: boolean) => void>();
  /** Probes under way, by holder set: joins that race for one user id share one answer. */
  private readonly probing = new Map<string, Promise<boolean>>();

  constructor(
    private readonly nodeId: string,
    private readonly redis: { pub: Redis; sub: Redis } | null,
    private readonly logger: Logger,
    private readonly timeoutMs = HOLDER_TIMEOUT_MS,
  ) {}

  private static channel = redisNames.liveness;

  async start(): Promise<void> {
    if (!this.redis) return;
    this.redis.sub.on('message', this.onChannelMessage);
    await this.redis.sub.subscribe(Liveness.channel(this.nodeId));
  }

  async stop(): Promise<void> {
    if (!this.redis) return;
    this.redis.sub.off('message', this.onChannelMessage);
    await this.redis.sub.unsubscribe(Liveness.channel(this.nodeId)).catch(() => undefined);
  }

  /** Makes a connection of this node reachable by probes; returns its removal. */
  register(connectionId: string, target: LivenessTarget): () => void {
    this.targets.set(connectionId, target);
    return () => {
      if (this.targets.get(connectionId) === target) this.targets.delete(connectionId);
    };
  }

  /** True as soon as one of `holders` answers a ping; false when none does within the timeout. */
  anyAlive(holders: readonly Holder[]): Promise<boolean> {
    const key = holders
      .map((h) => `${h.node}/${h.connectionId}`)
      .sort()
      .join(' ');
    let probe = this.probing.get(key);
    if (!probe) {
      probe = this.probe(holders).finally(() => this.probing.delete(key));
      this.probing.set(key, probe);
    }
    return probe;
  }

  /** Closes dead holders: this node's at once, another node's by asking it. */
  drop(holders: readonly Holder[]): void {
    for (const [node, conns] of byNode(holders)) {
      if (node === this.nodeId) this.dropLocal(conns);
      else this.publish(node, { t: 'drop', conns });
    }
  }

  private async probe(holders: readonly Holder[]): Promise<boolean> {
    const checks = [...byNode(holders)].map(([node, conns]) => (node === this.nodeId ? this.pingLocal(conns, this.timeoutMs) : this.pingRemote(node, conns)));
    return firstTrue(checks);
  }

  private pingLocal(conns: readonly string[], timeoutMs: number): Promise<boolean> {
    return firstTrue(
      conns.map((id) => {
        const target = this.targets.get(id);
        return target ? target.ping(timeoutMs).catch(() => false) : Promise.resolve(false);
      }),
    );
  }

  private dropLocal(conns: readonly string[]): void {
    for (const id of conns) this.targets.get(id)?.drop();
  }

  /** Asks `node` to ping its connections; no answer in time means the node is as dead as they are. */
  private pingRemote(node: string, conns: string[]): Promise<boolean> {
    if (!this.redis) return Promise.resolve(false);
    const id = randomUUID();
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), this.timeoutMs);
      const finish = (alive: boolean) => {
        clearTimeout(timer);
        this.awaiting.delete(id);
        resolve(alive);
      };
      this.awaiting.set(id, finish);
      this.publish(node, { t: 'ping', id, from: this.nodeId, conns, ms: Math.max(0, this.timeoutMs - REPLY_MARGIN_MS) });
    });
  }

  private publish(node: string, message: Request): void {
    this.redis?.pub.publish(Liveness.channel(node), JSON.stringify(message)).catch((err: Error) => this.logger.warn({ err: { message: err.message }, node }, 'liveness: could not reach a node'));
  }

  private readonly onChannelMessage = (channel: string, text: string): void => {
    if (channel !== Liveness.channel(this.nodeId)) return;
    const message = parseRequest(text);
    if (!message) {
      this.logger.warn({ channel }, 'liveness: malformed message dropped');
      return;
    }
    switch (message.t) {
      case 'pong':
        this.awaiting.get(message.id)?.(message.alive);
        return;
      case 'drop':
        this.dropLocal(message.conns);
        return;
      case 'ping':
        void this.pingLocal(message.conns, Math.min(message.ms, this.timeoutMs)).then((alive) => this.publish(message.from, { t: 'pong', id: message.id, alive }));
    }
  };
}

function byNode(holders: readonly Holder[]): Map<string, string[]> {
  const nodes = new Map<string, string[]>();
  for (const { node, connectionId } of holders) nodes.set(node, [...(nodes.get(node) ?? []), connectionId]);
  return nodes;
}

/** True as soon as one resolves true; false once all resolved false (or there are none). */
function firstTrue(checks: Array<Promise<boolean>>): Promise<boolean> {
  if (checks.length === 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    let pending = checks.length;
    for (const check of checks) {
      void check.then((alive) => {
        if (alive) resolve(true);
        else if (--pending === 0) resolve(false);
      });
    }
  });
}

const isId = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= 200;
const isIdList = (value: unknown): value is string[] => Array.isArray(value) && value.length <= MAX_CONNS && value.every(isId);

/** A message of another node, checked: what does not fit is dropped, never thrown. */
function parseRequest(text: string): Request | null {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (m === null || typeof m !== 'object') return null;
  if (m.t === 'pong' && isId(m.id) && typeof m.alive === 'boolean') return { t: 'pong', id: m.id, alive: m.alive };
  if (m.t === 'drop' && isIdList(m.conns)) return { t: 'drop', conns: m.conns };
  if (m.t === 'ping' && isId(m.id) && isId(m.from) && isIdList(m.conns) && typeof m.ms === 'number' && m.ms >= 0) return { t: 'ping', id: m.id, from: m.from, conns: m.conns, ms: m.ms };
  return null;
}
