import type { HistoryMessageView, SpiritResponseView } from './events';

/**
 * A stored message as the application gets it: a participant's or the spirit's, in one
 * shape. Live spirit answers also carry what only they have (`in_reply_to`, `audio_url`, …).
 */
export type SeanceMessage = HistoryMessageView & Partial<Pick<SpiritResponseView, 'in_reply_to' | 'word_count' | 'letter_timings' | 'audio_url'>>;

/** Reads the stored messages with `seq` > `afterSeq`, oldest first (the REST history). */
export type FetchAfter = (afterSeq: number) => Promise<SeanceMessage[]>;

/**
 * Hands each stored message on once, in `seq` order, from whatever arrives: join batches,
 * live events, a resume's replay. A repeat is dropped; a hole (an ordinary rejoin after too
 * much was missed) is filled from the REST history before anything after it is handed on.
 */
export class InOrder {
  private last: number | null;
  private readonly waiting = new Map<number, SeanceMessage>();
  private filling = false;

  constructor(
    lastSeq: number | null,
    private readonly deliver: (message: SeanceMessage) => void,
    private readonly fetchAfter: FetchAfter,
    private readonly onFillError: (err: unknown) => void,
  ) {
    this.last = lastSeq;
  }

  /** The highest `seq` handed on (null before the first join). */
  get lastSeq(): number | null {
    return this.last;
  }

  /** A join's messages. The first join starts the stream where its batch starts (an empty session: at 0). */
  joined(messages: SeanceMessage[]): void {
    if (this.last === null) this.last = messages.length > 0 ? messages[0].seq - 1 : 0;
    for (const m of messages) this.add(m);
  }

  add(message: SeanceMessage): void {
    if (this.last === null || message.seq <= this.last) return;
    this.waiting.set(message.seq, message);
    this.drain();
  }

  private drain(): void {
    this.handOnReady();
    if (this.waiting.size > 0 && !this.filling) void this.fill();
  }

  private handOnReady(): void {
    while (this.last !== null && this.waiting.has(this.last + 1)) {
      const next = this.waiting.get(this.last + 1)!;
      this.waiting.delete(next.seq);
      this.last = next.seq;
      this.deliver(next);
    }
  }

  private async fill(): Promise<void> {
    this.filling = true;
    try {
      while (this.waiting.size > 0 && this.last !== null) {
        const before = this.last;
        for (const m of await this.fetchAfter(before)) if (m.seq > before) this.waiting.set(m.seq, m);
        this.handOnReady();
        if (this.last === before && this.waiting.size > 0) {
          // The history cannot close the hole (it never should): go on after it, not stall.
          this.last = Math.min(...this.waiting.keys()) - 1;
          this.handOnReady();
        }
      }
    } catch (err) {
      this.onFillError(err);
    } finally {
      this.filling = false;
    }
  }
}
