/**
 * Work asked of the database one item at a time, written a batch per statement. What is asked
 * for within one macrotask goes together, as soon as the code asking returns; while
 * `maxInFlight` statements are under way, everything asked for meanwhile waits for one to end
 * and then goes together. Alone, an item waits for nothing but its own statement; under load,
 * batches grow instead of statements multiplying (each costs the database far more than a row).
 */
export interface BatchLimits<T> {
  /** Statements under way at once. */
  maxInFlight: number;
  /** Bound of one batch, in `sizeOf` units (one statement stays small); an item is never split. */
  maxSize: number;
  sizeOf?: (item: T) => number;
}

interface Asked<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export class StatementBatches<T, R> {
  private queue: Array<Asked<T, R>> = [];
  private scheduled = false;
  private inFlight = 0;

  /** `write` stores a batch and resolves with each item's result, in order; a failure rejects every item of the batch. */
  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly limits: BatchLimits<T>,
  ) {}

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        this.flush();
      });
    });
  }

  private flush(): void {
    const sizeOf = this.limits.sizeOf ?? (() => 1);
    while (this.queue.length > 0 && this.inFlight < this.limits.maxInFlight) {
      let take = 0;
      let size = 0;
      while (take < this.queue.length && (take === 0 || size + sizeOf(this.queue[take].item) <= this.limits.maxSize)) {
        size += sizeOf(this.queue[take].item);
        take += 1;
      }
      this.inFlight += 1;
      void this.run(this.queue.splice(0, take)).finally(() => {
        this.inFlight -= 1;
        this.flush();
      });
    }
  }

  private async run(batch: Array<Asked<T, R>>): Promise<void> {
    try {
      const results = await this.write(batch.map((asked) => asked.item));
      batch.forEach((asked, i) => asked.resolve(results[i]));
    } catch (err) {
      for (const asked of batch) asked.reject(err);
    }
  }
}
