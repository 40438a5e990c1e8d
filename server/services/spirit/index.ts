/**
 * The spirit: asks the configured provider, bounds each attempt in time, retries with
 * backoff, and answers from the built-in oracle when the provider cannot. `reply` never
 * rejects, so every question gets a `spirit_response`.
 */
import type { Config } from '../../../config';
import type { Logger } from '../../logger';
import { GeminiProvider } from './gemini';
import { OpenAIProvider } from './openai';
import { OracleProvider, oracleAnswer } from './oracle';
import { shapeReply, type ShapedReply } from './shape';
import type { SpiritProvider, SpiritReply, SpiritRequest } from './types';

export type { SpiritProvider, SpiritReply, SpiritRequest, SpiritTurn } from './types';
export { HISTORY_LIMIT } from './personality';

export type SpiritConfig = Config['spirit'];

// A share of each backoff delay drawn at random, so that nodes retrying after one outage
// do not hit the provider in step.
const JITTER = 0.2;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Punctuation alone ("...", "?") is not an answer the board can spell out.
function isUsable(shaped: ShapedReply): boolean {
  return /[\p{L}\p{N}]/u.test(shaped.message);
}

export class SpiritService {
  /** False for the oracle, which ignores history: callers can skip loading it. */
  readonly needsHistory: boolean;

  constructor(
    private readonly config: SpiritConfig,
    private readonly logger: Logger,
    private readonly provider: SpiritProvider,
  ) {
    this.needsHistory = provider.name !== 'oracle';
  }

  get providerName(): string {
    return this.provider.name;
  }

  /**
   * The answer right away when the provider is the built-in oracle with no delay configured
   * (it answers in-process and cannot fail); null when the answer has to be asked for (`reply`).
   */
  instantReply(question: string): SpiritReply | null {
    if (!(this.provider instanceof OracleProvider) || this.config.oracleDelayMs > 0) return null;
    return this.oracle(question);
  }

  async reply(req: SpiritRequest): Promise<SpiritReply> {
    // No timer, no retry loop for the oracle: it only takes its time, so that clients see
    // `spirit_thinking` before the answer.
    if (this.provider instanceof OracleProvider) {
      if (this.config.oracleDelayMs > 0) await delay(this.config.oracleDelayMs);
      return this.oracle(req.question);
    }
    const attempts = 1 + Math.max(0, this.config.retries);
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        const shaped = shapeReply(await this.attempt(req));
        if (!isUsable(shaped)) throw new Error('provider answered with no usable text');
        return { ...shaped, provider: this.provider.name, fallback: false };
      } catch (err) {
        this.logger.warn({ err, provider: this.provider.name, attempt, session_id: req.sessionId }, 'spirit provider failed');
        if (attempt < attempts) await delay(this.backoff(attempt));
      }
    }
    this.logger.warn({ provider: this.provider.name, attempts, session_id: req.sessionId }, 'spirit answered from the oracle');
    return { ...shapeReply(oracleAnswer(req.question)), provider: 'oracle', fallback: true };
  }

  private oracle(question: string): SpiritReply {
    return { ...shapeReply(oracleAnswer(question)), provider: 'oracle', fallback: false };
  }

  /** One call bounded by `timeoutMs`, even for a provider that ignores its signal. */
  private async attempt(req: SpiritRequest): Promise<string> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`spirit provider timed out after ${this.config.timeoutMs} ms`);
        controller.abort(err);
        reject(err);
      }, this.config.timeoutMs);
    });
    try {
      const answer = Promise.resolve(this.provider.answer(req, controller.signal));
      // The losing side of the race may still reject later; it has already been accounted for.
      answer.catch(() => undefined);
      return await Promise.race([answer, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private backoff(attempt: number): number {
    const base = this.config.retryBaseMs * 2 ** (attempt - 1);
    return Math.round(base * (1 - JITTER / 2 + Math.random() * JITTER));
  }
}

function providerFor(config: SpiritConfig): SpiritProvider {
  switch (config.provider) {
    case 'gemini':
      return new GeminiProvider(config.gemini);
    case 'openai':
      return new OpenAIProvider(config.openai);
    case 'oracle':
      return new OracleProvider();
  }
}

/** `providerOverride` lets tests and tools plug in a provider that config cannot name. */
export function createSpiritService(config: SpiritConfig, logger: Logger, providerOverride?: SpiritProvider): SpiritService {
  return new SpiritService(config, logger, providerOverride ?? providerFor(config));
}
