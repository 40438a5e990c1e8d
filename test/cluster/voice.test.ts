/**
 * Speech is made once for the whole cluster: two real node processes on one PostgreSQL,
 * a local server speaking OpenAI's speech API that counts its calls. Requests for the same
 * text on both nodes at once cost one provider call, and every node serves the same bytes.
 */
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { joinSocket, sendWithAck, type TestSocket } from '../support/clients';
import { createSession } from '../support/factories';
import { fakeMp3 } from '../support/audio';
import { sharedPostgres } from '../support/hooks';
import { FakeLlmServer } from '../services/spirit/fake-llm-server';
import { audio } from '../services/voice/fake-voice';

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}
const generate = (base: string, text: string) => get(`${base}/api/tts/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });

describe('cluster: speech made once for every node', function () {
  this.timeout(60_000);
  let cluster: ClusterHandle;
  let fake: FakeLlmServer;
  const open: TestSocket[] = [];

  before(async () => {
    fake = new FakeLlmServer();
    await fake.start();
    cluster = await startCluster({
      nodes: 2,
      nginx: false,
      postgres: await sharedPostgres(),
      env: { TTS_PROVIDER: 'openai', OPENAI_BASE_URL: `${fake.url}/v1`, OPENAI_API_KEY: 'sk-cluster', TTS_TIMEOUT_MS: '5000' },
    });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => {
    await cluster?.stop();
    await fake?.close();
  });

  it('two nodes asked at once for the same text call the provider once and answer the same bytes', async () => {
    const [n1, n2] = cluster.nodes;
    const mp3 = fakeMp3(30, 7);
    // Slow enough that both requests are in flight before the first answer exists.
    fake.respondWith(audio(mp3, 'audio/mpeg', 500));
    const [a, b] = await Promise.all([generate(n1.url, 'One call for the whole cluster.'), generate(n2.url, 'One call for the whole cluster.')]);
    expect([a.status, b.status]).to.deep.equal([200, 200]);
    expect(a.bytes.equals(mp3) && b.bytes.equals(mp3)).to.equal(true);
    expect(fake.received).to.have.length(1);
    // Later, from either node: served from the database, no call at all.
    expect((await generate(n2.url, 'One call for the whole cluster.')).bytes.equals(mp3)).to.equal(true);
    expect((await generate(n1.url, 'One call for the whole cluster.')).bytes.equals(mp3)).to.equal(true);
    expect(fake.received).to.have.length(1);
  });

  it("serves an answer's audio from every node with the same bytes and ETag after one provider call", async () => {
    const [n1, n2] = cluster.nodes;
    const mp3 = fakeMp3(25, 9);
    fake.respondWith(audio(mp3, 'audio/mpeg', 300));
    const session = await createSession(n1.url);
    const sio = await joinSocket(n1.url, { session_id: session.id, name: 'Ann' });
    open.push(sio);
    await sendWithAck(sio, { message: 'Spirit, will you speak to all of us?' });
    const answer = await sio.inbox.waitFor('spirit_response');
    expect(answer.audio_url).to.equal(`/api/sessions/${session.id}/messages/${answer.id}/audio`);
    const replies = await Promise.all([n1, n2, n1, n2].map((n) => get(n.url + answer.audio_url)));
    for (const reply of replies) {
      expect(reply.status).to.equal(200);
      expect(reply.headers.get('content-type')).to.equal('audio/mpeg');
      expect(reply.bytes.equals(mp3)).to.equal(true);
      expect(reply.headers.get('etag')).to.equal(replies[0].headers.get('etag'));
    }
    expect(fake.received).to.have.length(1);
    expect(fake.received[0].body).to.include({ input: answer.message, voice: 'onyx', model: 'tts-1' });
  });
});
