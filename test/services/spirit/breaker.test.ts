/**
 * The spirit's circuit breaker on a real node with the local fake provider: repeated
 * failures open it (questions then go straight to the oracle, no provider call), after the
 * cool-down one question probes, and a recovered provider closes it again. /metrics shows
 * each state.
 */
import { expect } from 'chai';
import { joinSocket, sendWithAck, type TestSocket } from '../../support/clients';
import { createSession } from '../../support/factories';
import { scrape, valueOf } from '../../support/metrics';
import { startTestServer, type TestServer } from '../../support/server';
import { FakeLlmServer, json } from './fake-llm-server';

const completion = (content: string): unknown => ({ choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });
const FAILURES = 3;
const COOLDOWN_MS = 1500;

describe('spirit circuit breaker', function () {
  this.timeout(30_000);
  const fake = new FakeLlmServer();
  let server: TestServer;
  let socket: TestSocket;

  before(async () => {
    await fake.start();
    server = await startTestServer({
      database: 'sqlite',
      env: {
        SPIRIT_PROVIDER: 'openai',
        OPENAI_BASE_URL: `${fake.url}/v1`,
        SPIRIT_RETRIES: '0',
        SPIRIT_TIMEOUT_MS: '2000',
        SPIRIT_BREAKER_FAILURES: String(FAILURES),
        SPIRIT_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
        MESSAGE_RATE_LIMIT: '1000',
      },
    });
    const session = await createSession(server.url);
    socket = await joinSocket(server.url, { session_id: session.id, user_id: 'asker', name: 'Asker' });
  });
  after(async () => {
    socket?.close();
    await server?.close();
    await fake.close();
  });

  /** Asks a question and resolves with its spirit_response. */
  const ask = async (question: string) => {
    const ack = await sendWithAck(socket, { message: question });
    expect(ack.ok).to.equal(true);
    return socket.inbox.waitFor('spirit_response', (r) => r.in_reply_to === ack.id, 10_000);
  };
  const breakerState = async () => valueOf(await scrape(server.url), 'seance_spirit_breaker_state', { provider: 'openai' });

  it('opens after repeated failures, sends questions straight to the oracle, probes after the cool-down and closes on success', async () => {
    expect(await breakerState()).to.equal(0);
    fake.respondWith(json(500, { error: { message: 'down' } }));
    for (let i = 0; i < FAILURES; i += 1) await ask(`failing ${i}?`);
    expect(fake.received).to.have.length(FAILURES);
    expect(await breakerState(), 'open').to.equal(1);
    expect(valueOf(await scrape(server.url), 'seance_spirit_failures_total', { provider: 'openai' })).to.equal(FAILURES);

    // Open: answered by the oracle at once, without a provider call.
    const openedAt = Date.now();
    const started = Date.now();
    const answer = await ask('Is anyone there?');
    expect(answer.message).to.be.a('string').and.not.equal('');
    expect(Date.now() - started).to.be.below(COOLDOWN_MS);
    expect(fake.received, 'no provider call while open').to.have.length(FAILURES);

    // The provider recovers; questions keep going to the oracle until the cool-down has passed,
    // then one question probes, gets the provider's answer, and the breaker closes.
    fake.respondWith(json(200, completion('THE VEIL LIFTS')));
    let probe: { message: string } | null = null;
    for (let i = 0; i < 40 && !probe; i += 1) {
      const reply = await ask(`still there ${i}?`);
      if (fake.received.length > 0) probe = reply;
      else await new Promise((resolve) => setTimeout(resolve, 100)); // bounded polling while the cool-down runs
    }
    expect(probe, 'a probe was made').to.not.equal(null);
    expect(Date.now() - openedAt, 'no probe before the cool-down').to.be.at.least(COOLDOWN_MS - 100);
    expect(probe!.message).to.equal('THE VEIL LIFTS');
    expect(await breakerState(), 'closed').to.equal(0);
    expect((await ask('and now?')).message).to.equal('THE VEIL LIFTS');
  });
});
