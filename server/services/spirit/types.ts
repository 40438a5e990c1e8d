/**
 * The seam between the spirit service and the language models behind it. A provider only
 * turns a question into raw text; shaping, retries, timeouts and the offline fallback
 * belong to the service, so every provider stays a thin wire adapter.
 */

/** One message of the session as the prompt sees it. */
export interface SpiritTurn {
  /** null for the spirit's own messages. */
  user_name: string | null;
  message: string;
  is_spirit: boolean;
}

export interface SpiritRequest {
  sessionId: string;
  question: string;
  /** Name of the participant who asked. */
  askedBy: string;
  /** The session's last messages (at most 10), oldest first, normally ending with the question. */
  history: SpiritTurn[];
  /** When the question was stored (ms since the epoch): the oracle's delay counts from it. Default: now. */
  askedAt?: number;
}

export interface SpiritProvider {
  readonly name: string;
  /** Raw answer text; rejects on any failure so the service can retry or fall back. */
  answer(req: SpiritRequest, signal: AbortSignal): Promise<string>;
}

/** What the service hands back: already within the contract's limits. */
export interface SpiritReply {
  message: string;
  word_count: number;
  /** One delay in ms per character of `message`. */
  letter_timings: number[];
  /** The provider that produced `message` ('oracle' when it came from the fallback). */
  provider: string;
  /** True when the configured provider failed and the oracle answered instead. */
  fallback: boolean;
}
