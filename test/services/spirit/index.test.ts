import bunyan from 'bunyan';
import { expect } from 'chai';
import { createSpiritService } from '../../../server/services/spirit';
import type { SpiritProvider, SpiritRequest } from '../../../server/services/spirit/types';
import { oracleAnswer } from '../../../server/services/spirit/oracle';
import { quietLogger, spiritConfig } from './fake-llm-server';

const request = (question: string): SpiritRequest => ({
  sessionId: 'a3c1e0f2-5b6d-4c7e-8f90-123456789abc',
  question,
  askedBy: 'Ann',
  history: [{ user_name: 'Ann', message: question, is_spirit: false }],
});

/** A provider that fails its first `failures` calls (by calling `fail`), then answers. */
function scripted(fail: (signal: AbortSignal) => Promise<string>, failures = Infinity, answer = 'YES') {
  const calls: Array<{ at: number; signal: AbortSignal }> = [];
  const provider: SpiritProvider = {
    name: 'scripted',
    answer(_req, signal) {
      calls.push({ at: Date.now(), signal });
      return calls.length <= failures ? fail(signal) : Promise.resolve(answer);
    },
  };
  return { provider, calls };
}

describe('spirit service', () => {
  it('answers from the oracle by default, without history', async () => {
    const service = createSpiritService(spiritConfig(), quietLogger());
    expect(service.needsHistory).to.equal(false);
    const reply = await service.reply(request('Is this house haunted?'));
    expect(reply).to.include({ message: oracleAnswer('Is this house haunted?'), provider: 'oracle', fallback: false });
    expect(reply.word_count).to.equal(reply.message.split(' ').length);
    expect(reply.letter_timings).to.have.length(reply.message.length);
  });

  it('takes SPIRIT_ORACLE_DELAY_MS before the oracle answers, and is instant only with 0', async () => {
    const slow = createSpiritService(spiritConfig({ oracleDelayMs: 120 }), quietLogger());
    expect(slow.instantReply('Is anyone there?')).to.equal(null);
    const started = Date.now();
    const reply = await slow.reply(request('Is anyone there?'));
    expect(Date.now() - started).to.be.at.least(115);
    expect(reply).to.include({ message: oracleAnswer('Is anyone there?'), provider: 'oracle', fallback: false });
    const instant = createSpiritService(spiritConfig({ oracleDelayMs: 0 }), quietLogger()).instantReply('Is anyone there?');
    expect(instant?.message).to.equal(oracleAnswer('Is anyone there?'));
  });

  it('picks the provider named in the config', () => {
    expect(createSpiritService(spiritConfig({ provider: 'gemini' }), quietLogger()).providerName).to.equal('gemini');
    expect(createSpiritService(spiritConfig({ provider: 'openai' }), quietLogger()).providerName).to.equal('openai');
    expect(createSpiritService(spiritConfig({ provider: 'oracle' }), quietLogger()).providerName).to.equal('oracle');
  });

  it('times out a provider that ignores its signal, aborts the signal, and falls back', async () => {
    const { provider, calls } = scripted(() => new Promise<string>(() => undefined));
    const service = createSpiritService(spiritConfig({ timeoutMs: 200, retries: 0 }), quietLogger(), provider);
    const reply = await service.reply(request('Where is the key?'));
    expect(reply).to.include({ message: oracleAnswer('Where is the key?'), provider: 'oracle', fallback: true });
    expect(calls).to.have.length(1);
    expect(calls[0].signal.aborted).to.equal(true);
  });

  it('survives a provider that throws instead of rejecting', async () => {
    const provider: SpiritProvider = {
      name: 'broken',
      answer() {
        throw new Error('boom');
      },
    };
    const reply = await createSpiritService(spiritConfig({ retries: 1 }), quietLogger(), provider).reply(request('Why?'));
    expect(reply).to.include({ provider: 'oracle', fallback: true, message: oracleAnswer('Why?') });
  });

  it('falls back when the provider cannot be reached', async () => {
    // Port 1 on loopback refuses connections.
    const service = createSpiritService(spiritConfig({ provider: 'openai', retries: 1 }), quietLogger());
    expect(await service.reply(request('Are you there?'))).to.include({ provider: 'oracle', fallback: true });
  });

  it('backs off exponentially between attempts', async () => {
    const { provider, calls } = scripted(() => Promise.reject(new Error('busy')), 2, 'NOW');
    const service = createSpiritService(spiritConfig({ retries: 2, retryBaseMs: 40 }), quietLogger(), provider);
    const reply = await service.reply(request('When?'));
    expect(reply).to.include({ message: 'NOW', provider: 'scripted', fallback: false });
    expect(calls).to.have.length(3);
    const first = calls[1].at - calls[0].at;
    const second = calls[2].at - calls[1].at;
    expect(first).to.be.within(34, 200);
    expect(second).to.be.within(70, 300);
  });

  it('logs each failure with its attempt, never the key or the question', async () => {
    const ring = new bunyan.RingBuffer({ limit: 50 });
    const logger = bunyan.createLogger({ name: 'test', streams: [{ type: 'raw', stream: ring, level: 'trace' }] });
    const secretQuestion = 'Does Carol still keep the letters hidden?';
    const { provider } = scripted(() => Promise.reject(new Error('upstream 503')));
    const config = spiritConfig({ retries: 2, retryBaseMs: 1 });
    await createSpiritService(config, logger, provider).reply(request(secretQuestion));

    const failures = ring.records.filter((r: any) => r.msg === 'spirit provider failed');
    expect(failures.map((r: any) => [r.level, r.attempt, r.provider])).to.deep.equal([
      [bunyan.WARN, 1, 'scripted'],
      [bunyan.WARN, 2, 'scripted'],
      [bunyan.WARN, 3, 'scripted'],
    ]);
    expect(failures[0].err).to.exist;
    const everything = JSON.stringify(ring.records);
    expect(everything).not.to.include(config.gemini.apiKey!);
    expect(everything).not.to.include(config.openai.apiKey!);
    expect(everything).not.to.include(secretQuestion);
  });
});
