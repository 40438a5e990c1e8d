/**
 * How a broadcast leaves this node and how another node's broadcast arrives: a Socket.IO
 * adapter built on socket.io-adapter's `ClusterAdapter`, the base class its authors provide
 * for cluster adapters (a subclass implements `doPublish` / `doPublishResponse` and feeds
 * `onMessage` / `onResponse`). It speaks Redis 7 sharded Pub/Sub with a channel per room,
 * subscribed only by the nodes that hold a member, with the channel names and JSON messages
 * of @socket.io/redis-adapter's sharded adapter (what the previous release ran), and adds:
 *
 * - publish batching: the publishes one tick makes to one channel leave as one Redis
 *   message, a JSON array of them in order (a chat message causes three broadcasts in one
 *   tick); and local listeners get a broadcast at once, without waiting for Redis;
 * - local listeners beyond sockets: every broadcast applied here (from this node or from
 *   another) is also handed to `onApplied` listeners, which is how raw /ws clients, members
 *   of the session rooms under a member id that is no socket, receive it;
 * - an ordering gate: a stored message's event for a session room is handed to
 *   `setOrdering`'s router as (session, seq, event, data) instead of being applied here; the
 *   router (ordering/sessionFeeds.ts) lets it out in `seq` order through `deliverToRoom`;
 *   `hold` keeps this node subscribed to a session's room;
 * - a version on every message (`v`, PROTOCOL): what a newer release sends that this one
 *   cannot read is not applied, and the session it was for is read from the database
 *   instead. A message without `v` comes from the previous release (same shape, no `seq`).
 *
 * Internals relied on (checked at start by ./internals.ts): `ClusterAdapter#onMessage`,
 * `#onResponse`, `#publish` and the in-memory `Adapter#broadcast`, which this class calls
 * directly to apply a broadcast to local sockets without publishing it again.
 */
import { performance } from 'node:perf_hooks';
import type { Namespace } from 'socket.io';
import { Adapter, ClusterAdapter, MessageType, type BroadcastOptions, type ClusterMessage, type ClusterResponse } from 'socket.io-adapter';
import type Redis from 'ioredis';
import { redisNames, rooms } from '../../cluster/names';
import { readClusterMessage, readClusterResponse } from '../../cluster/wire';
import type { Logger } from '../../logger';
import { isOrderedEvent, type Arrival } from '../../ordering/sessionFeeds';

/** Socket.IO's packet as the adapter sees it: EVENT packets (type 2) carry `[event, payload]`. */
export interface Packet {
  type: number;
  data?: unknown[];
  nsp?: string;
}

export type AppliedListener = (packet: Packet, opts: BroadcastOptions) => void;
export type DisconnectListener = (opts: BroadcastOptions) => void;
/** Seconds from a broadcast's arrival at this node (emitted here, or read from Redis) to its send to this node's listeners. */
export type DeliveryTimer = (seconds: number) => void;

/** The Redis connections the adapter publishes and subscribes on (null: a single node, no cluster). */
export interface AdapterRedis {
  pub: Redis;
  sub: Redis;
  /** 'cluster': a Redis Cluster (session channels carry a hash tag, see cluster/names.ts). */
  mode?: 'single' | 'sentinel' | 'cluster';
}

/** The inter-node format this release speaks: 2 = the previous release's messages plus `seq` in stored messages' events. */
export const PROTOCOL = 2;
/** How long a join waits for Redis to confirm its session's subscription. */
const SUBSCRIBE_WAIT_MS = 2_000;
/** The adapter member that keeps a room (and its channel) while this node serves its session. */
const FEED_MEMBER = 'seance:feed';

/** Where stored messages' events go instead of being applied here (ordering/sessionFeeds.ts). */
export interface OrderingRouter {
  /** True when the router took the event (it delivers it with `deliverToRoom` when its turn comes). */
  route(arrival: Arrival): boolean;
  /** A message for this session could not be read. */
  unreadable(sessionId: string): void;
  /** The subscription came back after an outage: anything may have been missed. */
  repairAll(): void;
}

/** Socket.IO's EVENT packet: `data` is `[event, payload]`. */
const EVENT_PACKET = 2;
const JSON_OBJECT = 0x7b; // '{'
const JSON_ARRAY = 0x5b; // '['
/**
 * Session rooms are the only rooms broadcasts are sent to; each has its own Redis channel. A
 * participant's room costs no subscription on every join (one SSUBSCRIBE, and SUNSUBSCRIBE on leave).
 */
const hasOwnChannel = (room: string) => rooms.sessionOf(room) !== null;

