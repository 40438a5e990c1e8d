/**
 * The spirit's voice over HTTP on one real node: `audio_url` on every answer, the audio
 * path (ETag, long cache), POST /api/tts/generate (validation, rate limit), the paid
 * providers' real wire formats against local servers, and the fall back to the built-in voice.
 */
import { expect } from 'chai';
import { http, joinSocket, RawClient, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { fakeMp3, parseMp3, parseWav } from '../support/audio';
import { startTestServer, type TestServer } from '../support/server';
import { FakeLlmServer, hang, json, text } from '../services/spirit/fake-llm-server';
import { audio } from '../services/voice/fake-voice';

async function fetchAudio(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

const generate = (server: TestServer, body: unknown) => fetchAudio(`${server.url}/api/tts/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe("the spirit's voice over HTTP", function () {
  this.timeout(30_000);

  describe('with the built-in voice (the default)', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ env: { MESSAGE_RATE_LIMIT: '1000' } });
    });
    after(async () => server?.close());

    it('names the audio on every spirit_response, on both transports, and serves it cacheable for good', async () => {
      const session = await createSession(server.url);
      const sio = await joinSocket(server.url, { session_id: session.id, name: 'Ann' });
      const raw = await RawClient.join(server.wsUrl, session.id, { name: 'Raw' });
      try {
        const ack = await sendWithAck(sio, { message: 'Is the spirit with us tonight?' });
        const answers = await Promise.all([sio.inbox.waitFor('spirit_response'), raw.inbox.waitFor('spirit_response')]);
        const path = `/api/sessions/${session.id}/messages/${answers[0].id}/audio`;
        for (const answer of answers) expect(answer).to.include({ in_reply_to: ack.id, audio_url: path });

        const first = await fetchAudio(server.url + path);
        expect(first.status).to.equal(200);
        expect(first.headers.get('content-type')).to.equal('audio/wav');
        expect(Number(first.headers.get('content-length'))).to.equal(first.bytes.length);
        expect(first.headers.get('cache-control')).to.equal('public, max-age=31536000, immutable');
        const etag = first.headers.get('etag');
        expect(etag).to.match(/^"[0-9a-f]{32}"$/);
        const wav = parseWav(first.bytes);
        expect(wav.rms).to.be.above(0.05);
        expect(wav.seconds / (answers[0].message.length / 12 + 1.2)).to.be.within(0.5, 2);

        const again = await fetchAudio(server.url + path);
        expect(again.bytes.equals(first.bytes)).to.equal(true);
        expect(again.headers.get('etag')).to.equal(etag);
        const cached = await fetchAudio(server.url + path, { headers: { 'if-none-match': etag! } });
        expect(cached.status).to.equal(304);
        expect(cached.bytes.length).to.equal(0);

        // The existing frontend's call, for the same text: the very same audio, not made again.
        const generated = await generate(server, { text: answers[0].message });
        expect(generated.status).to.equal(200);
        expect(generated.headers.get('content-type')).to.equal('audio/wav');
        expect(generated.bytes.equals(first.bytes)).to.equal(true);
        const rows = await server.db.models.SpokenAudio.count();
        expect(rows).to.be.at.least(1);
      } finally {
        sio.close();
        raw.close();
      }
    });

    it('speaks any text for POST /api/tts/generate, and a voice_id picks a voice it knows', async () => {
      const spoken = await generate(server, { text: 'Beware the third knock.' });
      expect(spoken.status).to.equal(200);
      expect(spoken.headers.get('x-seance-voice')).to.equal('espeak');
      expect(parseWav(spoken.bytes).rms).to.be.above(0.05);
      const other = await generate(server, { text: 'Beware the third knock.', voice_id: 'slt' });
      expect(other.bytes.equals(spoken.bytes)).to.equal(false);
      // An unknown voice (an ElevenLabs id from the frontend) gets the spirit's own voice.
      const unknown = await generate(server, { text: 'Beware the third knock.', voice_id: '21m00Tcm4TlvDq8ikWAM' });
      expect(unknown.bytes.equals(spoken.bytes)).to.equal(true);
    });

    it("answers 404 NOT_FOUND for anything that is not one of the spirit's answers", async () => {
      const session = await createSession(server.url);
      const other = await createSession(server.url);
      const sio = await joinSocket(server.url, { session_id: session.id, name: 'Ann' });
      try {
        const ack = await sendWithAck(sio, { message: 'Hello?' });
        const answer = await sio.inbox.waitFor('spirit_response');
        for (const path of [
          `/api/sessions/${session.id}/messages/${ack.id}/audio`, // a question, not an answer
          `/api/sessions/${other.id}/messages/${answer.id}/audio`, // another session's
          `/api/sessions/${session.id}/messages/999999999/audio`,
          `/api/sessions/not-a-uuid/messages/${answer.id}/audio`,
          `/api/sessions/${session.id}/messages/abc/audio`,
        ]) {
          const reply = await http(server.url, 'GET', path);
          expect(reply.status, path).to.equal(404);
          expect(reply.body).to.deep.include({ success: false });
          expect(reply.body.error.code, path).to.equal('NOT_FOUND');
        }
      } finally {
        sio.close();
      }
    });

    it('refuses bad bodies with VALIDATION_ERROR in the envelope, naming each field', async () => {
      const cases: Array<[unknown, string]> = [
        [{}, 'text'],
        [{ text: '   ' }, 'text'],
        [{ text: 'x'.repeat(501) }, 'text'],
        [{ text: 42 }, 'text'],
        [{ text: 'hi', voice_id: 'no spaces allowed' }, 'voice_id'],
        [{ text: 'hi', speed: 2 }, 'speed'],
      ];
      for (const [body, field] of cases) {
        const reply = await http(server.url, 'POST', '/api/tts/generate', { json: body });
        expect(reply.status, JSON.stringify(body)).to.equal(400);
        expect(reply.body.error.code).to.equal('VALIDATION_ERROR');
        expect(reply.body.error.details, JSON.stringify(body)).to.have.property(field);
      }
      const malformed = await http(server.url, 'POST', '/api/tts/generate', { body: '{"text":', headers: { 'content-type': 'application/json' } });
      expect(malformed.status).to.equal(400);
      expect(malformed.body.error.code).to.equal('VALIDATION_ERROR');
      expect((await http(server.url, 'POST', '/api/tts/generate', { json: { text: 'The dead are near. '.repeat(27).slice(0, 500) } })).status).to.equal(200);
    });
  });

  describe('limits', () => {
    let server: TestServer;
    let flooded: TestServer;
    before(async () => {
      [server, flooded] = await Promise.all([
        startTestServer({ env: { TTS_RATE_LIMIT: '2' } }),
        startTestServer({ env: { TTS_RATE_LIMIT: '100000', TTS_CONCURRENCY: '1', MESSAGE_RATE_LIMIT: '1000' } }),
      ]);
    });
    after(async () => Promise.all([server?.close(), flooded?.close()]));

    it('keeps the chat quick under a flood of speech requests: a bounded queue, the rest refused with 429', async () => {
      const session = await createSession(flooded.url);
      const sio = await joinSocket(flooded.url, { session_id: session.id, name: 'Ann' });
      try {
        const long = (i: number) => `Flood ${i}: the wind howls through the chimney and the old clock stops at midnight. `.repeat(3).slice(0, 200);
        const flood = Array.from({ length: 30 }, (_, i) => http(flooded.url, 'POST', '/api/tts/generate', { json: { text: long(i) } }));
        // While one synthesis runs and eight wait, the chat goes on: each round trip measured.
        const roundTrips: number[] = [];
        for (let i = 0; i < 10; i++) {
          const started = Date.now();
          const ack = await sendWithAck(sio, { message: `still there ${i}?` });
          await sio.inbox.waitFor('message_received', (m) => m.id === ack.id);
          roundTrips.push(Date.now() - started);
        }
        const replies = await Promise.all(flood);
        const statuses = replies.map((r) => r.status);
        expect(statuses.filter((s) => s === 429).length, statuses.join(' ')).to.be.at.least(30 - 9);
        expect(statuses.filter((s) => s !== 200 && s !== 429)).to.deep.equal([]);
        const refused = replies.find((r) => r.status === 429)!;
        expect(refused.body.error.code).to.equal('RATE_LIMITED');
        expect(refused.headers.get('retry-after')).to.equal('2');
        roundTrips.sort((a, b) => a - b);
        expect(roundTrips[5], `chat round trips ${roundTrips.join(', ')} ms`).to.be.below(250);
      } finally {
        sio.close();
      }
    });

    it('rate-limits POST /api/tts/generate per client address: 429 RATE_LIMITED with Retry-After', async () => {
      expect((await generate(server, { text: 'one' })).status).to.equal(200);
      expect((await generate(server, { text: 'two' })).status).to.equal(200);
      const refused = await http(server.url, 'POST', '/api/tts/generate', { json: { text: 'three' } });
      expect(refused.status).to.equal(429);
      expect(refused.body.error.code).to.equal('RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).to.be.above(0);
    });
  });

  describe('with TTS_PROVIDER=none', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ env: { TTS_PROVIDER: 'none' } });
    });
    after(async () => server?.close());

    it('sends audio_url null and serves no audio', async () => {
      const session = await createSession(server.url);
      const sio = await joinSocket(server.url, { session_id: session.id, name: 'Ann' });
      try {
        await sendWithAck(sio, { message: 'Speak!' });
        const answer = await sio.inbox.waitFor('spirit_response');
        expect(answer.audio_url).to.equal(null);
        expect((await http(server.url, 'GET', `/api/sessions/${session.id}/messages/${answer.id}/audio`)).status).to.equal(404);
        const generated = await http(server.url, 'POST', '/api/tts/generate', { json: { text: 'Speak!' } });
        expect(generated.status).to.equal(404);
        expect(generated.body.error.code).to.equal('NOT_FOUND');
      } finally {
        sio.close();
      }
    });
  });

  describe('on the embedded SQLite database', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database: 'sqlite' });
    });
    after(async () => server?.close());

    it('keeps the audio as a blob and serves it back', async () => {
      const first = await generate(server, { text: 'The dead keep their own counsel.' });
      expect(first.status).to.equal(200);
      const row = await server.db.models.SpokenAudio.findOne();
      expect(Buffer.isBuffer(row!.data)).to.equal(true);
      expect(row!.data!.equals(first.bytes)).to.equal(true);
      expect((await generate(server, { text: 'The dead keep their own counsel.' })).bytes.equals(first.bytes)).to.equal(true);
    });
  });

  describe('paid voices, against local servers speaking their APIs', () => {
    let fake: FakeLlmServer;
    let openai: TestServer;
    let eleven: TestServer;
    before(async () => {
      fake = new FakeLlmServer();
      await fake.start();
      openai = await startTestServer({
        env: { TTS_PROVIDER: 'openai', OPENAI_BASE_URL: `${fake.url}/v1`, OPENAI_API_KEY: 'sk-test', TTS_MODEL: 'tts-1-hd', TTS_VOICE: 'onyx', TTS_TIMEOUT_MS: '400', TTS_MAX_BYTES: '100000' },
      });
      eleven = await startTestServer({
        env: { TTS_PROVIDER: 'elevenlabs', ELEVENLABS_API_KEY: 'xi-test', ELEVENLABS_BASE_URL: fake.url, ELEVENLABS_VOICE_ID: 'voice-abc', ELEVENLABS_MODEL_ID: 'eleven_test_v1' },
      });
    });
    after(async () => {
      await Promise.all([openai?.close(), eleven?.close()]);
      await fake?.close();
    });

    it('OpenAI: POST /v1/audio/speech with the key, model, voice and mp3; the bytes are served as they came, once', async () => {
      const mp3 = fakeMp3(40, 1);
      fake.respondWith(audio(mp3));
      const spoken = await generate(openai, { text: 'The door will open at midnight.' });
      expect(spoken.status).to.equal(200);
      expect(spoken.headers.get('content-type')).to.equal('audio/mpeg');
      expect(spoken.bytes.equals(mp3)).to.equal(true);
      expect(parseMp3(spoken.bytes).seconds).to.be.closeTo(40 * 0.026, 0.01);
      const request = await fake.request(0);
      expect(request.method).to.equal('POST');
      expect(request.path).to.equal('/v1/audio/speech');
      expect(request.headers.authorization).to.equal('Bearer sk-test');
      expect(request.headers['content-type']).to.equal('application/json');
      expect(request.body).to.deep.equal({ model: 'tts-1-hd', input: 'The door will open at midnight.', voice: 'onyx', response_format: 'mp3', speed: 0.85 });

      const again = await generate(openai, { text: 'The door will open at midnight.' });
      expect(again.bytes.equals(mp3)).to.equal(true);
      expect(fake.received).to.have.length(1);

      await generate(openai, { text: 'The door will open at midnight.', voice_id: 'nova' });
      expect((await fake.request(1)).body.voice).to.equal('nova');
    });

    it('ElevenLabs: POST /v1/text-to-speech/{voice} with xi-api-key, the model and voice settings', async () => {
      const mp3 = fakeMp3(20, 2);
      fake.respondWith(audio(mp3));
      const spoken = await generate(eleven, { text: 'I am bound to this house.' });
      expect(spoken.status).to.equal(200);
      expect(spoken.bytes.equals(mp3)).to.equal(true);
      const request = await fake.request(0);
      expect(request.path).to.equal('/v1/text-to-speech/voice-abc?output_format=mp3_44100_128');
      expect(request.headers['xi-api-key']).to.equal('xi-test');
      expect(request.headers.accept).to.equal('audio/mpeg');
      expect(request.body).to.deep.equal({ text: 'I am bound to this house.', model_id: 'eleven_test_v1', voice_settings: { stability: 0.3, similarity_boost: 0.75 } });
      await generate(eleven, { text: 'I am bound to this house.', voice_id: 'other-voice' });
      expect((await fake.request(1)).path).to.equal('/v1/text-to-speech/other-voice?output_format=mp3_44100_128');
    });

    const failures: Array<[string, () => void]> = [
      ['an HTTP error', () => fake.respondWith(json(500, { error: { message: 'boom' } }))],
      ['a reply that is not audio', () => fake.respondWith(json(200, { audio: 'base64?' }))],
      ['an empty reply', () => fake.respondWith(text(200, ''))],
      ['a reply over TTS_MAX_BYTES', () => fake.respondWith(audio(fakeMp3(300)))],
      ['a provider that passes TTS_TIMEOUT_MS', () => fake.respondWith(hang)],
    ];
    for (const [what, arrange] of failures) {
      it(`falls back to the built-in voice on ${what}`, async () => {
        arrange();
        const started = Date.now();
        const spoken = await generate(openai, { text: `Fallback after ${what}.` });
        expect(spoken.status).to.equal(200);
        expect(spoken.headers.get('x-seance-voice')).to.equal('espeak; fallback');
        expect(spoken.headers.get('content-type')).to.equal('audio/wav');
        expect(parseWav(spoken.bytes).rms).to.be.above(0.05);
        expect(Date.now() - started).to.be.below(5000);
        expect(fake.received).to.have.length(1);
      });
    }
  });
});
