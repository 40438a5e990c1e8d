/**
 * The failure cases every HTTP provider must survive: each one ends in the oracle's answer
 * with `fallback: true`, and a single failure followed by an answer is retried.
 */
import { expect } from 'chai';
import type { Config } from '../../../config';
import { createSpiritService } from '../../../server/services/spirit';
import { oracleAnswer } from '../../../server/services/spirit/oracle';
import type { SpiritRequest } from '../../../server/services/spirit/types';
import { type FakeLlmServer, hang, json, quietLogger, text, type WireFormat } from './fake-llm-server';

export const REQUEST: SpiritRequest = {
  sessionId: '0b6f1f7e-4a4b-4a8e-9d56-1c2f0c1d2e3f',
  question: 'Will we find the treasure?',
  askedBy: 'Ann',
  history: [
    { user_name: 'Ann', message: 'Hello?', is_spirit: false },
    { user_name: null, message: 'I AM HERE', is_spirit: true },
    { user_name: 'Bob', message: 'Is the treasure real?', is_spirit: false },
    { user_name: null, message: 'YES... DIG', is_spirit: true },
    { user_name: 'Ann', message: 'Will we find the treasure?', is_spirit: false },
  ],
};

export function itFallsBackOnFailures(fake: () => FakeLlmServer, configFor: (overrides: Partial<Config['spirit']>) => Config['spirit'], wire: WireFormat): void {
  const serviceWith = (overrides: Partial<Config['spirit']>) => createSpiritService(configFor(overrides), quietLogger());
  const oracleReply = { message: oracleAnswer(REQUEST.question), provider: 'oracle', fallback: true };

  it('retries a 500 and then answers from the oracle', async () => {
    fake().respondWith(json(500, { error: { status: 'INTERNAL', code: 'server_error' } }));
    const reply = await serviceWith({ retries: 2, retryBaseMs: 5 }).reply(REQUEST);
    expect(reply).to.include(oracleReply);
    expect(fake().received).to.have.length(3);
  });

  it('answers after one 500 when the retry succeeds', async () => {
    fake().respondWith(json(500, {}), wire.ok('THE MAP LIES'));
    const reply = await serviceWith({ retries: 1, retryBaseMs: 5 }).reply(REQUEST);
    expect(reply).to.include({ message: 'THE MAP LIES', fallback: false, word_count: 3 });
    expect(fake().received).to.have.length(2);
    expect(fake().received[1].body).to.deep.equal(fake().received[0].body);
  });

  it('aborts a hanging answer at the timeout and falls back', async () => {
    fake().respondWith(hang);
    const started = Date.now();
    const reply = await serviceWith({ timeoutMs: 200, retries: 0 }).reply(REQUEST);
    expect(reply).to.include(oracleReply);
    expect(Date.now() - started).to.be.within(150, 1500);
    // The abort reaches the wire: the provider's connection is closed, not left dangling.
    await (
      await fake().request(0)
    ).closed;
  });

  it('retries after a timeout', async () => {
    fake().respondWith(hang, wire.ok('SOON'));
    const reply = await serviceWith({ timeoutMs: 200, retries: 1, retryBaseMs: 5 }).reply(REQUEST);
    expect(reply).to.include({ message: 'SOON', fallback: false });
  });

  it('falls back on a body that is not JSON', async () => {
    fake().respondWith(text(200, '<html>502 Bad Gateway</html>'));
    expect(await serviceWith({ retries: 0 }).reply(REQUEST)).to.include(oracleReply);
  });

  it('falls back on JSON without text', async () => {
    for (const responder of [json(200, {}), json(200, null), json(200, [1, 2]), ...wire.noText]) {
      fake().respondWith(responder);
      expect(await serviceWith({ retries: 0 }).reply(REQUEST)).to.include(oracleReply);
    }
  });

  it('falls back on text that shapes to nothing usable', async () => {
    for (const said of ['   ', '🔮👻', '...']) {
      fake().respondWith(wire.ok(said));
      expect(await serviceWith({ retries: 0 }).reply(REQUEST), JSON.stringify(said)).to.include(oracleReply);
    }
  });
}
