/**
 * The built-in voice for real: Flite in worker threads, then the spirit effect. The audio
 * must parse as WAV, last about as long as the text needs, and not be silence.
 */
import { expect } from 'chai';
import bunyan from 'bunyan';
import { BuiltinVoice, speakable } from '../../../server/services/voice/builtin';
import { pieces } from '../../../server/services/voice/builtin/pieces';
import { echo, slowDown, spiritEffect } from '../../../server/services/voice/builtin/spiritEffect';
import { decodeWav, encodeWav } from '../../../server/services/voice/builtin/wav';
import { parseWav } from '../../support/audio';

const quiet = () => bunyan.createLogger({ name: 'test', level: 'fatal' });

describe('the built-in voice', function () {
  this.timeout(30_000);
  let voice: BuiltinVoice;
  before(() => {
    voice = new BuiltinVoice(1, quiet());
  });
  after(async () => voice.close());

  it('speaks a real WAV whose length follows the text, and is not silence', async () => {
    const short = 'Yes.';
    const long = 'The candle gutters. I see a long road, a locked door, and a name you have not spoken in years.';
    const a = parseWav((await voice.speak(short, 'rms')).bytes);
    const b = parseWav((await voice.speak(long, 'rms')).bytes);
    for (const info of [a, b]) {
      expect(info).to.include({ channels: 1, bitsPerSample: 16, sampleRate: 16000 });
      expect(info.rms, 'RMS').to.be.above(0.05);
      expect(info.peak).to.be.within(0.8, 0.9);
    }
    // A slow spirit reads about 10-15 characters a second; the reverb's tail adds 1.2 s.
    const expected = (text: string) => text.length / 12 + 1.2;
    for (const [info, text] of [
      [a, short],
      [b, long],
    ] as const) {
      expect(info.seconds / expected(text), `${text.length} characters → ${info.seconds.toFixed(2)} s`).to.be.within(0.5, 2);
    }
    expect(b.seconds).to.be.above(a.seconds * 3);
  });

  it('gives the same bytes for the same text every time (so every node makes the same audio)', async () => {
    const text = 'Ask again when the moon is full.';
    const [first, second] = await Promise.all([voice.speak(text, 'rms'), voice.speak(text, 'rms')]);
    expect(first.bytes.equals(second.bytes)).to.equal(true);
  });

  it("speaks the other voices it knows and falls back to the spirit's for unknown ones", async () => {
    expect(voice.voiceFor('awb')).to.equal('awb');
    expect(voice.voiceFor('21m00Tcm4TlvDq8ikWAM')).to.equal('rms');
    expect(voice.voiceFor(undefined)).to.equal('rms');
    const slt = parseWav((await voice.speak('Who calls me?', 'slt')).bytes);
    expect(slt.rms).to.be.above(0.05);
  });

  it('reads accents and drops what it cannot say', () => {
    expect(speakable('Séance 🎃 ça va?')).to.equal('Seance ca va?');
    expect(speakable('🎃🎃')).to.equal('...');
  });

  it('speaks the longest, hardest texts whole (this Flite build crashes on one long utterance)', async () => {
    // 200 letters spelled one by one (one utterance of them crashes), and 500 characters of plain sentences.
    for (const text of ['W'.repeat(200), 'Hello there, friend. '.repeat(24).slice(0, 500)]) {
      const info = parseWav((await voice.speak(text, 'rms')).bytes);
      expect(info.rms).to.be.above(0.05);
      expect(info.seconds).to.be.above(20);
    }
  });

  it('stops speaking after 90 s (before the effect), so no text costs minutes of CPU and megabytes of storage', async () => {
    // 500 letters spelled out one by one would last six minutes.
    const info = parseWav((await voice.speak('W'.repeat(500), 'rms')).bytes);
    expect(info.seconds).to.be.closeTo(90 / 0.8 + 1.2, 0.1);
  });

  it('cuts text into short pieces at sentence ends, between words, or inside an endless word', () => {
    expect(pieces('Yes.')).to.deep.equal(['Yes.']);
    const sentences = 'The candle gutters and the room grows cold. I see a long road ahead of you, traveller.';
    const cut = pieces(sentences);
    expect(cut.join(' ')).to.equal(sentences);
    expect(cut[0]).to.equal('The candle gutters and the room grows cold.');
    for (const piece of cut) expect(piece.length).to.be.at.most(50);
    expect(pieces('W'.repeat(120))).to.deep.equal(['W'.repeat(50), 'W'.repeat(50), 'W'.repeat(20)]);
  });

  it('abandons a synthesis that runs past its time and replaces the worker', async () => {
    const impatient = new BuiltinVoice(1, quiet(), 1);
    try {
      let failure: unknown = null;
      await impatient.speak('This will take longer than a millisecond.', 'rms').catch((err) => (failure = err));
      expect(String(failure)).to.match(/longer than 1 ms/);
    } finally {
      await impatient.close();
    }
    // The pool of the suite still works.
    expect(parseWav((await voice.speak('Still here.', 'rms')).bytes).rms).to.be.above(0.05);
  });
});

describe('the spirit effect', () => {
  const tone = (seconds: number, rate = 16000) => ({ sampleRate: rate, samples: Float32Array.from({ length: seconds * rate }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 200 * i) / rate)) });

  it('slows down: 0.8 plays 25 % longer and lowers the pitch by as much', () => {
    const input = tone(1).samples;
    const out = slowDown(input, 0.8);
    expect(out.length).to.be.closeTo(input.length / 0.8, 2);
    const crossings = (s: Float32Array) => s.reduce((n, v, i) => (i > 0 && s[i - 1] < 0 && v >= 0 ? n + 1 : n), 0);
    // 200 Hz for 1 s becomes 160 Hz for 1.25 s: the same number of cycles, spread longer.
    expect(crossings(out)).to.be.closeTo(crossings(input), 2);
  });

  it('adds an echo, a tail, and normalises the peak', () => {
    const click = new Float32Array(16000);
    click[0] = 1;
    const echoed = echo(click, 16000, 100, 0.5);
    expect(echoed[1600]).to.be.closeTo(0.5, 1e-6);
    expect(echoed[3200]).to.be.closeTo(0.25, 1e-6);
    const out = spiritEffect(tone(1));
    expect(out.samples.length).to.be.above(1.25 * 16000 + 0.5 * 16000);
    expect(Math.max(...out.samples.map(Math.abs))).to.be.closeTo(0.89, 1e-3);
    // The tail rings: the last half second after the voice is not silent.
    const tail = out.samples.subarray(Math.round(1.3 * 16000), Math.round(1.8 * 16000));
    expect(Math.max(...tail.map(Math.abs))).to.be.above(0.01);
  });

  it('round-trips PCM through its WAV encoder', () => {
    const pcm = { sampleRate: 22050, samples: Float32Array.from([0, 0.5, -0.5, 1, -1]) };
    const back = decodeWav(encodeWav(pcm));
    expect(back.sampleRate).to.equal(22050);
    expect(Array.from(back.samples).map((s) => Math.round(s * 100) / 100)).to.deep.equal([0, 0.5, -0.5, 1, -1]);
  });
});
