/**
 * Clients that misbehave (never read, flood events, open connection after connection, answer
 * pings nobody sent) against real servers: they are closed or refused, and the well-behaved
 * clients of the same session keep their service.
 */
import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect } from 'chai';
import WebSocket from 'ws';
import { rooms } from '../../server/cluster/names';
import { startNode, type NodeHandle } from '../../harness/node';
import { startRedis, type RedisHandle } from '../../harness/redis';
import { joinSocket, RawClient, sendWithAck, type TestSocket } from '../support/clients';
import { createSession, userId } from '../support/factories';
import { sharedPostgres } from '../support/hooks';
import { scrape, valueOf } from '../support/metrics';
import { startTestServer, type TestServer } from '../support/server';

/** Small, so a reader that stops reading passes it soon after the kernel's own buffers fill. */
const BUFFER_LIMIT = 64 * 1024;
const FLOOD_EVENT = 'x'.repeat(8 * 1024);
/** More than the kernel buffers of a loopback connection (about 4 MB) plus the limit: bounded. */
const FLOOD_MAX_EVENTS = 2000;

type Client = RawClient | TestSocket;

/** Resident memory of a process (a node started with startNode). */
function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/** A refusal counter of one node, by rule. */
async function refusals(server: TestServer, rule: string): Promise<number> {
  return valueOf(await scrape(server.url), 'seance_client_refusals_total', { rule }) ?? 0;
}

/**
 * A busy session: large events through the server's own fan-out (the path every broadcast
 * takes, to both transports), a few per turn of the event loop so that readers keep up, until
 * `done()` or the bound. Returns how many went out.
 */
async function flood(server: TestServer, sessionId: string, done: () => boolean): Promise<number> {
  let sent = 0;
  while (sent < FLOOD_MAX_EVENTS && !done()) {
    server.app.io.to(rooms.session(sessionId)).emit('user_typing', { id: 'flood', name: FLOOD_EVENT });
    sent += 1;
    if (sent % 4 === 0) await nextTurn();
  }
  return sent;
}

/** The TCP socket under a raw client or a Socket.IO websocket client: paused, it reads nothing more. */
function tcpOf(client: Client): { pause(): void; resume(): void } {
  if (client instanceof RawClient) return (client.ws as any)._socket;
  return (client.io.engine.transport as any).ws._socket;
}

/**
 * A Socket.IO client on HTTP long-polling by hand, so that it can stop polling: it joins, reads
 * until `session_joined`, and then polls only when told.
 */
class PollingClient {
  private constructor(
    private readonly base: string,
    readonly sid: string,
  ) {}

