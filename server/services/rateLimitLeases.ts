/**
 * A cluster-wide rate limit that a node can decide without a Redis round trip per request.
 *
 * The count of a key (one participant in one session) lives in Redis, under the key
 * rate-limiter-flexible gives it, so the limit holds across nodes. The node that serves the key
 * takes a lease on it (at the participant's first message): while it holds the lease no other
 * node touches that count, so the holder keeps it in memory, decides each request at once, and
 * adds what it admitted to the count in Redis every FLUSH_MS, renewing the lease in the same
 * script. The lease lasts LEASE_MS in Redis; the holder stops deciding LOCAL_MARGIN_MS before
 * that unless a renewal came back, so its authority always ends before Redis forgets it.
 * Only a lease used since the previous flush is renewed: one that sat unused (a quiet
 * participant, or one who joined and has not spoken yet) runs out on its own and is handed
 * back then, so idle connections cost Redis nothing per second; the next message takes it again.
 *
 * When another node needs the same key (the participant is connected there too), it fences the
 * lease in Redis (the holder can no longer renew it) and asks the holder to give it up. The
 * holder stops deciding, adds its count, marks the key shared and answers. A holder that never
 * hears the request (a lost Pub/Sub message) finds the fence at its next flush and does the
 * same; one that died lets the fenced lease run out. Either way the requester waits for the
 * holder's authority to end, so two nodes never decide the same key at once, and the holder's
 * writes are increments (with the holder's check) rather than a SET of its own view, so nothing
 * another node counted is overwritten. From then until the mark expires every node consumes in
 * Redis, exactly as without leases. What a node that crashes admitted in its last FLUSH_MS is
 * not counted; losing the Redis connection drops every lease this node holds (a restarted Redis
 * remembers none); a node that stops hands its leases back.
 *
 * Keys: the count key and `seance:rl:lease:KEY` share KEY's hash tag (see messageLimitKey),
 * so every script here runs in one Redis Cluster slot.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { redisNames } from '../cluster/names';
import { readLeaseMessage, type LeaseMessage } from '../cluster/wire';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../logger';

/** The holder value of a key every node consumes in Redis. */
const SHARED = '*';
/** Prefix of a fenced holder: `~N` means N must give the lease up. */
const FENCE = '~';
/** How long a lease lasts in Redis after its last renewal. */
const LEASE_MS = 3_000;
/** The holder stops deciding this long before its lease would expire: time for its last flush. */
const LOCAL_MARGIN_MS = 1_000;
/** How long a shared mark lasts (every node counts in Redis until then). */
const SHARED_MS = 30_000;
/** How often a holder adds its counts to Redis and renews its leases. */
const FLUSH_MS = 1_000;
/** How often a requester looks at a fenced lease while it waits for the holder. */
const POLL_MS = 100;
/**
 * A count in Redis whose window ends this much before the holder's is an earlier window's (the
 * two end within a round trip of each other otherwise): the holder's new window replaces it.
 */
const STALE_WINDOW_MS = 500;
/** Acquisition rounds before a node gives up on a lease and simply consumes in Redis. */
const MAX_ACQUIRE_ROUNDS = 3;

/** Takes the lease when nobody holds it (or this node does); answers the holder and the count. */
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  holder = ARGV[1]
end
return {holder, tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('PTTL', KEYS[2])}`;

/** Fences `ARGV[1]`'s lease (it may no longer renew it); answers the lease's time left, -2 if not held by it. */
const FENCE_LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('SET', KEYS[1], '${FENCE}' .. ARGV[1], 'KEEPTTL') end
if holder == ARGV[1] or holder == '${FENCE}' .. ARGV[1] then return redis.call('PTTL', KEYS[1]) end
return -2`;

/**
 * The holder's write: adds its points not yet in Redis to the count (opening the window there
 * if needed), then by mode renews the lease if still its own, or hands it over (shared mark or
 * deleted). A fenced lease is always handed over. Answers {1 if still held, the count}.
 */
