/**
 * Turns whatever a provider said into the reply the contract promises: at most 30 words,
 * one JS string index per character (the clients index `letter_timings` by it), and a delay
 * per character that makes the planchette feel hesitant but readable.
 */

export const MAX_WORDS = 30;

export interface ShapedReply {
  message: string;
  word_count: number;
  letter_timings: number[];
}

type Range = readonly [min: number, max: number];

/** The contract's ranges, in ms. */
export const TIMING_RULES = {
  firstOrSpace: [200, 300],
  afterSentenceEnd: [250, 400],
  afterPause: [180, 250],
  otherwise: [50, 500],
} as const satisfies Record<string, Range>;

// Ordinary letters use a narrower band inside the contract's 50–500, so a word reads as one
// gesture instead of stuttering between a flick and half a second.
const LETTER_BAND: Range = [80, 200];

/** Which rule applies to a character, and its range (a constant table: nothing is built per character). */
const RULES: ReadonlyArray<readonly [(first: boolean, afterSentenceEnd: boolean, afterPause: boolean) => boolean, Range]> = [
  [(first) => first, TIMING_RULES.firstOrSpace],
  [(_, afterSentenceEnd) => afterSentenceEnd, TIMING_RULES.afterSentenceEnd],
  [(_, __, afterPause) => afterPause, TIMING_RULES.afterPause],
];
const SENTENCE_END = new Set(['.', '!', '?']);
const PAUSE = new Set([',', '-', ';', ':']);

/**
 * Plain, single-spaced text. NFC first so that "e + accent" becomes one character; then
 * everything that would take two indices or none is dropped: characters outside the Basic
 * Multilingual Plane (most emoji) and lone surrogates, control and format characters (zero-width
 * joiners), variation selectors and the keycap mark. Pictographs inside the BMP (a heart, a
 * star) go too: the board has letters, not pictures. `*` and backticks are markdown emphasis
 * that models add despite the instruction.
 */
export function cleanText(raw: string): string {
  return raw
    .normalize('NFC')
    .replace(/\s+/g, ' ')
    .replace(/[\u{10000}-\u{10FFFF}\p{Cs}\p{Cc}\p{Cf}\p{Extended_Pictographic}\u{FE00}-\u{FE0F}\u{20E3}*`]/gu, '')
    .replace(/ {2,}/g, ' ')
    .trim();
}

function countWords(message: string): number {
  return message === '' ? 0 : message.split(' ').length;
}

/** At most MAX_WORDS words; a cut text ends in "..." instead of its own trailing punctuation. */
export function cutWords(message: string): string {
  const words = message.split(' ');
  if (words.length <= MAX_WORDS) return message;
  const kept = words.slice(0, MAX_WORDS).join(' ');
  const bare = kept.replace(/[\s.,;:!?…-]+$/u, '');
  return `${bare || kept}...`;
}

/**
 * One delay per character. Every rule that applies to a character holds at once: a space
 * after a full stop lands in 250–300, a space after a comma in 200–250.
 */
export function letterTimings(message: string, random: () => number = Math.random): number[] {
  return drawTimings(timingBands(message), random);
}

/**
 * Each character's band, [min, max] at 2i and 2i + 1: what `letterTimings` draws from. A
 * message whose text repeats (the oracle's) keeps its bands and only draws afresh.
 */
export function timingBands(message: string): Int16Array {
  const bands = new Int16Array(message.length * 2);
  for (let i = 0; i < message.length; i += 1) {
    const previous = i > 0 ? message[i - 1] : '';
    const first = i === 0 || message[i] === ' ';
    const afterSentenceEnd = SENTENCE_END.has(previous);
    const afterPause = PAUSE.has(previous);
    let min = LETTER_BAND[0];
    let max = LETTER_BAND[1];
    if (first || afterSentenceEnd || afterPause) {
      // The applying rules' intersection (the rule sets are built so that none are disjoint).
      min = -Infinity;
      max = Infinity;
      for (const [applies, [low, high]] of RULES) {
        if (!applies(first, afterSentenceEnd, afterPause)) continue;
        min = Math.max(min, low);
        max = Math.min(max, high);
      }
    }
    bands[2 * i] = min;
    bands[2 * i + 1] = max;
  }
  return bands;
}

/** One delay per character, drawn from its band (one `random()` per character, in order). */
export function drawTimings(bands: Int16Array, random: () => number = Math.random): number[] {
  const timings = new Array<number>(bands.length / 2);
  for (let i = 0; i < timings.length; i += 1) {
    const min = bands[2 * i];
    const max = bands[2 * i + 1];
    timings[i] = Math.min(max, min + Math.floor(random() * (max - min + 1)));
  }
  return timings;
}

/** The message may come out empty: the caller decides whether that counts as a failure. */
export function shapeReply(raw: string, random: () => number = Math.random): ShapedReply {
  const message = cutWords(cleanText(raw));
  return { message, word_count: countWords(message), letter_timings: letterTimings(message, random) };
}
