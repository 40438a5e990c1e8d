/**
 * A cluster-wide rate limit that a node can decide without a Redis round trip per request.
 *
 * The count of a key (one participant in one session) lives in Redis, under the key
 * rate-limiter-flexible gives it, so the limit holds across nodes. The node that serves the key
 * takes a lease on it (normally when the participant joins): while it holds the lease no other
 * node touches that count, so the holder keeps it in memory, decides each request at once, and
 * writes the count (and the time left in its window) back to Redis every FLUSH_MS.
 *
 * When another node needs the same key (the participant is connected there too), it asks the
 * holder to give the lease up. The holder stops deciding locally, writes its count, marks the
 * key shared and answers, all on one connection, so Redis holds every point the holder admitted
 * before anyone reads the answer. From then until the mark expires every node consumes in Redis
 * and waits for the answer, exactly as without leases. A holder that does not answer within
 * REVOKE_TIMEOUT_MS is taken for dead: what it admitted in its last FLUSH_MS is not counted.
 * Losing the Redis connection drops every lease this node holds (a restarted Redis remembers
 * none); a node that stops hands its leases back.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { redisNames } from '../cluster/names';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../logger';

/** The holder value of a key every node consumes in Redis. */
const SHARED = '*';
/** How long a lease (and a shared mark) lasts in Redis; a holder renews it at half time. */
const LEASE_MS = 30_000;
const REVOKE_TIMEOUT_MS = 500;
/** How often a holder writes its counts to Redis (what a crashed holder can leave uncounted). */
const FLUSH_MS = 1_000;
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

