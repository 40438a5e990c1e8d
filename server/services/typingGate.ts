/**
 * `user_typing` at most once per 2 s per participant, however often `typing` comes and from
 * however many of its connections on this node. Per node, not cluster-wide: a participant's
 * connections (at most MAX_CONNECTIONS_PER_PARTICIPANT) usually share a node behind the sticky
 * load balancer, so the worst case is one `user_typing` per 2 s per node holding one of them;
 * deciding it cluster-wide would put a Redis round trip on every keystroke for an event that
 * is a hint, not a record.
 */
export const TYPING_INTERVAL_MS = 2000;
/** Past this many participants remembered, the ones whose interval is over are forgotten. */
const SWEEP_AT = 1000;

export class TypingGate {
  private readonly lastSent = new Map<string, number>();

  /** True when this participant's `user_typing` may go out now (and counts it as sent). */
  allow(sessionId: string, userId: string, now = Date.now()): boolean {
    const key = `${sessionId}/${userId}`;
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < TYPING_INTERVAL_MS) return false;
    if (this.lastSent.size >= SWEEP_AT) this.sweep(now);
    this.lastSent.set(key, now);
    return true;
  }

  private sweep(now: number): void {
    for (const [key, at] of this.lastSent) if (now - at >= TYPING_INTERVAL_MS) this.lastSent.delete(key);
  }
}
