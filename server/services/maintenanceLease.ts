/**
 * Which node runs a job of the whole cluster (housekeeping: idle sessions, message retention;
 * the answers owed by nodes that are gone): the one holding the job's lease in Redis, a key naming its node with an expiry that the holder renews on
 * every round. A holder that dies stops renewing and another node takes the lease once it
 * expires. A single node without Redis always holds it.
 */
import type Redis from 'ioredis';
import { redisNames } from '../cluster/names';
import type { Logger } from '../logger';

export interface Lease {
  /** Takes the lease or renews it; true while this node holds it. Never rejects. */
  acquire(): Promise<boolean>;
  /** Lets go at shutdown, so another node takes over at once instead of after the expiry. */
  release(): Promise<void>;
}

// Renew when ours, take when free, in one step: two nodes never both believe they hold it.
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class RedisLease implements Lease {
  constructor(
    private readonly redis: Redis,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly key: string = redisNames.maintenanceLease,
  ) {}

  async acquire(): Promise<boolean> {
    try {
      return (await this.redis.eval(ACQUIRE, 1, this.key, this.owner, String(this.ttlMs))) === 1;
    } catch (err) {
      // Redis away: nobody can prove they hold it, so nobody works; the next round retries.
      this.logger.debug({ err: { message: (err as Error).message }, lease: this.key }, 'lease unavailable');
      return false;
    }
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.owner).catch(() => undefined);
  }
}

export class LocalLease implements Lease {
  acquire(): Promise<boolean> {
    return Promise.resolve(true);
  }

  release(): Promise<void> {
    return Promise.resolve();
  }
}
