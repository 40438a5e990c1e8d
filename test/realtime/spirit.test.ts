import { expect } from 'chai';
import { joinSocket, sendWithAck, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';
import { FakeLlmServer, json, text } from '../services/spirit/fake-llm-server';

const openAiReply = (content: string) => json(200, { choices: [{ message: { role: 'assistant', content } }] });
const geminiReply = (content: string) => json(200, { candidates: [{ content: { role: 'model', parts: [{ text: content }] } }] });

describe('the spirit in a live session', () => {
  let fake: FakeLlmServer;
  before(async () => {
    fake = new FakeLlmServer();
    await fake.start();
  });
  after(async () => fake.close());

  describe('with an OpenAI-compatible provider', () => {
    let server: TestServer;
    let socket: TestSocket;
    before(async () => {
      server = await startTestServer({
        env: {
          SPIRIT_PROVIDER: 'openai',
          OPENAI_BASE_URL: `${fake.url}/v1`,
          OPENAI_MODEL: 'ouija-1',
          OPENAI_API_KEY: 'k-test',
          SPIRIT_TIMEOUT_MS: '300',
          SPIRIT_RETRIES: '1',
          SPIRIT_RETRY_BASE_MS: '10',
          MESSAGE_RATE_LIMIT: '1000',
        },
      });
    });
    afterEach(() => socket?.close());
    after(async () => server?.close());

    it("prompts with the personality and the session's last 10 messages, and relays the answer shaped", async () => {
      const session = await createSession(server.url);
      socket = await joinSocket(server.url, { session_id: session.id, name: 'Ada' });
      fake.respondWith(openAiReply('The veil is thin tonight'));
      for (let i = 0; i < 5; i++) {
        await sendWithAck(socket, { message: `question ${i}` });
        await socket.inbox.waitForCount('spirit_response', i + 1);
      }
      const last = await fake.request(4);
      expect(last.path).to.equal('/v1/chat/completions');
      expect(last.body.model).to.equal('ouija-1');
      const messages = last.body.messages as Array<{ role: string; content: string }>;
      expect(messages[0].role).to.equal('system');
      // 9 earlier messages (5 questions, 4 answers) plus the question: the last 10.
      const turns = messages.slice(1);
      expect(turns).to.have.length(9);
      expect(turns.at(-1)).to.deep.equal({ role: 'user', content: 'Ada: question 4' });
      expect(turns.filter((t) => t.role === 'assistant').map((t) => t.content)).to.deep.equal(Array(4).fill('The veil is thin tonight'));
      const answer = socket.inbox.of('spirit_response').at(-1);
      expect(answer.message).to.equal('The veil is thin tonight');
      expect(answer.word_count).to.equal(5);
      expect(answer.letter_timings).to.have.length(answer.message.length);

      fake.respondWith(openAiReply('more '.repeat(40)));
      await sendWithAck(socket, { message: 'question 5' });
      const long = (await socket.inbox.waitForCount('spirit_response', 6))[5];
      expect(long.word_count).to.equal(30);
      expect(long.message.endsWith('...')).to.equal(true);
      const prompt = (await fake.request(0)).body.messages.slice(1);
      expect(prompt).to.have.length(10);
    });

    it('falls back to the oracle when the provider fails, so the question is answered', async () => {
      const session = await createSession(server.url);
      socket = await joinSocket(server.url, { session_id: session.id, name: 'Ada' });
      fake.respondWith(text(500, 'boom'));
      const ack = await sendWithAck(socket, { message: 'Will it rain?' });
      const answer = await socket.inbox.waitFor('spirit_response');
      expect(answer.in_reply_to).to.equal(ack.id);
      expect(answer.message).to.be.a('string').and.not.empty;
      expect(fake.received).to.have.length(2);
      // Made after two failed attempts: its timestamp is when it was made, after the question's.
      const question = socket.inbox.of('message_received').find((m) => m.id === ack.id);
      expect(Date.parse(answer.timestamp)).to.be.above(Date.parse(question.timestamp));
    });
  });

  describe('with Gemini', () => {
    let server: TestServer;
    after(async () => server?.close());

    it('asks generateContent with the system instruction and answers', async () => {
      server = await startTestServer({ env: { SPIRIT_PROVIDER: 'gemini', GOOGLE_API_KEY: 'g-test', GEMINI_BASE_URL: fake.url, GEMINI_MODEL: 'gemini-test' } });
      const session = await createSession(server.url);
      const socket = await joinSocket(server.url, { session_id: session.id, name: 'Ada' });
      fake.respondWith(geminiReply('YES, CHILD'));
      await sendWithAck(socket, { message: 'Are you there?' });
      expect((await socket.inbox.waitFor('spirit_response')).message).to.equal('YES, CHILD');
      const request = await fake.request(0);
      expect(request.path).to.equal('/models/gemini-test:generateContent');
      expect(request.headers['x-goog-api-key']).to.equal('g-test');
      expect(request.body.system_instruction.parts[0].text).to.be.a('string').and.not.empty;
      expect(request.body.contents.at(-1)).to.deep.equal({ role: 'user', parts: [{ text: 'Ada: Are you there?' }] });
      socket.close();
    });
  });
});
