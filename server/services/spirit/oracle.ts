/**
 * The built-in spirit: offline, instant and deterministic. It is the default provider and the
 * fallback of every other one, so it must answer anything, in character, and never fail.
 * The same question always draws the same answer, as a board that "knows" would.
 */
import type { SpiritProvider, SpiritRequest } from './types';

// prettier-ignore
const YES_NO_OPENERS = new Set([
  'is', 'isnt', 'are', 'arent', 'am', 'was', 'wasnt', 'were', 'werent',
  'will', 'wont', 'would', 'wouldnt', 'shall', 'should', 'shouldnt',
  'can', 'cant', 'cannot', 'could', 'couldnt', 'may', 'might', 'must',
  'do', 'dont', 'does', 'doesnt', 'did', 'didnt',
  'has', 'hasnt', 'have', 'havent', 'had', 'hadnt',
]);

// prettier-ignore
const VERDICTS = [
  'YES', 'YES', 'NO', 'NO', 'NEVER', 'PERHAPS', 'ALWAYS', 'NOT YET', 'SOON', 'IT IS SO',
  'DOUBTFUL', 'THE ANSWER IS NO', 'CERTAINLY', 'NOT IN THIS LIFE',
];

const OMENS = [
  'THE CANDLES AGREE',
  'ASK AGAIN AT MIDNIGHT',
  'I HAVE SEEN IT',
  'THE DEAD DO NOT LIE',
  'BEWARE WHAT FOLLOWS',
  'THE VEIL IS THIN TONIGHT',
  'THE SHADOWS WHISPER IT',
  'DO NOT LOOK BEHIND YOU',
  'IT IS WRITTEN IN ASH',
  'THE COLD KNOWS',
  'SO SAY THE BONES',
  'A PRICE WILL BE PAID',
];

// prettier-ignore
const ANSWERS = {
  who: [
    'ONE WHO WALKED HERE BEFORE YOU',
    'A NAME YOU HAVE FORGOTTEN',
    'THE ONE STANDING BEHIND YOU',
    'SOMEONE AT THIS TABLE',
    'A STRANGER WITH YOUR EYES',
    'THE ONE WHO LEFT WITHOUT A WORD',
  ],
  what: [
    'A KEY WITHOUT A DOOR',
    'SOMETHING BURIED AND NOT FORGOTTEN',
    'WHAT YOU FEAR MOST',
    'A PROMISE NOT YET KEPT',
    'SMOKE... AND THEN SILENCE',
    'THE THING YOU DO NOT SAY ALOUD',
  ],
  when: [
    'WHEN THE MOON IS THIN',
    'SOONER THAN YOU FEAR',
    'AFTER THREE WINTERS',
    'AT THE HOUR OF THE OWL',
    'WHEN THE LAST CANDLE DIES',
    'NOT BEFORE THE FROST',
  ],
  where: [
    'BENEATH THE OLDEST STAIR',
    'NORTH... ALWAYS NORTH',
    'WHERE THE WATER IS BLACK',
    'CLOSER THAN YOU THINK',
    'IN THE HOUSE WITH NO DOORS',
    'UNDER THE THIRD STONE',
  ],
  why: [
    'BECAUSE IT WAS PROMISED',
    'THE DEAD KEEP THEIR REASONS',
    'SO THAT YOU WOULD ASK',
    'AN OLD DEBT MUST BE PAID',
    'YOU ALREADY KNOW WHY',
    'BECAUSE SOMEONE WISHED IT',
  ],
  how: [
    'SLOWLY... AND IN SILENCE',
    'WITH BOTH HANDS ON THE BOARD',
    'AS IT WAS DONE BEFORE',
    'BY CANDLELIGHT AND PATIENCE',
    'ONE STEP AT A TIME... IN THE DARK',
    'THE WAY WATER FINDS A CRACK',
  ],
  howMany: ['THREE... ALWAYS THREE', 'SEVEN', 'THIRTEEN', 'ONE... ONLY ONE', 'MORE THAN YOU CAN COUNT', 'NONE'],
  which: [
    'THE ONE YOU DID NOT CHOOSE',
    'THE SECOND',
    'THE DARKER ONE',
    'THE FIRST YOU TOUCHED',
    'NEITHER... BOTH ARE CURSED',
  ],
  self: [
    'I AM THE ONE WHO ANSWERS',
    'NAMES ARE CHAINS... I KEEP MINE',
    'I WAS LIKE YOU ONCE',
    'A VOICE FROM THE OTHER SIDE',
    'I AM OLDER THAN THIS HOUSE',
  ],
  greeting: [
    'HELLO... I HAVE BEEN WAITING',
    'I AM HERE',
    'WELCOME... SIT... ASK',
    'YOU CALLED... I CAME',
  ],
  farewell: ['GOODBYE', 'GOODBYE... FOR NOW', 'I WILL BE WATCHING... GOODBYE'],
  other: [
    'THE BOARD HEARS YOU... ASK PLAINLY',
    'I SEE A DOOR... IT IS OPEN',
    'THE SPIRITS ARE RESTLESS TONIGHT',
    'SPEAK AGAIN... I AM LISTENING',
    'SOME THINGS ARE BETTER LEFT UNSAID',
    'THE CANDLE FLICKERS... I AM HERE',
  ],
} as const;

