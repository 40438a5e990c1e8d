/**
 * The spirit: asks the configured provider, bounds each attempt in time, retries with
 * backoff, and answers from the built-in oracle when the provider cannot. `reply` never
 * rejects, so every question gets a `spirit_response`.
 *
 * The provider sits behind a circuit breaker (cockatiel): after `breakerFailures` failed
 * attempts in a row, questions go straight to the oracle for `breakerCooldownMs` instead of
 * each waiting out the timeouts and retries; then one question probes the provider, and
 * its success closes the breaker again. Each node keeps its own breaker.
 */
import { performance } from 'node:perf_hooks';
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import type { Config } from '../../../config';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';
import { GeminiProvider } from './gemini';
import { OpenAIProvider } from './openai';
import { OracleProvider, oracleAnswer } from './oracle';
import { drawTimings, shapeReply, timingBands, type ShapedReply } from './shape';
import type { SpiritProvider, SpiritReply, SpiritRequest } from './types';

export type { SpiritReply } from './types';

export type SpiritConfig = Config['spirit'];

// A share of each backoff delay drawn at random, so that nodes retrying after one outage
// do not hit the provider in step.
const JITTER = 0.2;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The oracle's answers come from a fixed list, so their cleaned text, word count and timing
 * bands are worked out once each; the letter timings are drawn afresh for every answer.
 */
const oracleShapes = new Map<string, { message: string; word_count: number; bands: Int16Array }>();
function shapeOracleAnswer(answer: string): ShapedReply {
  let shaped = oracleShapes.get(answer);
  if (!shaped) {
    const { message, word_count } = shapeReply(answer);
    shaped = { message, word_count, bands: timingBands(message) };
    oracleShapes.set(answer, shaped);
  }
  return { message: shaped.message, word_count: shaped.word_count, letter_timings: drawTimings(shaped.bands) };
}

// Punctuation alone ("...", "?") is not an answer the board can spell out.
function isUsable(shaped: ShapedReply): boolean {
  return /[\p{L}\p{N}]/u.test(shaped.message);
}

export class SpiritService {
  /** False for the oracle, which ignores history: callers can skip loading it. */
  readonly needsHistory: boolean;
  private readonly breaker: CircuitBreakerPolicy;

  constructor(
    private readonly config: SpiritConfig,
    private readonly logger: Logger,
    private readonly provider: SpiritProvider,
    private readonly metrics?: Metrics,
  ) {
    this.needsHistory = provider.name !== 'oracle';
    this.breaker = circuitBreaker(handleAll, {
      halfOpenAfter: config.breakerCooldownMs,
      breaker: new ConsecutiveBreaker(config.breakerFailures),
    });
    metrics?.registerSpiritProvider(provider.name);
    metrics?.breakerState(provider.name, CircuitState.Closed);
    this.breaker.onStateChange((state) => {
      metrics?.breakerState(provider.name, state);
      if (state === CircuitState.Open) this.logger.warn({ provider: provider.name, cooldown_ms: config.breakerCooldownMs }, 'spirit breaker open: the oracle answers until a probe succeeds');
      if (state === CircuitState.Closed) this.logger.info({ provider: provider.name }, 'spirit breaker closed: the provider answers again');
    });
  }

  /** closed, open or halfOpen (tests and diagnostics). */
  get breakerState(): 'closed' | 'open' | 'halfOpen' | 'isolated' {
    return (['closed', 'open', 'halfOpen', 'isolated'] as const)[this.breaker.state];
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
    return this.timed(() => this.oracle(question));
  }

  async reply(req: SpiritRequest): Promise<SpiritReply> {
    const started = performance.now();
    const reply = await this.answer(req);
    this.metrics?.spiritAnswered(this.provider.name, (performance.now() - started) / 1000);
    return reply;
  }

  private timed(answer: () => SpiritReply): SpiritReply {
    const started = performance.now();
    const reply = answer();
    this.metrics?.spiritAnswered(this.provider.name, (performance.now() - started) / 1000);
    return reply;
  }

  private async answer(req: SpiritRequest): Promise<SpiritReply> {
    // No timer, no retry loop for the oracle: it only takes its time, so that clients see
    // `spirit_thinking` before the answer.
    if (this.provider instanceof OracleProvider) {
      // From the question's time: an answer taken over from a node that died is not delayed twice.
      const wait = this.config.oracleDelayMs - (req.askedAt === undefined ? 0 : Date.now() - req.askedAt);
      if (wait > 0) await delay(wait);
      return this.oracle(req.question);
    }
    const attempts = 1 + Math.max(0, this.config.retries);
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        const shaped = await this.breaker.execute(async () => {
          const answer = shapeReply(await this.attempt(req));
          if (!isUsable(answer)) throw new Error('provider answered with no usable text');
          return answer;
        });
        return { ...shaped, provider: this.provider.name, fallback: false };
      } catch (err) {
        // Open (or half-open with its probe under way): no call was made, the oracle answers now.
        if (err instanceof BrokenCircuitError) break;
        this.metrics?.spiritFailed(this.provider.name);
        this.logger.warn({ err, provider: this.provider.name, attempt, session_id: req.sessionId }, 'spirit provider failed');
        if (attempt < attempts && this.breaker.state !== CircuitState.Open) await delay(this.backoff(attempt));
      }
    }
    this.logger.warn({ provider: this.provider.name, breaker: this.breakerState, session_id: req.sessionId }, 'spirit answered from the oracle');
    return { ...shapeOracleAnswer(oracleAnswer(req.question)), provider: 'oracle', fallback: true };
  }

  private oracle(question: string): SpiritReply {
    return { ...shapeOracleAnswer(oracleAnswer(question)), provider: 'oracle', fallback: false };
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
export function createSpiritService(config: SpiritConfig, logger: Logger, providerOverride?: SpiritProvider, metrics?: Metrics): SpiritService {
  return new SpiritService(config, logger, providerOverride ?? providerFor(config), metrics);
}