/** Gives the lease up if `ARGV[1]` still holds it. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/** Marks the key shared if `ARGV[1]` still holds it. */
const SHARE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], '${SHARED}', 'PX', ARGV[2])
end
return 1`;

type LeaseRedis = Redis & {
  seanceLeaseAcquire(holderKey: string, countKey: string, nodeId: string, leaseMs: number): Promise<[string, number, number]>;
  seanceLeaseShare(holderKey: string, nodeId: string, leaseMs: number): Promise<number>;
  seanceLeaseRelease(holderKey: string, nodeId: string): Promise<number>;
};

interface Lease {
  /** Early bound of the lease's expiry in Redis (monotonic ms). */
  validUntil: number;
  renewing: boolean;
  /** Points used in the current window (Redis has them after the next flush). */
  used: number;
  /** When the current window ends (monotonic ms); 0 when no window is open. */
  windowEnd: number;
  /** Holds points Redis has not been told about. */
  dirty: boolean;
}

/** Logs a Redis failure by its message alone (no stack: it is an expected, recoverable event). */
const failure = (err: unknown) => ({ err: { message: (err as Error).message } });

type ChannelMessage = { type: 'revoke'; key: string; from: string; id: string } | { type: 'released'; id: string };

export class RateLimitLeases {
  private readonly redis: LeaseRedis;
  private readonly leases = new Map<string, Lease>();
  private readonly acquiring = new Map<string, Promise<void>>();
  private readonly awaitingRelease = new Map<string, () => void>();
  /** Counts revocations received: an acquisition that straddles one does not install its lease. */
  private revocations = 0;
  private readonly durationMs: number;
  private nextSweep = 0;
  private flushTimer: NodeJS.Timeout | null = null;

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
    this.redis.defineCommand('seanceLeaseShare', { numberOfKeys: 1, lua: SHARE });
    this.redis.defineCommand('seanceLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
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
    await Promise.all([
      this.subscriber.unsubscribe(RateLimitLeases.channel(this.nodeId)),
      ...held.map(([key, lease]) => this.flush(key, lease).then(() => this.redis.seanceLeaseRelease(RateLimitLeases.holderKey(key), this.nodeId))),
    ]).catch((err: unknown) => this.logger.warn(failure(err), 'rate limit leases not handed back'));
  }

  /** Starts taking the lease of `key` ahead of its first request (at join). */
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
    if (lease && now < lease.validUntil) return this.takeLocally(key, lease, now);
    return this.acquire(key).then((): unknown => {
      const acquired = this.leases.get(key);
      return acquired ? this.takeLocally(key, acquired, performance.now()) : this.shared.consume(key);
    });
  }

  private takeLocally(key: string, lease: Lease, now: number): void {
    if (lease.windowEnd !== 0 && now >= lease.windowEnd) {
      lease.used = 0;
      lease.windowEnd = 0;
    }
    // rate-limiter-flexible's own way to refuse: its limiters reject with a RateLimiterRes, not an Error.
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- see above
    if (lease.used >= this.points) throw new RateLimiterRes(0, lease.windowEnd - now, lease.used + 1);
    lease.used += 1;
    if (lease.windowEnd === 0) lease.windowEnd = now + this.durationMs;
    lease.dirty = true;
    if (now >= lease.validUntil - LEASE_MS / 2 && !lease.renewing) this.renew(key, lease);
  }

  /** Tells Redis a lease's count, with the time left in its window (it expires with it there too). */
  private flush(key: string, lease: Lease): Promise<unknown> {
    if (!lease.dirty) return Promise.resolve();
    lease.dirty = false;
    const msLeft = Math.ceil(lease.windowEnd - performance.now());
    if (lease.windowEnd === 0 || msLeft <= 0) return Promise.resolve();
    return this.redis.set(this.shared.getKey(key), lease.used, 'PX', msLeft);
  }

  private flushAll(): void {
    this.sweep(performance.now());
    for (const [key, lease] of this.leases) {
      this.flush(key, lease).catch((err: unknown) => {
        lease.dirty = true;
        this.logger.debug(failure(err), 'rate limit count not written; retrying');
      });
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
    for (let round = 0; round < MAX_ACQUIRE_ROUNDS; round++) {
      const revocationsBefore = this.revocations;
      const sentAt = performance.now();
      const [holder, count, pttl] = await this.redis.seanceLeaseAcquire(holderKey, this.shared.getKey(key), this.nodeId, LEASE_MS);
      if (holder === this.nodeId) {
        if (this.revocations !== revocationsBefore) return;
        this.install(key, sentAt, count, pttl);
        return;
      }
      if (holder === SHARED) return;
      await this.revoke(holder, key);
    }
  }

  /** Starts a lease from Redis's count and window. */
  private install(key: string, sentAt: number, count: number, pttl: number): void {
    const open = pttl > 0;
    this.leases.set(key, { validUntil: sentAt + LEASE_MS, renewing: false, used: open ? count : 0, windowEnd: open ? performance.now() + pttl : 0, dirty: false });
  }

  /** Asks `holder` to give the lease up; a holder that does not answer in time is taken for dead. */
  private async revoke(holder: string, key: string): Promise<void> {
    const id = randomUUID();
    const released = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), REVOKE_TIMEOUT_MS);
      this.awaitingRelease.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    const request: ChannelMessage = { type: 'revoke', key, from: this.nodeId, id };
    await this.redis.publish(RateLimitLeases.channel(holder), JSON.stringify(request));
    const answered = await released;
    this.awaitingRelease.delete(id);
    if (!answered) {
      this.logger.warn({ holder }, 'rate limit lease holder did not answer; taking it for dead');
      await this.redis.seanceLeaseShare(RateLimitLeases.holderKey(key), holder, LEASE_MS);
    }
  }

  private readonly onChannelMessage = (channel: string, text: string): void => {
    if (channel !== RateLimitLeases.channel(this.nodeId)) return;
    let message: ChannelMessage;
    try {
      message = JSON.parse(text) as ChannelMessage;
    } catch {
      return;
    }
    if (message.type === 'released') {
      this.awaitingRelease.get(message.id)?.();
      return;
    }
    this.revocations += 1;
    const lease = this.leases.get(message.key);
    this.leases.delete(message.key);
    // The answer goes once Redis holds the count and the mark.
    const answer: ChannelMessage = { type: 'released', id: message.id };
    void Promise.all([lease ? this.flush(message.key, lease) : undefined, this.redis.seanceLeaseShare(RateLimitLeases.holderKey(message.key), this.nodeId, LEASE_MS)])
      .then(() => this.redis.publish(RateLimitLeases.channel(message.from), JSON.stringify(answer)))
      .catch((err: unknown) => this.logger.warn(failure(err), 'could not release a rate limit lease'));
  };

  private renew(key: string, lease: Lease): void {
    lease.renewing = true;
    const sentAt = performance.now();
    this.redis.seanceLeaseAcquire(RateLimitLeases.holderKey(key), this.shared.getKey(key), this.nodeId, LEASE_MS).then(
      ([holder]) => {
        lease.renewing = false;
        if (holder === this.nodeId) lease.validUntil = sentAt + LEASE_MS;
        else this.drop(key, lease);
      },
      (err: unknown) => this.drop(key, lease, err),
    );
  }

  private drop(key: string, lease: Lease, err?: unknown): void {
    if (this.leases.get(key) === lease) this.leases.delete(key);
    if (err) this.logger.warn(failure(err), 'rate limit lease dropped');
  }

  /** Forgets expired leases now and then (from the flush timer), so the map holds only keys in use. */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + LEASE_MS;
    for (const [key, lease] of this.leases) if (now >= lease.validUntil && !lease.dirty) this.leases.delete(key);
  }
}