interface WireOptions {
  rooms: string[];
  except: string[];
  flags: NonNullable<BroadcastOptions['flags']>;
}

export class SeanceAdapter extends ClusterAdapter {
  private readonly nspName: string;
  private readonly channel: string;
  private readonly responseChannel: string;
  private readonly pending = new Map<string, string[]>();
  private flushScheduled = false;
  private readonly appliedListeners: AppliedListener[] = [];
  private readonly disconnectListeners: DisconnectListener[] = [];
  private readonly handlers = new Map<string, (raw: Buffer) => void>();
  /** Subscriptions under way or done, by channel: `hold` waits for its room's. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  private ordering: OrderingRouter | null = null;
  private deliveryTimer: DeliveryTimer | null = null;
  /** Malformed messages since the last one logged, and when that was. */
  private dropped = 0;
  private lastDropLog = 0;
  /** When the Redis message being unpacked reached this node (its broadcasts' arrival). */
  private receivedAt: number | null = null;

  constructor(
    nsp: Namespace,
    private readonly redis: AdapterRedis | null,
    private readonly logger: Logger,
  ) {
    super(nsp);
    this.nspName = nsp.name;
    this.channel = `${redisNames.adapterPrefix}#${nsp.name}#`;
    this.responseChannel = `${this.channel}${this.uid}#`;
    if (!redis) return;
    // Whatever arrives, nothing may throw out of here: inside ioredis's handler it would end the process.
    redis.sub.on('smessageBuffer', (channel: Buffer, raw: Buffer) => {
      try {
        this.handlers.get(channel.toString())?.(raw);
      } catch (err) {
        this.logger.error({ err, channel: channel.toString() }, 'a cluster message could not be handled; dropped');
      }
    });
    // Back after an outage: whatever was published meanwhile never reached us.
    redis.sub.on('ready', () => this.ordering?.repairAll());
    this.subscribe(this.channel, (raw) => this.receive(raw, false));
    this.subscribe(this.responseChannel, (raw) => this.receive(raw, true));
    // A session's room gets its own channel, so only the nodes that serve the session hear it.
    // Other rooms (a socket's own, a participant's, which only ever appear in `except`) have
    // none: what is sent to them travels on the namespace's channel (see channelOf).
    this.on('create-room', (room: string) => {
      if (hasOwnChannel(room)) this.subscribe(this.roomChannel(room), (raw) => this.receive(raw, false, room));
    });
    this.on('delete-room', (room: string) => {
      const channel = this.roomChannel(room);
      this.subscribed.delete(channel);
      if (this.handlers.delete(channel)) redis.sub.sunsubscribe(channel).catch((err: Error) => this.warn(err, channel, 'could not unsubscribe'));
    });
  }

  setOrdering(router: OrderingRouter): void {
    this.ordering = router;
  }

