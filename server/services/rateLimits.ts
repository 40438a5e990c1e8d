/**
 * The three limits of the contract, on rate-limiter-flexible: in Redis when the cluster has
 * one (so a limit holds across nodes), in memory otherwise. If Redis is unreachable the
 * Redis limiters fall back to an in-memory insurance limiter instead of failing requests.
 */
import type Redis from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../../config';
import { AppError } from '../errors';

export type LimitName = 'message' | 'sessionCreate' | 'connection';

export class RateLimits {
  private readonly limiters: Record<LimitName, RateLimiterAbstract>;

  constructor(limits: Config['limits'], redis: Redis | null) {
    const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ keyPrefix, points, duration });
      if (!redis) return memory;
      return new RateLimiterRedis({ storeClient: redis, keyPrefix: `seance:rl:${keyPrefix}`, points, duration, insuranceLimiter: memory });
    };
    this.limiters = {
      message: make('msg', limits.messagesPerWindow, limits.messageWindowSeconds),
      sessionCreate: make('create', limits.sessionCreatesPerMinute, 60),
      connection: make('conn', limits.connectionsPerMinute, 60),
    };
  }

  /** Takes one point for `key`, or throws RATE_LIMITED with the seconds to wait. */
  async consume(limit: LimitName, key: string): Promise<void> {
    try {
      await this.limiters[limit].consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        const retryAfterSeconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        throw new AppError('RATE_LIMITED', `Too many requests; retry in ${retryAfterSeconds} s`, undefined, retryAfterSeconds);
      }
      throw rejection;
    }
  }
}