const SETTLE = `
local n
local delta = tonumber(ARGV[2])
if delta > 0 then
  local left = redis.call('PTTL', KEYS[2])
  if left >= 0 and left < tonumber(ARGV[3]) - ${STALE_WINDOW_MS} then
    -- What is there is an earlier window's count, about to expire: this window starts from ours.
    redis.call('SET', KEYS[2], delta, 'PX', ARGV[3])
    n = delta
  else
    n = redis.call('INCRBY', KEYS[2], delta)
    if left < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  end
else
  n = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local holder = redis.call('GET', KEYS[1])
local mine = holder == ARGV[1]
if mine and ARGV[4] == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {1, n}
end
if mine or holder == '${FENCE}' .. ARGV[1] then
  if ARGV[4] == 'release' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], '${SHARED}', 'PX', ARGV[6]) end
end
return {0, n}`;

type SettleMode = 'renew' | 'share' | 'release';

type LeaseRedis = Redis & {
  seanceLeaseAcquire(holderKey: string, countKey: string, nodeId: string, leaseMs: number): Promise<[string, number, number]>;
  seanceLeaseFence(holderKey: string, holder: string): Promise<number>;
  seanceLeaseSettle(holderKey: string, countKey: string, nodeId: string, delta: number, msLeft: number, mode: SettleMode, leaseMs: number, sharedMs: number): Promise<[number, number]>;
};

interface Lease {
  /** Until when this node may decide locally (monotonic ms); always before the lease's expiry in Redis. */
  validUntil: number;
  /** Points used in the current window. */
  used: number;
  /** How many of them Redis has. */
  acked: number;
  /** When the current window ends (monotonic ms); 0 when no window is open. */
  windowEnd: number;
  lastUsed: number;
  /** The write under way: one at a time per lease, so `acked` stays true. */
  settling: Promise<unknown>;
}

const newLease = (validUntil: number, count: number, windowEnd: number): Lease => ({
  validUntil,
  used: count,
  acked: count,
  windowEnd,
  lastUsed: performance.now(),
  settling: Promise.resolve(),
});

/** Logs a Redis failure by its message alone (no stack: it is an expected, recoverable event). */
const failure = (err: unknown) => ({ err: { message: (err as Error).message } });

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type ChannelMessage = LeaseMessage;

export class RateLimitLeases {
  private readonly redis: LeaseRedis;
  private readonly leases = new Map<string, Lease>();
  private readonly acquiring = new Map<string, Promise<void>>();
  private readonly awaitingRelease = new Map<string, () => void>();
  /** Counts revocations received: an acquisition that straddles one does not install its lease. */
  private revocations = 0;
  private readonly durationMs: number;
  private flushTimer: NodeJS.Timeout | null = null;
  /** When the previous flush ran (monotonic ms): a lease not used since is not renewed. */
  private lastFlush = 0;

