/**
 * A connection's budget of client events (CLIENT_EVENT_RATE): a token bucket that refills
 * `rate` tokens a second up to `burst`. An event past it is dropped before it is queued, so a
 * flood costs the node neither work nor memory; the client hears of it at most once a second.
 */
const REFUSAL_NOTICE_MS = 1000;

export class EventBudget {
  private tokens: number;
  private refilledAt: number;
  private noticedAt = -Infinity;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Spends one event; false when the budget is empty (drop the event). */
  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True at most once a second: whether a dropped event is answered with RATE_LIMITED. */
  shouldNotify(now = Date.now()): boolean {
    if (now - this.noticedAt < REFUSAL_NOTICE_MS) return false;
    this.noticedAt = now;
    return true;
  }
}