  /**
   * Keeps this node in `room` (and subscribed to its channel); resolves once Redis confirmed
   * the subscription, or after SUBSCRIBE_WAIT_MS while Redis is away (what the channel misses
   * meanwhile is read from the database by the ordering layer).
   */
  async hold(room: string): Promise<void> {
    void this.addAll(FEED_MEMBER, new Set([room]));
    const subscribed = this.subscribed.get(this.roomChannel(room));
    if (!subscribed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([subscribed, new Promise((resolve) => (timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  release(room: string): void {
    void this.del(FEED_MEMBER, room);
  }

  /** Called with every broadcast applied to this node's sockets (raw /ws clients listen here). */
  onApplied(listener: AppliedListener): void {
    this.appliedListeners.push(listener);
  }

  /** Times every broadcast applied here (seance_delivery_seconds). */
  onDelivered(timer: DeliveryTimer): void {
    this.deliveryTimer = timer;
  }

  /** Called when the sockets of some rooms are disconnected, here or on another node (a session's end). */
  onDisconnect(listener: DisconnectListener): void {
    this.disconnectListeners.push(listener);
  }

  override async disconnectSockets(opts: BroadcastOptions, close: boolean): Promise<void> {
    await super.disconnectSockets(opts, close);
    for (const listener of this.disconnectListeners) listener(opts);
  }

  /** Applied here at once (the base class first waits for the publish to be confirmed). */
  override broadcast(packet: Packet, opts: BroadcastOptions): Promise<void> {
    const arrived = performance.now();
    if (!opts.flags?.local) {
      // The base class's publish() would wrap this in a promise chain and a debug call per
      // broadcast; the message is the same (uid and nsp are what publishAndReturnOffset adds).
      this.enqueue({ uid: this.uid, nsp: this.nspName, type: MessageType.BROADCAST, data: { packet, opts: encodeOptions(opts) } });
    }
    this.applyHere(packet, opts, arrived);
    return Promise.resolve();
  }

  /** Ordering's output: one event, in its turn, to this node's listeners of a session room (sockets and raw clients). */
  deliverToRoom(room: string, event: string, data: unknown): void {
    this.deliverHere({ type: EVENT_PACKET, data: [event, data], nsp: this.nspName }, { rooms: new Set([room]), except: new Set(), flags: {} });
  }

  override onMessage(message: ClusterMessage, offset?: string): void {
    if (message.uid === this.uid || message.nsp !== this.nspName) return;
    if (message.type === MessageType.DISCONNECT_SOCKETS) {
      super.onMessage(message, offset);
      for (const listener of this.disconnectListeners) listener(decodeOptions(message.data.opts));
      return;
    }
    if (message.type !== MessageType.BROADCAST || message.data.requestId !== undefined) return super.onMessage(message, offset);
    this.applyHere(message.data.packet as Packet, decodeOptions(message.data.opts), this.receivedAt ?? performance.now());
  }

  override async serverCount(): Promise<number> {
    if (!this.redis) return 1;
    const reply = (await this.redis.pub.call('PUBSUB', 'SHARDNUMSUB', this.channel)) as [string, number];
    return Number(reply[1]);
  }

  override close(): void {
    if (!this.redis) return;
    const channels = [...this.handlers.keys()];
    this.handlers.clear();
    if (channels.length > 0) this.redis.sub.sunsubscribe(...channels).catch((err: Error) => this.warn(err, this.channel, 'could not unsubscribe'));
  }

  protected override doPublish(message: ClusterMessage): Promise<string> {
    this.enqueue(message);
    return Promise.resolve('');
  }

  /** Queues a message for its channel (none without Redis): one tick's messages to a channel leave together. */
  private enqueue(message: ClusterMessage): void {
    if (!this.redis) return;
    const channel = this.channelOf(message);
    const payload = JSON.stringify({ ...message, v: PROTOCOL });
    const queued = this.pending.get(channel);
    if (queued) queued.push(payload);
    else this.pending.set(channel, [payload]);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  protected override doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void> {
    if (!this.redis) return Promise.resolve();
    return this.redis.pub.spublish(`${this.channel}${requesterUid}#`, JSON.stringify({ ...response, v: PROTOCOL })).then(() => undefined);
  }

  /** `arrived`: when the broadcast reached this node (emitted here, or read from Redis). */
  private applyHere(packet: Packet, opts: BroadcastOptions, arrived: number): void {
    const arrival = this.ordering ? orderedArrival(packet, opts, arrived) : null;
    if (arrival && this.ordering!.route(arrival)) return;
    this.deliverHere(packet, opts, arrived);
  }

  /**
   * Applies a broadcast to this node's own listeners: sockets, then raw clients; and times
   * it from `arrived` (ordering times what it delivers itself).
   */
  private deliverHere(packet: Packet, opts: BroadcastOptions, arrived?: number): void {
    Adapter.prototype.broadcast.call(this, packet, opts);
    for (const listener of this.appliedListeners) listener(packet, opts);
    if (arrived !== undefined) this.deliveryTimer?.((performance.now() - arrived) / 1000);
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [channel, payloads] of this.pending) {
      const body = payloads.length === 1 ? payloads[0] : `[${payloads.join(',')}]`;
      this.redis!.pub.spublish(channel, body).catch((err: Error) => this.warn(err, channel, 'could not publish to the cluster'));
    }
    this.pending.clear();
  }

  /**
   * Broadcasts to one session room (without acknowledgements) travel on the room's channel, and
   * so does the disconnection of its sockets: on a Redis Cluster, channels on different shards
   * keep no order between them, and a session's end must arrive before its disconnection. The
   * rest travels on the namespace's channel.
   */
  private channelOf(message: ClusterMessage): string {
    let targets: string[] | null = null;
    if (message.type === MessageType.BROADCAST && message.data.requestId === undefined) targets = message.data.opts.rooms;
    else if (message.type === MessageType.DISCONNECT_SOCKETS) targets = message.data.opts.rooms;
    return targets?.length === 1 && hasOwnChannel(targets[0]) ? this.roomChannel(targets[0]) : this.channel;
  }

  private roomChannel(room: string): string {
    const sessionId = this.redis?.mode === 'cluster' ? rooms.sessionOf(room) : null;
    return `${this.channel}${sessionId === null ? room : redisNames.clusterSessionChannelRoom(sessionId)}#`;
  }

  private subscribe(channel: string, handler: (raw: Buffer) => void): void {
    this.handlers.set(channel, handler);
    this.subscribed.set(
      channel,
      this.redis!.sub.ssubscribe(channel).catch((err: Error) => this.warn(err, channel, 'could not subscribe')),
    );
  }

  /** `room`: the room whose channel it came on (null: the namespace's channel, or a response). */
  private receive(raw: Buffer, isResponse: boolean, room: string | null = null): void {
    let parsed: unknown = null;
    // MessagePack (binary payloads, which Séance never sends) and broken JSON are unreadable alike.
    if (raw[0] === JSON_OBJECT || raw[0] === JSON_ARRAY) {
      try {
        parsed = JSON.parse(raw.toString());
      } catch {
        parsed = null;
      }
    }
    if (parsed === null || typeof parsed !== 'object') return this.drop(room, 'not JSON');
    this.receivedAt = performance.now();
    try {
      for (const message of Array.isArray(parsed) ? (parsed as unknown[]) : [parsed]) {
        const version = (message as { v?: unknown } | null)?.v;
        if (version !== undefined && (typeof version !== 'number' || version > PROTOCOL)) {
          this.cannotRead(room);
          continue;
        }
        const read = isResponse ? readClusterResponse(message) : readClusterMessage(message);
        if (!read.ok) {
          this.drop(room, read.reason);
          continue;
        }
        try {
          if (isResponse) this.onResponse(read.message as ClusterResponse);
          else this.onMessage(read.message as ClusterMessage);
        } catch (err) {
          this.drop(room, (err as Error).message);
        }
      }
    } finally {
      this.receivedAt = null;
    }
  }

  /** A message this node cannot use: logged (at most once a second, with how many went unlogged) and dropped. */
  private drop(room: string | null, reason: string): void {
    this.dropped += 1;
    const now = Date.now();
    if (now - this.lastDropLog >= 1000) {
      this.logger.warn({ room, reason, dropped: this.dropped }, 'malformed cluster message dropped');
      this.lastDropLog = now;
      this.dropped = 0;
    }
    this.cannotRead(room);
  }

  /** What could not be read may have been a stored message: its session is read from the database. */
  private cannotRead(room: string | null): void {
    const sessionId = room === null ? null : rooms.sessionOf(room);
    if (sessionId) this.ordering?.unreadable(sessionId);
    else this.ordering?.repairAll();
  }

  private warn(err: Error, channel: string, what: string): void {
    this.logger.warn({ err: { message: err.message }, channel }, what);
  }
}

/** A stored message's event sent to one session's room, as ordering takes it; null for any other broadcast. */
function orderedArrival(packet: Packet, opts: BroadcastOptions, arrived: number): Arrival | null {
  if (packet.type !== EVENT_PACKET || !Array.isArray(packet.data) || opts.rooms.size !== 1) return null;
  const [event, data] = packet.data;
  if (!isOrderedEvent(event)) return null;
  const [room] = opts.rooms;
  const sessionId = rooms.sessionOf(room);
  if (sessionId === null) return null;
  const seq = (data as { seq?: unknown } | null | undefined)?.seq;
  return { sessionId, seq: typeof seq === 'number' ? seq : null, event, data: data as Arrival['data'], arrived };
}

function encodeOptions(opts: BroadcastOptions): WireOptions {
  return { rooms: [...opts.rooms], except: [...(opts.except ?? [])], flags: opts.flags ?? {} };
}

function decodeOptions(opts: WireOptions): BroadcastOptions {
  return { rooms: new Set(opts.rooms), except: new Set(opts.except), flags: opts.flags };
}

/**
 * The factory Socket.IO's `io.adapter()` takes, and the adapter it made for the main
 * namespace `/` (the only one Séance uses) once Socket.IO has called it.
 */
export function seanceAdapter(redis: AdapterRedis | null, logger: Logger): { factory: (nsp: Namespace) => SeanceAdapter; readonly main: SeanceAdapter } {
  let main: SeanceAdapter | null = null;
  // Socket.IO calls the factory with `new`: a plain function (an arrow function cannot be).
  function factory(nsp: Namespace): SeanceAdapter {
    const adapter = new SeanceAdapter(nsp, redis, logger);
    if (nsp.name === '/') main = adapter;
    return adapter;
  }
  return {
    factory,
    get main() {
      if (!main) throw new Error('the Socket.IO adapter of "/" is not made yet');
      return main;
    },
  };
}
