import { expect } from 'chai';
import type { Config } from '../../../config';
import { createSpiritService } from '../../../server/services/spirit';
import { SPIRIT_INSTRUCTION } from '../../../server/services/spirit/personality';
import { FakeLlmServer, json, quietLogger, spiritConfig, type WireFormat } from './fake-llm-server';
import { itFallsBackOnFailures, REQUEST } from './provider-failures';

const completion = (content: unknown): unknown => ({
  id: 'chatcmpl-test',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
});

const openai: WireFormat = {
  ok: (text) => json(200, completion(text)),
  noText: [json(200, { choices: [] }), json(200, completion(null)), json(200, { choices: [{ message: {} }] }), json(200, completion('<think>the living ask too much</think>'))],
};

describe('spirit provider: openai-compatible', () => {
  const fake = new FakeLlmServer();
  before(() => fake.start());
  after(() => fake.close());

  const configFor = (overrides: Partial<Config['spirit']> = {}, apiKey: string | null = 'test-openai-key'): Config['spirit'] =>
    spiritConfig({ provider: 'openai', openai: { apiKey, model: 'gpt-test', baseUrl: `${fake.url}/v1` }, ...overrides });

  it('sends the model, the instruction, the history in order and the question, and answers with the content', async () => {
    fake.respondWith(json(200, completion('  NO...  NOT IN THIS LIFE ')));
    const service = createSpiritService(configFor(), quietLogger());
    expect(service.needsHistory).to.equal(true);

    const reply = await service.reply(REQUEST);

    expect(reply).to.include({ message: 'NO... NOT IN THIS LIFE', word_count: 5, provider: 'openai', fallback: false });
    expect(reply.letter_timings).to.have.length(reply.message.length);

    expect(fake.received).to.have.length(1);
    const [request] = fake.received;
    expect(request.method).to.equal('POST');
    expect(request.path).to.equal('/v1/chat/completions');
    expect(request.headers.authorization).to.equal('Bearer test-openai-key');
    expect(request.body.model).to.equal('gpt-test');
    expect(request.body.messages).to.deep.equal([
      { role: 'system', content: SPIRIT_INSTRUCTION },
      { role: 'user', content: 'Ann: Hello?' },
      { role: 'assistant', content: 'I AM HERE' },
      { role: 'user', content: 'Bob: Is the treasure real?' },
      { role: 'assistant', content: 'YES... DIG' },
      { role: 'user', content: 'Ann: Will we find the treasure?' },
    ]);
    expect(request.body.max_tokens).to.be.a('number').greaterThan(0);
    expect(request.body.temperature).to.be.a('number');
  });

  it('sends no Authorization header when no key is set', async () => {
    fake.respondWith(json(200, completion('YES')));
    const reply = await createSpiritService(configFor({}, null), quietLogger()).reply(REQUEST);
    expect(reply).to.include({ message: 'YES', fallback: false });
    expect(fake.received[0].headers).not.to.have.property('authorization');
  });

  it('drops inline reasoning and reads content given as parts', async () => {
    fake.respondWith(
      json(200, completion('<think>they fear the cellar</think>THE CELLAR')),
      json(
        200,
        completion([
          { type: 'text', text: 'THE ' },
          { type: 'text', text: 'ATTIC' },
        ]),
      ),
    );
    const service = createSpiritService(configFor(), quietLogger());
    expect((await service.reply(REQUEST)).message).to.equal('THE CELLAR');
    expect((await service.reply(REQUEST)).message).to.equal('THE ATTIC');
  });

  itFallsBackOnFailures(() => fake, configFor, openai);
});
