import { expect } from 'chai';
import { cleanText, letterTimings, MAX_WORDS, shapeReply, TIMING_RULES } from '../../../server/services/spirit/shape';

/** Every contract rule that applies to character i, as [min, max] ranges. */
function rulesFor(message: string, i: number): Array<readonly [number, number]> {
  const rules: Array<readonly [number, number]> = [];
  if (i === 0 || message[i] === ' ') rules.push(TIMING_RULES.firstOrSpace);
  if (i > 0 && '.!?'.includes(message[i - 1])) rules.push(TIMING_RULES.afterSentenceEnd);
  if (i > 0 && ',-;:'.includes(message[i - 1])) rules.push(TIMING_RULES.afterPause);
  if (rules.length === 0) rules.push(TIMING_RULES.otherwise);
  return rules;
}

function expectTimingsHonourContract(message: string, timings: number[]): void {
  expect(timings).to.have.length(message.length);
  timings.forEach((ms, i) => {
    expect(Number.isInteger(ms), `timing ${i} is an integer`).to.equal(true);
    for (const [min, max] of rulesFor(message, i)) {
      expect(ms, `character ${i} (${JSON.stringify(message[i])} after ${JSON.stringify(message[i - 1])})`).to.be.within(min, max);
    }
  });
}

const words = (n: number): string => Array.from({ length: n }, (_, i) => `w${i + 1}`).join(' ');

describe('spirit shape', () => {
  describe('words', () => {
    it('keeps a reply of 30 words whole', () => {
      const reply = shapeReply(words(30));
      expect(reply.message).to.equal(words(30));
      expect(reply.word_count).to.equal(30);
    });

    it('cuts a longer reply at 30 words and ends it with ...', () => {
      const reply = shapeReply(`${words(45)}.`);
      expect(reply.message).to.equal(`${words(MAX_WORDS)}...`);
      expect(reply.word_count).to.equal(30);
      expect(reply.letter_timings).to.have.length(reply.message.length);
    });

    it("does not stack the cut word's own punctuation before the ...", () => {
      const text = `${words(29)} THIRTY, thirty-one thirty-two`;
      expect(shapeReply(text).message).to.equal(`${words(29)} THIRTY...`);
    });

    it('counts words after collapsing whitespace', () => {
      const reply = shapeReply('  YES \n\n  the\tcandles   agree  ');
      expect(reply.message).to.equal('YES the candles agree');
      expect(reply.word_count).to.equal(4);
    });

    it('gives an empty message zero words and no timings', () => {
      expect(shapeReply('  \n ')).to.deep.equal({ message: '', word_count: 0, letter_timings: [] });
    });
  });

  describe('characters', () => {
    it('strips emoji, joiners and variation selectors so one index is one character', () => {
      const message = cleanText('I SEE 👻 YOU 👨‍👩‍👧 ❤️ NOW 1️⃣');
      expect(message).to.equal('I SEE YOU NOW 1');
      expect([...message]).to.have.length(message.length);
    });

    it('strips control characters and markdown emphasis', () => {
      expect(cleanText('**YES**\u0007 `NEVER`\u200b')).to.equal('YES NEVER');
    });

    it('composes accents into single characters', () => {
      expect(cleanText('se\u0301ance')).to.equal('s\u00e9ance');
    });

    it('keeps emoji stripping inside the 30-word count', () => {
      const reply = shapeReply(`${'🔮 '.repeat(40)}${words(31)}`);
      expect(reply.message).to.equal(`${words(30)}...`);
    });
  });

  describe('letter timings', () => {
    const sample = 'YES. THE CANDLES AGREE, ALWAYS; BEWARE - NOW! WHO: ME? NO...  ,. END';

    it('has one integer delay per character that meets every rule that applies', () => {
      for (let run = 0; run < 50; run += 1) {
        const { message, letter_timings } = shapeReply(sample);
        expectTimingsHonourContract(message, letter_timings);
      }
    });

    it('stays inside the intersections at the edges of randomness', () => {
      const message = 'A. B, C! D: E? F- G; H';
      for (const random of [() => 0, () => 0.999999, () => 0.5]) {
        expectTimingsHonourContract(message, letterTimings(message, random));
      }
    });

    it('puts a space after a full stop in 250-300 and after a comma in 200-250', () => {
      const message = 'NO. YES, SO';
      for (const random of [() => 0, () => 0.999999]) {
        const timings = letterTimings(message, random);
        expect(timings[3]).to.be.within(250, 300);
        expect(timings[8]).to.be.within(200, 250);
      }
      expect(letterTimings(message, () => 0)[3]).to.equal(250);
      expect(letterTimings(message, () => 0.999999)[3]).to.equal(300);
      expect(letterTimings(message, () => 0)[8]).to.equal(200);
      expect(letterTimings(message, () => 0.999999)[8]).to.equal(250);
    });

    it('times the first character like a space', () => {
      expect(letterTimings('X', () => 0)).to.deep.equal([200]);
      expect(letterTimings('X', () => 0.999999)).to.deep.equal([300]);
    });
  });
});
