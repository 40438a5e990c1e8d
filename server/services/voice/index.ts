/**
 * The spirit's voice: turns a text into audio once for the whole cluster and keeps it.
 *
 * Audio is made lazily, on the first request for it (the audio path of an answer, or
 * POST /api/tts/generate), never ahead: most answers are only heard by the clients that
 * ask for them, and making every answer ahead would spend CPU (or a paid provider's money)
 * on the message path for audio nobody plays. The first request claims the text's key in
 * the database; a request for the same key on any node waits for that row instead of
 * calling the provider again. Per node, generation is bounded in time (TTS_TIMEOUT_MS, then
 * the built-in voice), in size (a paid provider's reply over TTS_MAX_BYTES is refused; the
 * built-in voice speaks at most 500 characters, in its own time limit) and in concurrency (TTS_CONCURRENCY, with a
 * short queue: beyond it, RATE_LIMITED).
 *
 * What is kept is bounded too. An answer's audio is its message's (its row goes with the
 * message); audio made for any other text (`tts/generate`, where anyone may send new texts) is
 * kept least recently used first out within TTS_CACHE_MAX_BYTES. A text already spoken for one
 * is copied for the other rather than asked of the provider again.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../../../config';
import { AppError } from '../../errors';
import type { Logger } from '../../logger';
import { BUILTIN_TIMEOUT_MS, BuiltinVoice } from './builtin';
import { ElevenLabsVoice } from './elevenlabs';
import { OpenAIVoice } from './openai';
import type { AudioOwner, AudioStore, StoredAudio } from '../../storage/ports';
import type { VoiceProvider } from './types';

export type { StoredAudio } from '../../storage/ports';
export type VoiceConfig = Config['voice'];

/** One piece of speech: where it is kept (`key`), what it says, and whose it is. */
interface Speech extends AudioOwner {
  key: string;
  voice: string;
  text: string;
}

/** Requests that may wait for a generation slot, per slot; more are refused (RATE_LIMITED). */
const QUEUE_PER_SLOT = 8;
const POLL_MS = 100;

export interface VoiceDeps {
  config: VoiceConfig;
  store: AudioStore;
  logger: Logger;
  /** Replaces the configured provider (tests). */
  provider?: VoiceProvider;
  /** How old a claim must be before another node may take it over (tests shorten it). */
  staleAfterMs?: number;
}

/** At most `limit` at once; a short queue behind them; beyond that, refuse at once. */
class Gate {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly maxQueue: number,
  ) {}

  async enter(): Promise<void> {
    if (this.active < this.limit) {
      this.active += 1;
      return;
    }
    if (this.queue.length >= this.maxQueue) throw new AppError('RATE_LIMITED', 'The spirit is hoarse: too much speech is being made; retry shortly', undefined, 2);
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }

  leave(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.active -= 1;
  }
}

