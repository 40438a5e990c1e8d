import { expect } from 'chai';
import { buildTurns, HISTORY_LIMIT, SPIRIT_INSTRUCTION } from '../../../server/services/spirit/personality';
import type { SpiritTurn } from '../../../server/services/spirit/types';

const said = (user_name: string, message: string): SpiritTurn => ({ user_name, message, is_spirit: false });
const spirit = (message: string): SpiritTurn => ({ user_name: null, message, is_spirit: true });

describe('spirit personality', () => {
  it('keeps the spirit short and in character', () => {
    expect(SPIRIT_INSTRUCTION).to.match(/Ouija/);
    expect(SPIRIT_INSTRUCTION).to.match(/30 words/);
    expect(SPIRIT_INSTRUCTION).to.match(/never break character/i);
  });

  it('names each participant, gives the spirit its own turns and ends with the question', () => {
    const turns = buildTurns({
      sessionId: 's',
      question: 'Who is there?',
      askedBy: 'Bob',
      history: [said('Ann', 'Hello?'), spirit('I AM HERE'), said('Bob', 'Who is there?')],
    });
    expect(turns).to.deep.equal([
      { role: 'user', text: 'Ann: Hello?' },
      { role: 'spirit', text: 'I AM HERE' },
      { role: 'user', text: 'Bob: Who is there?' },
    ]);
  });

  it('adds the question when the history does not end with it', () => {
    const turns = buildTurns({ sessionId: 's', question: 'Are you real?', askedBy: 'Cy', history: [] });
    expect(turns).to.deep.equal([{ role: 'user', text: 'Cy: Are you real?' }]);
  });

  it('holds at most the last 10 messages, question included', () => {
    const history = Array.from({ length: 15 }, (_, i) => said('Ann', `message ${i}`));
    history.push(said('Ann', 'last question?'));
    const turns = buildTurns({ sessionId: 's', question: 'last question?', askedBy: 'Ann', history });
    expect(turns).to.have.length(HISTORY_LIMIT);
    expect(turns[0].text).to.equal('Ann: message 6');
    expect(turns.at(-1)).to.deep.equal({ role: 'user', text: 'Ann: last question?' });
  });
});
