/** The rules behind the misbehaving-client limits, on a clock the test holds. */
import { expect } from 'chai';
import { AddressSlots } from '../../server/realtime/addressSlots';
import { EventBudget } from '../../server/realtime/eventBudget';
import { TypingGate } from '../../server/services/typingGate';

describe('client limit rules', () => {
  it('EventBudget: a burst of 40, then 20 a second, and one notice a second at most', () => {
    const budget = new EventBudget(20, 40, 0);
    let taken = 0;
    for (let i = 0; i < 100; i++) if (budget.take(0)) taken++;
    expect(taken).to.equal(40);
    expect([budget.shouldNotify(0), budget.shouldNotify(500), budget.shouldNotify(999), budget.shouldNotify(1000)]).to.deep.equal([true, false, false, true]);
    // Half a second later: ten more; never more than the burst however long the pause.
    taken = 0;
    for (let i = 0; i < 100; i++) if (budget.take(500)) taken++;
    expect(taken).to.equal(10);
    taken = 0;
    for (let i = 0; i < 100; i++) if (budget.take(60_000)) taken++;
    expect(taken).to.equal(40);
  });

  it('TypingGate: once per 2 s per participant, each participant on its own', () => {
    const gate = new TypingGate();
    expect(gate.allow('s', 'ada', 0)).to.equal(true);
    expect(gate.allow('s', 'ada', 1999)).to.equal(false);
    expect(gate.allow('s', 'bo', 1999)).to.equal(true);
    expect(gate.allow('other', 'ada', 1999)).to.equal(true);
    expect(gate.allow('s', 'ada', 2000)).to.equal(true);
  });

  it('AddressSlots: a cap per address, given back on release; 0 is no cap', () => {
    const slots = new AddressSlots(2);
    expect([slots.take('a'), slots.take('a'), slots.take('a'), slots.take('b')]).to.deep.equal([true, true, false, true]);
    slots.release('a');
    expect(slots.take('a')).to.equal(true);
    const open = new AddressSlots(0);
    for (let i = 0; i < 1000; i++) expect(open.take('a')).to.equal(true);
  });
});