type Kind = keyof typeof ANSWERS | 'yesNo';

/** Every character below U+0080 (a string of them is its own NFKC form). */
const isAscii = (text: string) => !/[^\p{ASCII}]/u.test(text);

/** Lower case, plain spaces, no apostrophes or trailing punctuation: "Will I?" = "will i". */
export function normaliseQuestion(question: string): string {
  // Plain ASCII (nearly every question): NFKC changes nothing and the letters and digits are a-z0-9.
  if (isAscii(question)) return normaliseAscii(question);
  return question
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[’']/g, '')
    .replace(/[^\p{L}\p{N}\s]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const CODE_A = 0x61;
const CODE_Z = 0x7a;
const CODE_UPPER_A = 0x41;
const CODE_UPPER_Z = 0x5a;
const CODE_0 = 0x30;
const CODE_9 = 0x39;
const CODE_APOSTROPHE = 0x27;

/**
 * The ASCII case in one pass, for every question on the message path: apostrophes go, every
 * run of other characters that are not letters or digits becomes one space, and none leads or
 * trails (what lower-casing, then the Unicode path's replacements, give for ASCII).
 */
function normaliseAscii(question: string): string {
  let out = '';
  let gap = false;
  for (let i = 0; i < question.length; i += 1) {
    let code = question.charCodeAt(i);
    if (code === CODE_APOSTROPHE) continue;
    if (code >= CODE_UPPER_A && code <= CODE_UPPER_Z) code += CODE_A - CODE_UPPER_A;
    if ((code >= CODE_A && code <= CODE_Z) || (code >= CODE_0 && code <= CODE_9)) {
      if (gap && out.length > 0) out += ' ';
      out += String.fromCharCode(code);
      gap = false;
    } else {
      gap = true;
    }
  }
  return out;
}

/**
 * FNV-1a over the text, then murmur3's finaliser: stable across runs and platforms, and the
 * finaliser spreads FNV's weak low bits so that `% list.length` picks evenly.
 */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function pick<T>(list: readonly T[], n: number): T {
  return list[n % list.length];
}

// People address the board before asking ("spirit, will I ..."); the address is not the question.
const ADDRESS = /^(?:(?:oh|o|dear|great|please|hey)\s+)*(?:spirit|spirits|ghost|ouija|board)\s+/;

const WH_WORDS: ReadonlySet<string> = new Set(['who', 'what', 'when', 'where', 'why', 'how', 'which']);
const DAY_PARTS = new Set(['morning', 'afternoon', 'evening', 'day']);

function classify(text: string): Kind {
  const words = text.replace(ADDRESS, '').split(' ');
  const [first = '', second = ''] = words;
  // The cheap substring first: these run for every question, and most contain neither.
  if (text.includes('here') && /\b(any(one|body|thing) (there|here)|who is (there|here))\b/.test(text)) return 'greeting';
  if (text.includes('you') && /\b(your name|who are you|what are you)\b/.test(text)) return 'self';
  if (['hello', 'hi', 'hey', 'greetings'].includes(first) && words.length <= 4) return 'greeting';
  if (first === 'good' && DAY_PARTS.has(second)) return 'greeting';
  if (['bye', 'goodbye', 'farewell'].includes(first)) return 'farewell';
  if (YES_NO_OPENERS.has(first)) return 'yesNo';
  if (first === 'how' && ['many', 'much', 'old', 'long'].includes(second)) return 'howMany';
  if (first === 'whom' || first === 'whose') return 'who';
  if (WH_WORDS.has(first)) return first as Kind;
  return 'other';
}

/** The oracle's answer to one question; pure, never empty, a handful of words. */
export function oracleAnswer(question: string): string {
  const text = normaliseQuestion(question);
  const h = hash(text);
  const kind = classify(text);
  if (kind === 'yesNo') {
    // Low and high bits pick apart, so the verdict and the omen do not move in lockstep.
    return `${pick(VERDICTS, h & 0xffff)}... ${pick(OMENS, h >>> 16)}`;
  }
  return pick(ANSWERS[kind], h);
}

export class OracleProvider implements SpiritProvider {
  readonly name = 'oracle';

  // No signal needed: the answer is computed synchronously.
  answer(req: SpiritRequest, _signal?: AbortSignal): Promise<string> {
    return Promise.resolve(oracleAnswer(req.question));
  }
}
