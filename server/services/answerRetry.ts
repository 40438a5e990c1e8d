/**
 * Stores a spirit answer through a database outage. The answer is already made when its
 * store fails (PostgreSQL restarting, failing over): instead of dropping it, it is stored
 * again with backoff for a bounded time, then the caller broadcasts it. The first attempt is
 * the plain store, so nothing changes while the database is up.
 *
 * Bounded: each answer retries for at most `windowMs`; at most `maxWaiting` answers wait at
 * once on a node (more fail at once). One warning opens an outage ("episode") and one line
 * closes it, whatever the number of answers and retries in between.
 */
import { isDependencyUnavailable } from '../errors';
import type { HistoryMessageView } from '../events';
import type { Logger } from '../logger';
import type { MessageStore } from '../storage/ports';

export interface AnswerRetryOptions {
  /** How long one answer keeps trying (default 30 s). */
  windowMs?: number;
  /** Answers waiting at once on this node (default 1,000). */
  maxWaiting?: number;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2_000;

interface Episode {
  since: number;
  stored: number;
  lost: number;
}

export class AnswerRetry {
  private readonly windowMs: number;
  private readonly maxWaiting: number;
  private waiting = 0;
  private episode: Episode | null = null;

  constructor(
    private readonly messages: MessageStore,
    private readonly log: Logger,
    opts: AnswerRetryOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 30_000;
    this.maxWaiting = opts.maxWaiting ?? 1_000;
  }

  /** Answers waiting for the database on this node. */
  get size(): number {
    return this.waiting;
  }

  /** The answer to an owed question stored; null when `owner` no longer owes it (another node took it over). */
  async store(sessionId: string, inReplyTo: number, owner: string, text: string): Promise<HistoryMessageView | null> {
    try {
      return await this.messages.storeOwedAnswer(sessionId, inReplyTo, owner, text);
    } catch (err) {
      if (!isDependencyUnavailable(err) || this.waiting >= this.maxWaiting) throw err;
      return this.retry(sessionId, inReplyTo, owner, text, err);
    }
  }

  private async retry(sessionId: string, inReplyTo: number, owner: string, text: string, first: unknown): Promise<HistoryMessageView | null> {
    this.waiting += 1;
    if (!this.episode) {
      this.episode = { since: Date.now(), stored: 0, lost: 0 };
      this.log.warn({ err: first, window_ms: this.windowMs }, 'spirit answers cannot be stored: retrying them until the database is back');
    }
    const episode = this.episode;
    const deadline = Date.now() + this.windowMs;
    let delay = FIRST_DELAY_MS;
    try {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(delay * (0.8 + Math.random() * 0.4), Math.max(0, deadline - Date.now()))));
        delay = Math.min(delay * 2, MAX_DELAY_MS);
        try {
          // The failed attempt may have been stored after all (a connection cut after the commit).
          const stored = (await this.messages.answerTo(sessionId, inReplyTo)) ?? (await this.messages.storeOwedAnswer(sessionId, inReplyTo, owner, text));
          episode.stored += 1;
          return stored;
        } catch (err) {
          if (!isDependencyUnavailable(err) || Date.now() >= deadline) {
            episode.lost += 1;
            throw err;
          }
        }
      }
    } finally {
      this.waiting -= 1;
      if (this.waiting === 0 && this.episode === episode) this.closeEpisode(episode);
    }
  }

  private closeEpisode(episode: Episode): void {
    this.episode = null;
    const fields = { stored_late: episode.stored, lost: episode.lost, outage_ms: Date.now() - episode.since };
    if (episode.lost > 0) this.log.error(fields, 'spirit answers lost: the database stayed away too long');
    else this.log.info(fields, 'spirit answers stored again');
  }
}
