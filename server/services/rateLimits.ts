/**
 * The limits of the contract (and speech requests), on rate-limiter-flexible: in Redis when the cluster has
 * one (so a limit holds across nodes), in memory otherwise. If Redis is unreachable the
 * Redis limiters fall back to an in-memory insurance limiter instead of failing requests.
 * Messages, the only limit on the hot path, are decided under a lease (see RateLimitLeases).
 */
import type Redis from 'ioredis';
import { redisNames } from '../cluster/names';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../../config';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import type { Metrics, RateLimitKind } from '../metrics';
import { RateLimitLeases } from './rateLimitLeases';

export type LimitName = 'message' | 'sessionCreate' | 'connection' | 'speech' | 'audio';

export interface RateLimitRedis {
  /** Counts, scripts and lease answers (one connection, so their order holds). */
  command: Redis;
  /** Lease requests addressed to this node. */
  sub: Redis;
}

const METRIC_KIND: Record<LimitName, RateLimitKind> = { message: 'message', sessionCreate: 'session_create', connection: 'connection', speech: 'speech', audio: 'audio' };
/** The limits against what a client may cost the others (seance_client_refusals_total's `rule`). */
const REFUSAL_RULE: Partial<Record<LimitName, string>> = { speech: 'speech_rate', audio: 'audio_rate' };

export class RateLimits {
  private readonly limiters: Record<LimitName, RateLimiterAbstract>;
  private readonly messageLeases: RateLimitLeases | null;

  constructor(
    limits: Config['limits'],
    redis: RateLimitRedis | null,
    nodeId: string,
    logger: Logger,
    private readonly metrics?: Metrics,
  ) {
    const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ keyPrefix, points, duration });
      if (!redis) return memory;
      return new RateLimiterRedis({ storeClient: redis.command, keyPrefix: redisNames.rateLimits.limiterPrefix(keyPrefix), points, duration, insuranceLimiter: memory });
    };
    this.limiters = {
      message: make('msg', limits.messagesPerWindow, limits.messageWindowSeconds),
      sessionCreate: make('create', limits.sessionCreatesPerMinute, 60),
      connection: make('conn', limits.connectionsPerMinute, 60),
      speech: make('speech', limits.speechPerMinute, 60),
      audio: make('audio', limits.audioPerMinute, 60),
    };
    this.messageLeases = redis
      ? new RateLimitLeases(this.limiters.message, limits.messagesPerWindow, limits.messageWindowSeconds, redis.command, redis.sub, nodeId, logger.child({ component: 'rate-limits' }))
      : null;
  }

  async start(): Promise<void> {
    await this.messageLeases?.start();
  }

  async stop(): Promise<void> {
    await this.messageLeases?.stop();
  }

  /** Takes one point for `key`, or throws RATE_LIMITED with the seconds to wait. */
  async consume(limit: LimitName, key: string): Promise<void> {
    try {
      await (limit === 'message' && this.messageLeases ? this.messageLeases.consume(key) : this.limiters[limit].consume(key));
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        const retryAfterSeconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        this.metrics?.rateLimitedOnce(METRIC_KIND[limit]);
        const rule = REFUSAL_RULE[limit];
        if (rule) this.metrics?.refused(rule);
        throw new AppError('RATE_LIMITED', `Too many requests; retry in ${retryAfterSeconds} s`, undefined, retryAfterSeconds);
      }
      throw rejection;
    }
  }

  /** Takes the lease of a participant's message limit ahead of its first message (which then need not wait for Redis). */
  prepareMessages(key: string): void {
    this.messageLeases?.prepare(key);
  }
}

/**
 * The key of a participant's message limit. The session id is its hash tag: the count and the
 * lease of one participant (and everything else of the session) share one Redis Cluster slot.
 */
export const messageLimitKey = (sessionId: string, participantId: string) => `{${sessionId}}:${participantId}`;