  constructor(
    /** The rate-limiter-flexible limiter that keeps the count in Redis. */
    private readonly shared: RateLimiterAbstract,
    private readonly points: number,
    durationSeconds: number,
    command: Redis,
    private readonly subscriber: Redis,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {
    this.durationMs = durationSeconds * 1000;
    this.redis = command as LeaseRedis;
    this.redis.defineCommand('seanceLeaseAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    this.redis.defineCommand('seanceLeaseFence', { numberOfKeys: 1, lua: FENCE_LEASE });
    this.redis.defineCommand('seanceLeaseSettle', { numberOfKeys: 2, lua: SETTLE });
    this.redis.on('close', () => this.leases.clear());
    this.subscriber.on('message', this.onChannelMessage);
  }

  private static holderKey = redisNames.rateLimits.leaseHolder;
  private static channel = redisNames.rateLimits.leaseChannel;

  async start(): Promise<void> {
    await this.subscriber.subscribe(RateLimitLeases.channel(this.nodeId));
    this.flushTimer = setInterval(() => this.flushAll(), FLUSH_MS).unref();
  }

  /** Writes every count and hands every lease back, so other nodes need not wait for this one. */
  async stop(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.subscriber.off('message', this.onChannelMessage);
    const held = [...this.leases];
    this.leases.clear();
    await Promise.all([this.subscriber.unsubscribe(RateLimitLeases.channel(this.nodeId)), ...held.map(([key, lease]) => this.settle(key, lease, 'release'))]).catch((err: unknown) =>
      this.logger.warn(failure(err), 'rate limit leases not handed back'),
    );
  }

  /** Starts taking the lease of `key` ahead of its first request. */
  prepare(key: string): void {
    if (!this.leases.has(key)) void this.acquire(key);
  }

  /**
   * Takes one point: at once (returns nothing, or throws the RateLimiterRes of a refusal) under
   * a lease, otherwise through Redis (returns the promise of the decision).
   */
  consume(key: string): void | Promise<unknown> {
    const now = performance.now();
    const lease = this.leases.get(key);
    if (lease && now < lease.validUntil) return this.takeLocally(lease, now);
    return this.acquire(key).then((): unknown => {
      const acquired = this.leases.get(key);
      const at = performance.now();
      return acquired && at < acquired.validUntil ? this.takeLocally(acquired, at) : this.shared.consume(key);
    });
  }

  private takeLocally(lease: Lease, now: number): void {
    if (lease.windowEnd !== 0 && now >= lease.windowEnd) {
      // The window is over here and (with its expiry) in Redis: a new one starts from zero.
      lease.used = 0;
      lease.acked = 0;
      lease.windowEnd = 0;
    }
    lease.lastUsed = now;
    // rate-limiter-flexible's own way to refuse: its limiters reject with a RateLimiterRes, not an Error.
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- see above
    if (lease.used >= this.points) throw new RateLimiterRes(0, lease.windowEnd - now, lease.used + 1);
    lease.used += 1;
    if (lease.windowEnd === 0) lease.windowEnd = now + this.durationMs;
  }

  /** Adds the lease's unwritten points to Redis and renews or hands over the lease; true while still held. */
  private settle(key: string, lease: Lease, mode: SettleMode): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      const sentAt = performance.now();
      const window = lease.windowEnd;
      const msLeft = window === 0 ? 0 : Math.ceil(window - sentAt);
      const delta = msLeft > 0 ? lease.used - lease.acked : 0;
      const [held, count] = await this.redis.seanceLeaseSettle(RateLimitLeases.holderKey(key), this.shared.getKey(key), this.nodeId, delta, msLeft, mode, LEASE_MS, SHARED_MS);
      if (msLeft > 0 && lease.windowEnd === window) {
        lease.acked += delta;
        // Points Redis has beyond ours were counted by another node before this lease began: ours too.
        if (count > lease.acked) {
          lease.used += count - lease.acked;
          lease.acked = count;
        }
      }
      if (held === 1) lease.validUntil = Math.max(lease.validUntil, sentAt + LEASE_MS - LOCAL_MARGIN_MS);
      return held === 1;
    };
    const next = lease.settling.then(run, run);
    lease.settling = next.catch(() => undefined);
    return next;
  }

  /** Every FLUSH_MS: leases used since the last flush are written and renewed; lapsed ones are handed back. */
  private flushAll(): void {
    const now = performance.now();
    const previous = this.lastFlush;
    this.lastFlush = now;
    for (const [key, lease] of this.leases) {
      const lapsed = now >= lease.validUntil;
      // Unused since the last flush and nothing to write: not renewed, it lapses within LEASE_MS.
      if (!lapsed && lease.lastUsed < previous && lease.used === lease.acked) continue;
      if (lapsed) this.leases.delete(key);
      this.settle(key, lease, lapsed ? 'release' : 'renew').then(
        (held) => {
          if (!held) this.drop(key, lease);
        },
        (err: unknown) => {
          this.drop(key, lease);
          this.logger.debug(failure(err), 'rate limit lease not renewed; dropped');
        },
      );
    }
  }

  /** One acquisition per key at a time; every request waiting for it shares the outcome. */
  private acquire(key: string): Promise<void> {
    let pending = this.acquiring.get(key);
    if (!pending) {
      pending = this.runAcquire(key)
        .catch((err: unknown) => this.logger.debug(failure(err), 'rate limit lease not taken; counting in Redis'))
        .finally(() => this.acquiring.delete(key));
      this.acquiring.set(key, pending);
    }
    return pending;
  }

