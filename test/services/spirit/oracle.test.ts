import { expect } from 'chai';
import { OracleProvider, normaliseQuestion, oracleAnswer } from '../../../server/services/spirit/oracle';

const VERDICT = /^(YES|NO|NEVER|PERHAPS|ALWAYS|NOT YET|SOON|IT IS SO|DOUBTFUL|THE ANSWER IS NO|CERTAINLY|NOT IN THIS LIFE)\.\.\. \S/;
const wordCount = (s: string): number => s.split(/\s+/).filter(Boolean).length;

describe('spirit oracle', () => {
  it('gives the same question the same answer, whatever the case, spacing or final mark', () => {
    const answer = oracleAnswer('Will I find love?');
    expect(oracleAnswer('Will I find love?')).to.equal(answer);
    expect(oracleAnswer('  will i   FIND love  ')).to.equal(answer);
    expect(oracleAnswer('Will I find love?!')).to.equal(answer);
  });

  it('normalises ASCII questions in one pass exactly as the replacement chain does', () => {
    // The chain the one-pass normaliser replaces (lower case, apostrophes out, other marks and
    // whitespace runs to one space, trimmed), checked on questions made of every kind of ASCII.
    const chain = (q: string) =>
      q
        .toLowerCase()
        .replace(/'/g, '')
        .replace(/[^a-z0-9\s]+/g, ' ')
        .replace(/\s+/g, ' ')
        .trim();
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const pool = "abcXYZ09 '?!.,-\t\n\r\u0000\u007f_~";
    const questions = ["Don't I?", "  'quoted'  ", 'A--B', 'x\t\ny', '', '???', "Who's there?"];
    for (let n = 0; n < 2_000; n++) questions.push(Array.from({ length: Math.floor(random() * 24) }, () => pool[Math.floor(random() * pool.length)]).join(''));
    for (const q of questions) expect(normaliseQuestion(q), JSON.stringify(q)).to.equal(chain(q));
  });

  it('does not answer every question alike', () => {
    const answers = new Set(Array.from({ length: 40 }, (_, i) => oracleAnswer(`Will omen number ${i} come true?`)));
    expect(answers.size).to.be.greaterThan(10);
  });

  it('answers yes/no questions with a verdict and a flavour', () => {
    const questions = [
      'Is anybody listening?',
      'Are we alone?',
      'Will it rain tomorrow?',
      'Can you see me?',
      'Do you know my name?',
      'Does she love me?',
      'Should I take the job?',
      'Would you lie to us?',
      'Could this house be haunted?',
      'Am I dreaming?',
      'Was it an accident?',
      'Did he suffer?',
      'Has the letter arrived?',
      'Have we met before?',
      "Won't you tell us?",
      'Spirit, will I be rich?',
    ];
    for (const q of questions) expect(oracleAnswer(q), q).to.match(VERDICT);
    const verdicts = new Set(questions.map((q) => oracleAnswer(q).split('...')[0]));
    expect(verdicts.size, 'several different verdicts').to.be.greaterThan(3);
  });

  it('answers who / what / when / where / why / how cryptically, not with a verdict', () => {
    for (const q of [
      'Who is the killer?',
      'What lies in the cellar?',
      'When will I die?',
      'Where did I lose my ring?',
      'Why is the door open?',
      'How do we break the curse?',
      'How many ghosts live here?',
      'Which path should I take?',
    ]) {
      const answer = oracleAnswer(q);
      expect(answer, q).not.to.match(VERDICT);
      expect(answer, q).to.match(/^[A-Z][A-Z .]+$/);
    }
  });

  it('greets and says goodbye like a board', () => {
    expect(oracleAnswer('Hello?')).to.match(/HELLO|HERE|WELCOME|CAME/);
    expect(oracleAnswer('Goodbye spirit')).to.include('GOODBYE');
  });

  it('never answers empty and never past 30 words, whatever it is asked', () => {
    const odd = ['', '   ', '???', '👻', 'constructor', '__proto__', 'x'.repeat(500), 'tell me everything'];
    for (const q of odd) {
      const answer = oracleAnswer(q);
      expect(answer.trim(), JSON.stringify(q)).not.to.equal('');
      expect(wordCount(answer)).to.be.within(1, 30);
    }
  });

  it('is a provider that needs no history', async () => {
    const oracle = new OracleProvider();
    const question = 'Is the spirit with us?';
    const answer = await oracle.answer({ sessionId: 's', question, askedBy: 'Ann', history: [] }, new AbortController().signal);
    expect(oracle.name).to.equal('oracle');
    expect(answer).to.equal(oracleAnswer(question));
  });
});
