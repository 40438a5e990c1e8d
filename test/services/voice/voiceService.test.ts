/**
 * The voice service's rules on the in-memory audio store, in milliseconds: one generation
 * per text however many ask, a dead node's claim taken over, a bounded queue.
 */
import { expect } from 'chai';
import bunyan from 'bunyan';
import { loadConfig } from '../../../config';
import { AppError } from '../../../server/errors';
import { speechKey, VoiceService } from '../../../server/services/voice';
import type { SpokenAudio, VoiceProvider } from '../../../server/services/voice/types';
import { MemoryAudioStore } from '../../../server/storage/memory';
import { fakeMp3 } from '../../support/audio';

/** A provider whose calls wait until the test lets them go. */
function gatedProvider() {
  const calls: string[] = [];
  let open: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (open = resolve));
  const provider: VoiceProvider = {
    name: 'openai',
    fingerprint: 'test',
    voiceFor: (requested) => requested ?? 'onyx',
    async speak(text: string): Promise<SpokenAudio> {
      calls.push(text);
      await gate;
      return { bytes: fakeMp3(3, calls.length), contentType: 'audio/mpeg' };
    },
  };
  return {
    provider,
    calls,
    release: () => {
      open();
      gate = Promise.resolve();
    },
  };
}

function service(provider: VoiceProvider, store = new MemoryAudioStore(), staleAfterMs?: number) {
  const config = loadConfig({ NODE_ENV: 'test', TTS_PROVIDER: 'openai', TTS_CONCURRENCY: '1' });
  return { store, voice: new VoiceService({ config: config.voice, store, logger: bunyan.createLogger({ name: 't', level: 'fatal' }), provider, staleAfterMs }) };
}

describe('VoiceService', () => {
  it('makes a text once however many ask at once, and serves it from the store after', async () => {
    const { provider, calls, release } = gatedProvider();
    const { voice } = service(provider);
    const asks = Array.from({ length: 5 }, () => voice.speak('Once only.'));
    release();
    const spoken = await Promise.all(asks);
    expect(calls).to.deep.equal(['Once only.']);
    for (const audio of spoken) expect(audio.bytes.equals(spoken[0].bytes)).to.equal(true);
    await voice.speak('Once only.');
    expect(calls).to.have.length(1);
    await voice.close();
  });

  it("waits for another node's claim, and takes it over once it is stale", async () => {
    const { provider, calls, release } = gatedProvider();
    release();
    const store = new MemoryAudioStore();
    const { voice } = service(provider, store, 150);
    // Another node claimed the key, then died before it stored anything.
    const key = speechKey(provider, 'onyx', 'Abandoned.');
    const dead = await store.claim(key, 'onyx', { contentKey: key, messageId: null });
    expect(dead).to.be.a('string');
    const started = Date.now();
    const audio = await voice.speak('Abandoned.');
    expect(Date.now() - started).to.be.at.least(140);
    expect(calls).to.deep.equal(['Abandoned.']);
    expect((await store.lookup(key)).state).to.equal('ready');
    expect(audio.contentType).to.equal('audio/mpeg');
    await voice.close();
  });

  it('queues a few generations behind the one under way and refuses the rest with RATE_LIMITED', async () => {
    const { provider, release } = gatedProvider();
    const { voice } = service(provider);
    const asks = Array.from({ length: 12 }, (_, i) =>
      voice.speak(`Text ${i}.`).then(
        () => 'ok',
        (err: unknown) => (err instanceof AppError ? err.code : String(err)),
      ),
    );
    // One under way, eight waiting (TTS_CONCURRENCY 1): the other three are refused at once.
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const outcomes = await Promise.all(asks);
    expect(outcomes.filter((o) => o === 'ok')).to.have.length(9);
    expect(outcomes.filter((o) => o === 'RATE_LIMITED')).to.have.length(3);
    await voice.close();
  });
});
