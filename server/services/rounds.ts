/**
 * Work that runs in rounds on a timer, one round at a time: a round asked for while one is
 * under way joins it, and stopping waits for the round under way. The cluster's leased jobs
 * (session maintenance, owed answers) run on it.
 */
export class Rounds {
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;

  /** `work` must not reject: a round's failure is its own to log. */
  constructor(
    private readonly intervalMs: number,
    private readonly work: () => Promise<void>,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  /** One round now, or the one under way. */
  run(): Promise<void> {
    this.round ??= this.work().finally(() => (this.round = null));
    return this.round;
  }

  /** No more rounds; resolves once the one under way (if any) is done. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.round;
  }
}