export class VoiceService {
  readonly enabled: boolean;
  private readonly builtin: BuiltinVoice;
  private readonly provider: VoiceProvider | null;
  private readonly gate: Gate;
  /** One generation (or wait) per key on this node, however many requests ask for it. */
  private readonly inFlight = new Map<string, Promise<StoredAudio>>();
  /** Used-marks of cache hits still on their way to the store. */
  private readonly pendingMarks = new Set<Promise<void>>();
  /** A claim older than this belongs to a node that died mid-way: it may be taken over. */
  private readonly staleAfterMs: number;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly deps: VoiceDeps) {
    const { config } = deps;
    this.log = deps.logger;
    this.builtin = new BuiltinVoice(config.concurrency, this.log);
    this.provider = deps.provider ?? providerFor(config, this.builtin);
    this.enabled = this.provider !== null;
    this.gate = new Gate(config.concurrency, config.concurrency * QUEUE_PER_SLOT);
    this.staleAfterMs = deps.staleAfterMs ?? config.timeoutMs + BUILTIN_TIMEOUT_MS + 10_000;
  }

  get providerName(): string {
    return this.provider?.name ?? 'none';
  }

  /** Where an answer's audio is served, or null when speech is off. */
  audioUrl(sessionId: string, messageId: number): string | null {
    return this.enabled ? `/api/sessions/${sessionId}/messages/${messageId}/audio` : null;
  }

  /** The audio of any `text` in `requestedVoice` (or the provider's default), made at most once per cluster while it is kept. */
  speak(text: string, requestedVoice?: string): Promise<StoredAudio> {
    const provider = this.speaker();
    const voice = provider.voiceFor(requestedVoice);
    const contentKey = speechKey(provider, voice, text);
    return this.once(provider, { key: contentKey, contentKey, messageId: null, voice, text });
  }

  /** The audio of the spirit's answer `messageId` (its text `text`), kept as long as the message. */
  speakAnswer(messageId: number, text: string): Promise<StoredAudio> {
    const provider = this.speaker();
    const voice = provider.voiceFor(undefined);
    const contentKey = speechKey(provider, voice, text);
    const key = createHash('sha256').update(`${contentKey}:message:${messageId}`).digest('hex');
    return this.once(provider, { key, contentKey, messageId, voice, text });
  }

  private speaker(): VoiceProvider {
    if (!this.provider) throw new AppError('NOT_FOUND', 'Speech is turned off on this server (TTS_PROVIDER=none)');
    return this.provider;
  }

  /** One generation (or wait) per key on this node. */
  private once(provider: VoiceProvider, speech: Speech): Promise<StoredAudio> {
    let work = this.inFlight.get(speech.key);
    if (!work) {
      work = this.obtain(provider, speech).finally(() => this.inFlight.delete(speech.key));
      this.inFlight.set(speech.key, work);
    }
    return work;
  }

  /** Stops the built-in voice's processes; requests still waiting give up (the node is going away). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.builtin.close(), this.provider !== this.builtin ? this.provider?.close?.() : undefined]);
  }

  private async obtain(provider: VoiceProvider, speech: Speech): Promise<StoredAudio> {
    const { store } = this.deps;
    const { key } = speech;
    const deadline = Date.now() + this.staleAfterMs * 2;
    for (;;) {
      const found = await store.lookup(key);
      if (found.state === 'ready') {
        if (speech.messageId === null) this.markUsed(key);
        return found.audio;
      }
      let claim: string | null = null;
      if (found.state === 'absent' || Date.now() - found.claimedAt.getTime() > this.staleAfterMs) {
        await this.gate.enter();
        try {
          claim = found.state === 'absent' ? await store.claim(key, speech.voice, speech) : await store.takeOver(key, found.claim);
          if (claim) return await this.make(provider, speech, claim);
        } finally {
          this.gate.leave();
        }
      }
      // Another node is making it: wait for its row rather than asking the provider again.
      if (Date.now() > deadline || this.closed) throw new AppError('SERVICE_UNAVAILABLE', 'The spirit could not speak this time; try again');
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private async make(provider: VoiceProvider, speech: Speech, claim: string): Promise<StoredAudio> {
    const { key, voice, text } = speech;
    const copy = await this.deps.store.findContent(speech.contentKey);
    if (copy) {
      await this.keep(speech, claim, copy);
      return copy;
    }
    const started = Date.now();
    let spoken: { bytes: Buffer; contentType: StoredAudio['contentType']; provider: string; fallback: boolean };
    try {
      spoken = { ...(await this.attempt(provider, text, voice)), provider: provider.name, fallback: false };
    } catch (err) {
      if (provider === this.builtin) return this.giveUp(key, claim, err);
      this.log.warn({ err, provider: provider.name }, 'voice provider failed; the built-in voice speaks instead');
      try {
        spoken = { ...(await this.builtin.speak(text, this.builtin.voiceFor(undefined))), provider: this.builtin.name, fallback: true };
      } catch (fallbackErr) {
        return this.giveUp(key, claim, fallbackErr);
      }
    }
    const audio: StoredAudio = { ...spoken, digest: createHash('sha256').update(spoken.bytes).digest('hex').slice(0, 32) };
    await this.keep(speech, claim, audio);
    this.log.info({ provider: audio.provider, fallback: audio.fallback, bytes: audio.bytes.length, ms: Date.now() - started }, 'speech made');
    return audio;
  }

  /**
   * A hit marks its row used without making the caller wait; the next eviction waits for
   * those marks, so it never drops what was just used.
   */
  private markUsed(key: string): void {
    const marked = this.deps.store
      .touch(key)
      .catch((err: unknown) => this.log.warn({ err }, 'could not mark speech as used'))
      .finally(() => this.pendingMarks.delete(marked));
    this.pendingMarks.add(marked);
  }

  /** Stores what was made; audio of no message makes room for itself within TTS_CACHE_MAX_BYTES. */
  private async keep(speech: Speech, claim: string, audio: StoredAudio): Promise<void> {
    const { store } = this.deps;
    await store.complete(speech.key, claim, audio);
    if (speech.messageId !== null) return;
    try {
      await Promise.all(this.pendingMarks);
      const evicted = await store.evict(this.deps.config.cacheMaxBytes);
      if (evicted > 0) this.log.debug({ evicted }, 'least recently used speech dropped');
    } catch (err) {
      this.log.warn({ err }, 'could not drop least recently used speech');
    }
  }

  /** One provider call bounded by TTS_TIMEOUT_MS, even for a provider that ignores its signal. */
  private async attempt(provider: VoiceProvider, text: string, voice: string): Promise<{ bytes: Buffer; contentType: StoredAudio['contentType'] }> {
    if (provider === this.builtin) return provider.speak(text, voice, new AbortController().signal);
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`voice provider timed out after ${this.deps.config.timeoutMs} ms`);
        controller.abort(err);
        reject(err);
      }, this.deps.config.timeoutMs);
    });
    try {
      const spoken = provider.speak(text, voice, controller.signal);
      spoken.catch(() => undefined);
      return await Promise.race([spoken, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async giveUp(key: string, claim: string, err: unknown): Promise<never> {
    this.log.error({ err }, 'no voice could speak');
    await this.deps.store.abandon(key, claim).catch((abandonErr: unknown) => this.log.error({ err: abandonErr }, 'could not release a speech claim'));
    throw new AppError('SERVICE_UNAVAILABLE', 'The spirit could not speak this time; try again');
  }
}

/** The content address of a speech: who speaks, with which settings, in which voice, what. */
export function speechKey(provider: Pick<VoiceProvider, 'name' | 'fingerprint'>, voice: string, text: string): string {
  return createHash('sha256')
    .update(JSON.stringify([provider.name, provider.fingerprint, voice, text]))
    .digest('hex');
}

function providerFor(config: VoiceConfig, builtin: BuiltinVoice): VoiceProvider | null {
  switch (config.provider) {
    case 'none':
      return null;
    case 'elevenlabs':
      return new ElevenLabsVoice(config.elevenlabs, config.maxBytes);
    case 'openai':
      return new OpenAIVoice(config.openai, config.maxBytes);
    case 'espeak':
      return builtin;
  }
}