  static async join(url: string, auth: Record<string, unknown>): Promise<PollingClient> {
    const base = `${url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const client = new PollingClient(base, JSON.parse(open.slice(1)).sid);
    const posted = await fetch(`${client.base}&sid=${client.sid}`, { method: 'POST', body: `40${JSON.stringify(auth)}` });
    expect(posted.status).to.equal(200);
    let seen = '';
    for (let polls = 0; polls < 20 && !seen.includes('"session_joined"'); polls++) seen += await client.poll();
    expect(seen, 'session_joined over polling').to.include('"session_joined"');
    return client;
  }

  /** One GET: every packet the server had queued, separated by \x1e. */
  async poll(): Promise<string> {
    const reply = await fetch(`${this.base}&sid=${this.sid}`, { signal: AbortSignal.timeout(15_000) });
    return reply.text();
  }
}

describe('clients that misbehave', function () {
  this.timeout(40_000);
  let server: TestServer;
  const open: Client[] = [];
  const track = <T extends Client>(c: T) => (open.push(c), c);

  before(async () => {
    server = await startTestServer({
      env: { MAX_CONNECTION_BUFFER_BYTES: String(BUFFER_LIMIT), MESSAGE_RATE_LIMIT: '1000' },
    });
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => server?.close());

  /** Two readers, one per transport, that keep reading. */
  async function readers(sessionId: string): Promise<[RawClient, TestSocket]> {
    return [
      track(await RawClient.join(server.wsUrl, sessionId, { user_id: userId('raw-reader'), name: 'Raw Reader' })),
      track(await joinSocket(server.url, { session_id: sessionId, user_id: userId('sio-reader'), name: 'Socket Reader' })),
    ];
  }

  /**
   * Floods the session until the slow reader `slowId` has left it (then `onLeft` runs at once,
   * within the closed reader's grace), then checks the readers got every flood event and still
   * get what is said next.
   */
  async function floodUntilLeft(sessionId: string, slowId: string, [raw, sio]: [RawClient, TestSocket], onLeft: () => unknown): Promise<void> {
    const slowBefore = await refusals(server, 'slow_reader');
    let left = false;
    const leftSeen = raw.inbox.waitFor('user_left', (u) => u.id === slowId, 30_000).then(() => (left = true));
    const sent = await flood(server, sessionId, () => left);
    await leftSeen;
    const afterLeft = onLeft();
    expect(sent, 'flood events before the slow reader was closed').to.be.below(FLOOD_MAX_EVENTS);
    expect((await sio.inbox.waitFor('user_left', (u) => u.id === slowId, 15_000)).id).to.equal(slowId);
    for (const reader of [raw, sio]) await reader.inbox.waitForCount('user_typing', sent, 20_000);
    const ack = await sendWithAck(sio, { message: 'still here?' });
    for (const reader of [raw, sio]) expect((await reader.inbox.waitFor('message_received', (m) => m.id === ack.id, 10_000)).message).to.equal('still here?');
    expect(await refusals(server, 'slow_reader')).to.equal(slowBefore + 1);
    await afterLeft;
  }

  describe('slow readers', () => {
    it('raw: closed with 1008 past the limit, leaves at once, and may resume', async () => {
      const session = await createSession(server.url);
      const pair = await readers(session.id);
      const slowId = userId('raw-slow');
      const slow = track(await RawClient.join(server.wsUrl, session.id, { user_id: slowId, name: 'Never Reads' }));
      const lastSeq = (await sendWithAck(pair[1], { message: 'before the stall' })).seq;
      await slow.inbox.waitFor('message_received', (m) => m.seq === lastSeq);
      tcpOf(slow).pause();

      // Reading again, it gets what was already on its way, then the close.
      let closeCode = 0;
      await floodUntilLeft(session.id, slowId, pair, async () => {
        tcpOf(slow).resume();
        closeCode = (await slow.closed).code;
      });
      expect(closeCode).to.equal(1008);

      const back = track(await RawClient.join(server.wsUrl, session.id, { user_id: slowId, name: 'Never Reads', last_seq: lastSeq }));
      const welcome = back.inbox.of('session_joined')[0];
      expect(welcome.resumed).to.equal(true);
      expect(welcome.messages.map((m: any) => m.message)).to.include('still here?');
      expect(welcome.messages[0].seq).to.equal(lastSeq + 1);
    });

    it('Socket.IO over websocket: disconnected by the server past the limit', async () => {
      const session = await createSession(server.url);
      const pair = await readers(session.id);
      const slowId = userId('ws-slow');
      const slow = track(await joinSocket(server.url, { session_id: session.id, user_id: slowId, name: 'Never Reads' }));
      tcpOf(slow).pause();

      let reason = '';
      await floodUntilLeft(session.id, slowId, pair, async () => {
        tcpOf(slow).resume();
        reason = await slow.inbox.waitFor('disconnect', () => true, 15_000);
      });
      expect(reason).to.equal('io server disconnect');
    });

    it('Socket.IO over long-polling: a client that stops polling is disconnected past the limit', async () => {
      const session = await createSession(server.url);
      const pair = await readers(session.id);
      const slowId = userId('poll-slow');
      const slow = await PollingClient.join(server.url, { session_id: session.id, user_id: slowId, name: 'Never Polls' });

      // What it had queued ends with Socket.IO's DISCONNECT packet.
      let packets: string[] = [];
      await floodUntilLeft(session.id, slowId, pair, async () => (packets = (await slow.poll()).split('\x1e')));
      expect(packets.at(-1)).to.equal('41');
      // The limit, and what the node queued in the same turn of its event loop.
      expect(packets.join('').length).to.be.below(BUFFER_LIMIT + 5 * FLOOD_EVENT.length);
    });
  });

  describe('event budget (20 per second, bursts of 40)', () => {
    const BURST = 40;
    const SENT = 60;

    it('raw: events past the burst are dropped, with one RATE_LIMITED', async () => {
      const session = await createSession(server.url);
      const before = await refusals(server, 'event_budget');
      const flooder = track(await RawClient.join(server.wsUrl, session.id, { user_id: userId('flooder'), name: 'Flooder' }));
      for (let i = 0; i < SENT; i++) flooder.send({ event: 'send_message', data: { message: `burst ${i}` } });
      await flooder.inbox.waitForCount('message_received', BURST, 15_000);
      const errors = await flooder.inbox.waitForCount('error', 1);
      expect(errors[0].code).to.equal('RATE_LIMITED');
      // After a second the budget has room again: the next message goes through, and nothing of the burst came after the 40 (or the few refilled meanwhile).
      await new Promise((resolve) => setTimeout(resolve, 1100));
      flooder.send({ event: 'send_message', data: { message: 'after the pause' } });
      await flooder.inbox.waitFor('message_received', (m) => m.message === 'after the pause', 10_000);
      const burst = flooder.inbox.of('message_received').filter((m) => m.message.startsWith('burst '));
      expect(burst.length).to.be.within(BURST, BURST + 3);
      expect(flooder.inbox.of('error').map((e) => e.code)).to.deep.equal(['RATE_LIMITED']);
      expect(await refusals(server, 'event_budget')).to.be.at.least(before + SENT - BURST - 3);
    });

    it('Socket.IO: events past the burst are dropped, their acks say RATE_LIMITED, one error event', async () => {
      const session = await createSession(server.url);
      const flooder = track(await joinSocket(server.url, { session_id: session.id, user_id: userId('flooder'), name: 'Flooder' }));
      const acks = await Promise.all(Array.from({ length: SENT }, (_, i) => sendWithAck(flooder, { message: `burst ${i}` }, 15_000)));
      const ok = acks.filter((a) => a.ok);
      expect(ok.length).to.be.within(BURST, BURST + 3);
      for (const refused of acks.filter((a) => !a.ok)) expect(refused.error.code).to.equal('RATE_LIMITED');
      expect((await flooder.inbox.waitFor('error')).code).to.equal('RATE_LIMITED');
      expect(flooder.inbox.of('error')).to.have.length(1);
    });
  });

  it('user_typing goes out at most once per 2 s per participant, from any of its connections', async () => {
    const session = await createSession(server.url);
    const observer = track(await joinSocket(server.url, { session_id: session.id, user_id: userId('observer'), name: 'Observer' }));
    const typist = userId('typist');
    const tabA = track(await RawClient.join(server.wsUrl, session.id, { user_id: typist, name: 'Typist' }));
    // A second tab proves it is the same participant with the token the first one was given.
    const token = tabA.inbox.of('session_joined')[0].token;
    const tabB = track(await joinSocket(server.url, { session_id: session.id, user_id: typist, name: 'Typist', token }));
    const throttledBefore = await refusals(server, 'typing_throttle');

    for (let i = 0; i < 10; i++) {
      tabA.send({ event: 'typing', data: {} });
      tabB.emit('typing', {});
    }
    // Each tab's message comes after its typing frames: once both are seen, every typing was handled.
    tabA.send({ event: 'send_message', data: { message: 'from tab A' } });
    const fromB = await sendWithAck(tabB, { message: 'from tab B' });
    await observer.inbox.waitFor('message_received', (m) => m.message === 'from tab A');
    await observer.inbox.waitFor('message_received', (m) => m.id === fromB.id);
    expect(observer.inbox.of('user_typing')).to.deep.equal([{ id: typist, name: 'Typist' }]);
    expect(await refusals(server, 'typing_throttle')).to.equal(throttledBefore + 19);

    // Two seconds after the first, the next one goes out.
    const first = observer.inbox.arrivalOf('user_typing');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, first + 2100 - Date.now())));
    tabA.send({ event: 'typing', data: {} });
    await observer.inbox.waitForCount('user_typing', 2);
  });
});

describe('connection caps', function () {
  this.timeout(30_000);
  let redis: RedisHandle;
  let nodeA: TestServer;
  let nodeB: TestServer;
  const open: Client[] = [];
  const track = <T extends Client>(c: T) => (open.push(c), c);
  const ADDRESS_CAP = 6;

  before(async () => {
    redis = await startRedis();
    const env = { MAX_CONNECTIONS_PER_ADDRESS: String(ADDRESS_CAP) };
    [nodeA, nodeB] = await Promise.all([startTestServer({ redisUrl: redis.url, env: { ...env, NODE_ID: 'caps-a' } }), startTestServer({ redisUrl: redis.url, env: { ...env, NODE_ID: 'caps-b' } })]);
  });
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });
  after(async () => {
    await Promise.all([nodeA?.close(), nodeB?.close()]);
    await redis?.stop();
  });

  /** A raw join refused with an error frame and a close code: both, or what came instead. */
  async function rawRefusal(server: TestServer, sessionId: string, identity: Record<string, unknown>): Promise<{ code: number; error: string }> {
    const client = track(await RawClient.connect(server.wsUrl, sessionId));
    client.send(identity);
    const { code } = await client.closed;
    return { code, error: client.inbox.of('error')[0]?.code };
  }

  it('refuses a sixth connection of one participant, counted across nodes (RATE_LIMITED, raw 4029)', async () => {
    const session = await createSession(nodeA.url);
    const id = userId('tabs');
    const before = await refusals(nodeB, 'connections_per_participant');
    const observer = track(await joinSocket(nodeA.url, { session_id: session.id, name: 'Observer' }));
    const first = track(await RawClient.join(nodeA.wsUrl, session.id, { user_id: id, name: 'Many Tabs' }));
    // Every further tab proves it is the same participant with the token the first was given.
    const tab = { user_id: id, name: 'Many Tabs', token: first.inbox.of('session_joined')[0].token };
    for (let i = 0; i < 2; i++) track(await RawClient.join(nodeA.wsUrl, session.id, tab));
    for (let i = 0; i < 2; i++) track(await joinSocket(nodeB.url, { session_id: session.id, ...tab }));

    expect(await rawRefusal(nodeB, session.id, tab)).to.deep.equal({ code: 4029, error: 'RATE_LIMITED' });
    const refused = await joinSocket(nodeA.url, { session_id: session.id, ...tab }).catch((err) => err.refusal);
    expect(refused).to.deep.include({ message: 'RATE_LIMITED' });
    expect(refused.data.code).to.equal('RATE_LIMITED');
    expect(await refusals(nodeB, 'connections_per_participant')).to.equal(before + 1);
    // The participant is still there, once, and another participant is welcome.
    expect(observer.inbox.of('user_left')).to.deep.equal([]);
    track(await RawClient.join(nodeB.wsUrl, session.id, { user_id: userId('other'), name: 'Other' }));
  });

  it('refuses a connection past MAX_CONNECTIONS_PER_ADDRESS on a node, both transports, until one closes', async () => {
    const session = await createSession(nodeA.url);
    const before = await refusals(nodeA, 'connections_per_address');
    // Raw connections that have not identified yet count too.
    const idle: RawClient[] = [];
    for (let i = 0; i < ADDRESS_CAP - 2; i++) idle.push(track(await RawClient.connect(nodeA.wsUrl, session.id)));
    track(await joinSocket(nodeA.url, { session_id: session.id, name: 'One' }));
    track(await RawClient.join(nodeA.wsUrl, session.id, { name: 'Two' }));

    const raw = track(await RawClient.connect(nodeA.wsUrl, session.id));
    expect((await raw.closed).code).to.equal(4029);
    expect(raw.inbox.of('error')[0].code).to.equal('RATE_LIMITED');
    const refused = await joinSocket(nodeA.url, { session_id: session.id, name: 'Three' }).catch((err) => err.refusal);
    expect(refused.data.code).to.equal('RATE_LIMITED');
    expect(await refusals(nodeA, 'connections_per_address')).to.equal(before + 2);
    // Another node counts its own.
    track(await joinSocket(nodeB.url, { session_id: session.id, name: 'Elsewhere' }));

    idle[0].close();
    await idle[0].closed;
    // The slot is given back when the server sees the close: the next join may race it once.
    let joined: TestSocket | null = null;
    for (let attempt = 0; attempt < 50 && !joined; attempt++) {
      joined = await joinSocket(nodeA.url, { session_id: session.id, name: 'Four' }).catch(() => null);
      if (!joined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(joined, 'a join once a slot is free').to.not.equal(null);
    track(joined!);
  });
});

describe('pongs nobody asked for', () => {
  let server: TestServer;
  let clients: Client[] = [];
  const track = <T extends Client>(c: T) => (clients.push(c), c);
  before(async () => {
    server = await startTestServer({ env: { WS_PING_INTERVAL_MS: '300' } });
  });
  after(async () => {
    for (const c of clients) c.close();
    clients = [];
    await server?.close();
  });

  it('raw: the connection is dropped at the next ping (only a pong echoing the ping counts)', async () => {
    const session = await createSession(server.url);
    const before = await refusals(server, 'missed_pong');
    const watcher = track(await RawClient.join(server.wsUrl, session.id, { user_id: userId('watcher'), name: 'Watcher' }));
    const faker = track(await RawClient.connect(server.wsUrl, session.id, { autoPong: false }));
    faker.send({ user_id: 'faker', name: 'Fake Pongs' });
    await faker.inbox.waitFor('session_joined');
    // Pongs of its own every 50 ms, never an answer to the server's pings (every 300 ms).
    const pongs = setInterval(() => faker.ws.readyState === WebSocket.OPEN && faker.ws.pong(Buffer.from('alive')), 50);
    try {
      expect((await watcher.inbox.waitFor('user_left', (u) => u.id === 'faker', 10_000)).id).to.equal('faker');
    } finally {
      clearInterval(pongs);
    }
    expect(watcher.ws.readyState).to.equal(WebSocket.OPEN);
    expect(await refusals(server, 'missed_pong')).to.be.above(before);
  });

  it('Socket.IO: the connection is closed (engine.io would put off its pings for it)', async () => {
    const session = await createSession(server.url);
    const before = await refusals(server, 'unsolicited_pong');
    const watcher = track(await RawClient.join(server.wsUrl, session.id, { user_id: userId('watcher'), name: 'Watcher' }));
    const faker = track(await joinSocket(server.url, { session_id: session.id, user_id: 'sio-faker', name: 'Fake Pongs' }));
    (faker.io.engine as any)._sendPacket('pong');
    expect((await watcher.inbox.waitFor('user_left', (u) => u.id === 'sio-faker', 10_000)).id).to.equal('sio-faker');
    expect(await faker.inbox.waitFor('disconnect')).to.equal('transport close');
    expect(await refusals(server, 'unsolicited_pong')).to.equal(before + 1);
  });
});

describe('a node whose clients never read', function () {
  this.timeout(90_000);
  const NEVER_READ = 10;
  const TYPING_FRAMES = 100_000;
  const MAX_RSS_GROWTH = 64 * 1024 * 1024;
  let node: NodeHandle;
  const clients: RawClient[] = [];

  before(async () => {
    node = await startNode({
      env: { NODE_ENV: 'test', LOG_LEVEL: 'warn', DATABASE_URL: (await sharedPostgres()).url, JWT_SECRET: 'limits-test-secret-0123456789abcdef0123', SPIRIT_ORACLE_DELAY_MS: '0' },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await node?.stop();
  });

  it('keeps its memory bounded: 10 raw clients that never read, 100,000 typing frames from one sender', async () => {
    const wsUrl = node.url.replace('http', 'ws');
    const session = await createSession(node.url, { max_users: 12 });
    for (let i = 0; i < NEVER_READ; i++) {
      const client = await RawClient.join(wsUrl, session.id, { user_id: `stalled-${i}`, name: `Stalled ${i}` });
      clients.push(client);
      tcpOf(client).pause();
    }
    const sender = await RawClient.join(wsUrl, session.id, { user_id: 'typist', name: 'Typist' });
    clients.push(sender);
    sender.send({ event: 'send_message', data: { message: 'warming up' } });
    await sender.inbox.waitFor('message_received');

    const baseline = rssBytes(node.pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(node.pid))), 50);
    const started = Date.now();
    try {
      const frame = JSON.stringify({ event: 'typing', data: {} });
      const deadline = started + 40_000;
      for (let sent = 0; sent < TYPING_FRAMES && Date.now() < deadline;) {
        for (const end = Math.min(TYPING_FRAMES, sent + 2000); sent < end; sent++) sender.ws.send(frame);
        while (sender.ws.bufferedAmount > 256 * 1024 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // Once the budget has room again, a message goes through: every typing frame before it was handled.
      let marked = false;
      sender.inbox
        .waitFor('message_received', (m) => m.message === 'done typing', 40_000)
        .then(
          () => (marked = true),
          () => undefined,
        );
      for (let attempt = 0; attempt < 40 && !marked; attempt++) {
        sender.send({ event: 'send_message', data: { message: 'done typing' } });
        await sender.inbox.waitFor('message_received', (m) => m.message === 'done typing', 1000).catch(() => undefined);
      }
      expect(marked, 'the marker message after the flood').to.equal(true);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`        RSS ${(baseline / 2 ** 20).toFixed(0)} MiB before, peak ${(peak / 2 ** 20).toFixed(0)} MiB, over ${seconds.toFixed(1)} s`);
    expect(peak - baseline, 'RSS growth in bytes').to.be.below(MAX_RSS_GROWTH);
    // The sender heard of its overspending at most once a second.
    const limited = sender.inbox.of('error').filter((e) => e.code === 'RATE_LIMITED').length;
    expect(limited).to.be.within(1, Math.ceil(seconds) + 1);
    const samples = await scrape(node.url);
    expect(valueOf(samples, 'seance_client_refusals_total', { rule: 'event_budget' })).to.be.above(TYPING_FRAMES - 1000);
  });

  it('still exits 0 within a few seconds of SIGTERM: clients that never take the close do not hold the drain', async () => {
    // The raw clients above are still connected and paused; a Socket.IO websocket client joins them.
    const session = await createSession(node.url);
    const stalled = await joinSocket(node.url, { session_id: session.id, user_id: 'sio-stalled', name: 'Stalled' }, { transports: ['websocket'] });
    tcpOf(stalled).pause();
    const started = Date.now();
    node.kill('SIGTERM');
    const code = await node.exited;
    stalled.close();
    expect(code, node.logTail(15)).to.equal(0);
    // The close grace (1.5 s) and the rest of the drain, far below the hard exit at 10 s.
    expect(Date.now() - started).to.be.below(6000);
  });
});
