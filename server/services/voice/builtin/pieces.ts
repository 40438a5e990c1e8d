/**
 * Flite is fed short pieces of text, never a whole long answer: this WebAssembly build
 * crashes V8 on a single utterance of about 2 MB of output (see synthesizer.ts).
 */

/** Pieces this long (in the worst case, letters spelled out one by one) stay far below the output size that crashes. */
const PIECE_CHARS = 50;

/** Splits at sentence and clause ends first, then between words, then inside over-long words. */
export function pieces(text: string, max = PIECE_CHARS): string[] {
  const words = text.split(' ').flatMap((w) => (w.length <= max ? [w] : (w.match(new RegExp(`.{1,${max}}`, 'g')) ?? [])));
  const out: string[] = [];
  let current = '';
  for (const word of words) {
    if (current && current.length + 1 + word.length > max) {
      out.push(current);
      current = word;
    } else {
      current = current ? `${current} ${word}` : word;
    }
    if (/[.!?;:]$/.test(word) && current.length > max / 2) {
      out.push(current);
      current = '';
    }
  }
  if (current) out.push(current);
  return out.length > 0 ? out : ['...'];
}
