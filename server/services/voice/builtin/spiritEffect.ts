/**
 * What turns a plain synthetic voice into the spirit's: our own small DSP on the PCM, run
 * in the synthesis worker. Three steps, in order:
 *  1. "tape slowdown": the speech is resampled as if played slower, which lowers its pitch
 *     and its formants together (a larger, darker speaker) and draws it out;
 *  2. a Schroeder reverb (four damped feedback combs, two all-passes): a stone room;
 *  3. a fading echo, then the whole is normalised to a fixed peak.
 * Everything is deterministic: the same input gives the same bytes on every node.
 */
import type { Pcm } from './wav';

export interface SpiritEffectOptions {
  /** Playback rate of the slowdown: 0.8 is 20 % lower in pitch and 25 % longer. */
  rate: number;
  /** Share of the reverb in the mix. */
  reverbMix: number;
  /** Feedback of the reverb's combs (room size). */
  roomSize: number;
  echoMs: number;
  /** Gain of the first repeat; each next one is multiplied by it again. */
  echoGain: number;
  /** Silence added at the end so the reverb and echo ring out. */
  tailSeconds: number;
  /** Peak of the normalised output. */
  peak: number;
}

export const SPIRIT_EFFECT: SpiritEffectOptions = Object.freeze({
  rate: 0.8,
  reverbMix: 0.35,
  roomSize: 0.8,
  echoMs: 340,
  echoGain: 0.33,
  tailSeconds: 1.2,
  peak: 0.89,
});

/** Plays the samples `rate` times as fast (rate < 1: slower and lower), by linear interpolation. */
export function slowDown(samples: Float32Array, rate: number): Float32Array {
  const length = Math.max(1, Math.floor((samples.length - 1) / rate) + 1);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 1) {
    const at = i * rate;
    const k = Math.floor(at);
    const frac = at - k;
    const a = samples[k] ?? 0;
    const b = samples[k + 1] ?? a;
    out[i] = a + (b - a) * frac;
  }
  return out;
}

/** Freeverb's tunings, at 44.1 kHz; scaled to the actual rate. */
const COMB_DELAYS = [1557, 1617, 1491, 1422];
const ALLPASS_DELAYS = [556, 441];
const DAMPING = 0.3;
const ALLPASS_FEEDBACK = 0.5;

export function reverb(samples: Float32Array, sampleRate: number, roomSize: number): Float32Array {
  const scale = sampleRate / 44100;
  const wet = new Float32Array(samples.length);
  for (const tuning of COMB_DELAYS) {
    const delay = Math.max(1, Math.round(tuning * scale));
    const buffer = new Float32Array(delay);
    let filtered = 0;
    for (let i = 0, at = 0; i < samples.length; i += 1) {
      const out = buffer[at];
      // A one-pole low-pass in the loop: high frequencies die first, as in a real room.
      filtered = out * (1 - DAMPING) + filtered * DAMPING;
      buffer[at] = samples[i] + filtered * roomSize;
      wet[i] += out / COMB_DELAYS.length;
      at = at + 1 === delay ? 0 : at + 1;
    }
  }
  for (const tuning of ALLPASS_DELAYS) {
    const delay = Math.max(1, Math.round(tuning * scale));
    const buffer = new Float32Array(delay);
    for (let i = 0, at = 0; i < wet.length; i += 1) {
      const delayed = buffer[at];
      const input = wet[i];
      buffer[at] = input + delayed * ALLPASS_FEEDBACK;
      wet[i] = delayed - input;
      at = at + 1 === delay ? 0 : at + 1;
    }
  }
  return wet;
}

/** A feedback delay: each repeat `gain` times the one before. */
export function echo(samples: Float32Array, sampleRate: number, delayMs: number, gain: number): Float32Array {
  const delay = Math.max(1, Math.round((delayMs / 1000) * sampleRate));
  const out = Float32Array.from(samples);
  for (let i = delay; i < out.length; i += 1) out[i] += out[i - delay] * gain;
  return out;
}

export function normalize(samples: Float32Array, peak: number): Float32Array {
  let max = 0;
  for (const s of samples) max = Math.max(max, Math.abs(s));
  if (max === 0) return samples;
  const gain = peak / max;
  return samples.map((s) => s * gain);
}

export function spiritEffect(input: Pcm, opts: SpiritEffectOptions = SPIRIT_EFFECT): Pcm {
  const { sampleRate } = input;
  const slowed = slowDown(input.samples, opts.rate);
  const padded = new Float32Array(slowed.length + Math.round(opts.tailSeconds * sampleRate));
  padded.set(slowed);
  const wet = reverb(padded, sampleRate, opts.roomSize);
  const mixed = padded.map((dry, i) => dry * (1 - opts.reverbMix) + wet[i] * opts.reverbMix);
  return { sampleRate, samples: normalize(echo(mixed, sampleRate, opts.echoMs, opts.echoGain), opts.peak) };
}