  private async runAcquire(key: string): Promise<void> {
    const holderKey = RateLimitLeases.holderKey(key);
    const stale = this.leases.get(key);
    if (stale) {
      // Our own lease ran past its local validity (a slow renewal): renew it, its points written first.
      if (await this.settle(key, stale, 'renew')) return;
      this.drop(key, stale);
    }
    for (let round = 0; round < MAX_ACQUIRE_ROUNDS; round++) {
      const revocationsBefore = this.revocations;
      const sentAt = performance.now();
      const [holder, count, pttl] = await this.redis.seanceLeaseAcquire(holderKey, this.shared.getKey(key), this.nodeId, LEASE_MS);
      if (holder === this.nodeId) {
        if (this.revocations !== revocationsBefore) return;
        const open = pttl > 0;
        this.leases.set(key, newLease(sentAt + LEASE_MS - LOCAL_MARGIN_MS, open ? count : 0, open ? performance.now() + pttl : 0));
        return;
      }
      if (holder === SHARED) return;
      if (holder === FENCE + this.nodeId) {
        // Someone asked for our lease and we had already let it go: hand it over now.
        await this.settle(key, newLease(0, 0, 0), 'share');
        continue;
      }
      await this.revoke(holder.startsWith(FENCE) ? holder.slice(FENCE.length) : holder, key);
    }
  }

  /**
   * Fences `holder`'s lease, asks it to give the lease up, and waits until it has (its answer,
   * or Redis showing the lease handed over) or until the lease has run out (a dead holder).
   */
  private async revoke(holder: string, key: string): Promise<void> {
    const holderKey = RateLimitLeases.holderKey(key);
    const pttl = await this.redis.seanceLeaseFence(holderKey, holder);
    if (pttl === -2) return;
    const id = randomUUID();
    let answered = false;
    const answer = new Promise<void>((resolve) =>
      this.awaitingRelease.set(id, () => {
        answered = true;
        resolve();
      }),
    );
    try {
      const request: ChannelMessage = { type: 'revoke', key, from: this.nodeId, id };
      await this.redis.publish(RateLimitLeases.channel(holder), JSON.stringify(request));
      const deadline = performance.now() + (pttl > 0 ? pttl : LEASE_MS) + POLL_MS;
      while (!answered && performance.now() < deadline) {
        await Promise.race([answer, sleep(POLL_MS)]);
        if (answered) break;
        const current = await this.redis.get(holderKey);
        if (current !== holder && current !== FENCE + holder) break;
      }
      if (!answered) this.logger.info({ holder, handed_over: performance.now() < deadline }, 'rate limit lease holder did not answer; waited for its lease to end');
    } finally {
      this.awaitingRelease.delete(id);
    }
  }

  private readonly onChannelMessage = (channel: string, text: string): void => {
    if (channel !== RateLimitLeases.channel(this.nodeId)) return;
    const read = readLeaseMessage(text);
    if (!read.ok) {
      this.logger.warn({ channel, reason: read.reason }, 'malformed rate limit lease message dropped');
      return;
    }
    const message = read.message;
    if (message.type === 'released') {
      this.awaitingRelease.get(message.id)?.();
      return;
    }
    this.revocations += 1;
    const lease = this.leases.get(message.key);
    this.leases.delete(message.key);
    // The answer goes once Redis holds the count and the mark.
    const answer: ChannelMessage = { type: 'released', id: message.id };
    this.settle(message.key, lease ?? newLease(0, 0, 0), 'share')
      .then(() => this.redis.publish(RateLimitLeases.channel(message.from), JSON.stringify(answer)))
      .catch((err: unknown) => this.logger.warn(failure(err), 'could not release a rate limit lease'));
  };

  private drop(key: string, lease: Lease): void {
    if (this.leases.get(key) === lease) this.leases.delete(key);
  }
}
