/**
 * Work asked of the database one item at a time, done a batch per statement: the message
 * writer's and the users' rows, and the reads every join makes (its session, its latest
 * messages). What is asked for within one macrotask goes together, as soon as the code asking
 * returns; while `maxInFlight` statements are under way, everything asked for meanwhile waits
 * for one to end and then goes together. Alone, an item waits for nothing but its own statement; under load,
 * batches grow instead of statements multiplying (each costs the database far more than a row).
 *
 * Items may name a key (`keyOf`: a message's session): while a statement holding a key is under
 * way, later items with that key wait here for it and then go together. Their statement would
 * only have waited in the database for the same row, holding a slot, and each would have
 * committed on its own.
 */
export interface BatchLimits<T> {
  /** Statements under way at once. */
  maxInFlight: number;
  /** Bound of one batch, in `sizeOf` units (one statement stays small); an item is never split. */
  maxSize: number;
  sizeOf?: (item: T) => number;
  /** The key whose statements go one at a time (null: none). */
  keyOf?: (item: T) => string | null;
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
  /** Keys held by a statement under way. */
  private readonly busy = new Set<string>();

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
    const keyOf = this.limits.keyOf ?? (() => null);
    while (this.queue.length > 0 && this.inFlight < this.limits.maxInFlight) {
      // In queue order, skipping what waits for its key (what is skipped keeps its place, and a
      // key's items their order), until the batch is full.
      const batch: Array<Asked<T, R>> = [];
      const waiting: Array<Asked<T, R>> = [];
      const keys = new Set<string>();
      let size = 0;
      for (let i = 0; i < this.queue.length; i += 1) {
        const asked = this.queue[i];
        const key = keyOf(asked.item);
        if (key !== null && this.busy.has(key)) {
          waiting.push(asked);
          continue;
        }
        if (batch.length > 0 && size + sizeOf(asked.item) > this.limits.maxSize) {
          waiting.push(...this.queue.slice(i));
          break;
        }
        batch.push(asked);
        size += sizeOf(asked.item);
        if (key !== null) keys.add(key);
      }
      if (batch.length === 0) return;
      this.queue = waiting;
      for (const key of keys) this.busy.add(key);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        for (const key of keys) this.busy.delete(key);
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
