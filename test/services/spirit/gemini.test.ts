import { expect } from 'chai';
import type { Config } from '../../../config';
import { createSpiritService } from '../../../server/services/spirit';
import { SPIRIT_INSTRUCTION } from '../../../server/services/spirit/personality';
import { FakeLlmServer, json, quietLogger, spiritConfig, type WireFormat } from './fake-llm-server';
import { itFallsBackOnFailures, REQUEST } from './provider-failures';

const gemini: WireFormat = {
  ok: (text) => json(200, { candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP' }] }),
  noText: [
    json(200, { candidates: [] }),
    json(200, { candidates: [{ content: { parts: [] }, finishReason: 'SAFETY' }] }),
    json(200, { candidates: [{ content: { parts: [{ text: 42 }] } }] }),
    json(200, { promptFeedback: { blockReason: 'OTHER' } }),
  ],
};

describe('spirit provider: gemini', () => {
  const fake = new FakeLlmServer();
  before(() => fake.start());
  after(() => fake.close());

  const configFor = (overrides: Partial<Config['spirit']> = {}): Config['spirit'] =>
    spiritConfig({
      provider: 'gemini',
      gemini: { apiKey: 'test-gemini-key', model: 'gemini-test', baseUrl: `${fake.url}/v1beta` },
      ...overrides,
    });

  it('sends the instruction, the history in order and the question, and answers with the text', async () => {
    fake.respondWith(json(200, { candidates: [{ content: { role: 'model', parts: [{ text: 'THE TREASURE\n' }, { text: ' LIES BENEATH YOU' }] } }] }));
    const service = createSpiritService(configFor(), quietLogger());
    expect(service.needsHistory).to.equal(true);

    const reply = await service.reply(REQUEST);

    expect(reply).to.include({ message: 'THE TREASURE LIES BENEATH YOU', word_count: 5, provider: 'gemini', fallback: false });
    expect(reply.letter_timings).to.have.length(reply.message.length);

    expect(fake.received).to.have.length(1);
    const [request] = fake.received;
    expect(request.method).to.equal('POST');
    expect(request.path).to.equal('/v1beta/models/gemini-test:generateContent');
    expect(request.headers['x-goog-api-key']).to.equal('test-gemini-key');
    expect(request.headers['content-type']).to.match(/^application\/json/);
    expect(request.body.system_instruction).to.deep.equal({ parts: [{ text: SPIRIT_INSTRUCTION }] });
    expect(request.body.contents).to.deep.equal([
      { role: 'user', parts: [{ text: 'Ann: Hello?' }] },
      { role: 'model', parts: [{ text: 'I AM HERE' }] },
      { role: 'user', parts: [{ text: 'Bob: Is the treasure real?' }] },
      { role: 'model', parts: [{ text: 'YES... DIG' }] },
      { role: 'user', parts: [{ text: 'Ann: Will we find the treasure?' }] },
    ]);
    expect(request.body.generationConfig.maxOutputTokens).to.be.a('number').greaterThan(0);
    expect(request.body.generationConfig.temperature).to.be.a('number');
  });

  it('skips thought parts and cuts a long answer at 30 words', async () => {
    const long = Array.from({ length: 40 }, () => 'DARK').join(' ');
    fake.respondWith(json(200, { candidates: [{ content: { parts: [{ text: 'thinking...', thought: true }, { text: long }] } }] }));
    const reply = await createSpiritService(configFor(), quietLogger()).reply(REQUEST);
    expect(reply.message).to.equal(`${Array.from({ length: 30 }, () => 'DARK').join(' ')}...`);
    expect(reply.word_count).to.equal(30);
  });

  itFallsBackOnFailures(() => fake, configFor, gemini);
});
