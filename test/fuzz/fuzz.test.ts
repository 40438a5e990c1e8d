/**
 * Fuzz: thousands of generated bad inputs against one live node process (PostgreSQL, Redis),
 * on REST, Socket.IO (through the client and packet by hand) and raw /ws frames, with valid
 * messages interleaved. Afterwards the process must be alive and healthy, its memory bounded,
 * its log free of unhandled errors, and every session's history must hold exactly the
 * messages the server said it accepted, each of them valid.
 *
 * Inputs come from a seeded PRNG: the seed is printed, and FUZZ_SEED=<seed> replays a run
 * exactly. FUZZ_SCALE multiplies the case counts (0.2 for a quick try, 5 for a soak).
 * FUZZ_REPORT=<file> appends every finding, with its input, as JSON lines. A fixed corpus
 * (inputs that found bugs) runs first on every seed.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { startNode, type NodeHandle } from '../../harness/node';
import { redisPing, startRedis, type RedisHandle } from '../../harness/redis';
import { http, joinSocket, RawClient, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { sharedPostgres } from '../support/hooks';
import { describe as show, HttpFuzzClient, isAlive, rssBytes } from './drivers';
import { fuzzScale, fuzzSeed, Rng } from './generators';
import { corpusRawFrames, corpusSioCases, runEio, runNameCorpus, runRawFrames, runRawJoins, runSocketEvents, runSocketHandshakes } from './realtime';
import { historyMessageProblems } from './reference';
import { corpusRestCases, restCases, runPolling, runRawHttp, runRest, runStoredNameCorpus } from './rest';
import { Findings, Ledger, realSessions, type World } from './world';

const JWT_SECRET = 'fuzz-suite-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const MAX_RSS_GROWTH = 150 * 1024 * 1024;
const MAX_HISTORY_PAGES = 500;

describe('fuzz: hostile input against a live node', function () {
  this.timeout(60_000);
  const seed = fuzzSeed();
  const scale = fuzzScale();
  const root = new Rng(seed);
  const scaled = (base: number) => Math.max(1, Math.round(base * scale));

  let redis: RedisHandle | undefined;
  let node: NodeHandle | undefined;
  let world: World;
  let exitedWith: string | null = null;
  let baselineRss = 0;
  const startedAt = Date.now();
  const timings: Record<string, number> = {};

  async function timed(label: string, work: () => Promise<unknown>): Promise<void> {
    const t0 = Date.now();
    try {
      await work();
    } finally {
      timings[label] = Date.now() - t0;
    }
  }

  before(async function () {
    this.timeout(90_000);
    console.log(`      fuzz seed ${seed} (replay with FUZZ_SEED=${seed}), scale ${scale}`);
    const pg = await sharedPostgres();
    redis = await startRedis();
    node = await startNode({
      env: {
        DATABASE_URL: pg.url,
        REDIS_URL: redis.url,
        NODE_ID: 'fuzz-node',
        LOG_LEVEL: 'error',
        JWT_SECRET,
        SPIRIT_PROVIDER: 'oracle',
        SPIRIT_ORACLE_DELAY_MS: '0',
        MESSAGE_RATE_LIMIT: '100000',
        CLIENT_EVENT_RATE: '1000000',
        CONNECT_RATE_LIMIT: '1000000',
        SESSION_CREATE_RATE_LIMIT: '1000000',
      },
    });
    void node.exited.then((code) => (exitedWith = String(code)));
    const url = node.url;

    const session = () => createSession(url, { max_users: 12 });
    const [eventSessions, handshakeSessions, decoys, ended] = await Promise.all([
      Promise.all([session(), session(), session(), session()]),
      Promise.all([session(), session()]),
      Promise.all([session(), session()]),
      session(),
    ]);
    const ending = await http(url, 'DELETE', `/api/sessions/${ended.id}`, { headers: { authorization: `Bearer ${ended.creator_token}` } });
    expect(ending.status, ending.text).to.equal(200);
    const guest = await Promise.all(
      [0, 1, 2].map(async (k) => {
        const reply = await http(url, 'POST', '/api/auth/token', { json: { name: `Fuzz Guest ${k}` } });
        expect(reply.status, reply.text).to.equal(201);
        return reply.body.data.access_token as string;
      }),
    );

    world = {
      node,
      wsUrl: url.replace(/^http/, 'ws'),
      http: new HttpFuzzClient(node.port),
      eventSessions: eventSessions.map((s) => s.id),
      handshakeSessions: handshakeSessions.map((s) => s.id),
      decoySessions: decoys.map((s) => s.id),
      endedSession: ended.id,
      kit: { secret: JWT_SECRET, guest, creatorOfOthers: decoys.map((s) => s.creator_token) },
      findings: new Findings(),
      ledger: new Ledger(),
      counts: {},
    };

    // Warm every path once (lazy modules, pools, JIT) so the memory baseline is a fair one.
    const warm = await joinSocket(url, { session_id: world.eventSessions[0], name: 'Warm Up', user_id: 'warm-up' });
    const ack = await sendWithAck(warm, { message: 'warming the board' });
    expect(ack.ok, show(ack)).to.equal(true);
    world.ledger.record({ id: ack.id, session_id: world.eventSessions[0], message: 'warming the board', user_name: 'Warm Up' });
    const raw = await RawClient.join(world.wsUrl, world.eventSessions[1], { user_id: 'warm-raw', name: 'Warm Raw' });
    raw.send({ event: 'send_message', data: { message: 'warming the planchette' } });
    world.ledger.record(await raw.inbox.waitFor('message_received'));
    warm.close();
    raw.close();
    baselineRss = rssBytes(node.pid);
  });

  after(async function () {
    this.timeout(60_000);
    world?.http.close();
    await node?.stop();
    await redis?.destroy();
    const total = Object.values(world?.counts ?? {}).reduce((a, b) => a + b, 0);
    console.log(`      fuzz: ${total} inputs in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (seed ${seed})`);
    for (const [surface, n] of Object.entries(world?.counts ?? {})) console.log(`        ${surface}: ${n} inputs${timings[surface] ? `, ${(timings[surface] / 1000).toFixed(1)} s` : ''}`);
  });

  it("corpus: fixed hostile inputs that found bugs or sit on the contract's edges, on every seed", async () => {
    await timed('corpus', async () => {
      await runRest(world, corpusRestCases(world), 8, 'corpus');
      await runSocketEvents(world, root, 1, 0, { surface: 'corpus', fixed: corpusSioCases() });
      await runRawFrames(world, root, 1, 0, { surface: 'corpus', fixed: corpusRawFrames() });
      await runNameCorpus(world);
      await runStoredNameCorpus(world);
    });
    world.findings.assertNone('corpus', seed);
  });

  it('REST: junk bodies, ids, queries and headers get a 4xx envelope, never a 500 or a stack', async () => {
    await timed('rest', async () => {
      const stats = await runRest(world, restCases(world, root.fork('rest'), scaled(1500)), 12);
      console.log(`        REST statuses ${JSON.stringify(stats.byStatus)}; refused by Node's HTTP parser: ${stats.parserRefusals}`);
    });
    world.findings.assertNone('rest', seed);
  });

  it('HTTP: requests no client would send get a 4xx or a closed connection', async () => {
    await timed('raw-http', () => runRawHttp(world, root.fork('raw-http'), 1));
    world.findings.assertNone('raw-http', seed);
  });

  it('Engine.IO long-polling: junk sids, queries and payloads never get a 500', async () => {
    await timed('polling', () => runPolling(world, root.fork('polling'), scaled(60)));
    world.findings.assertNone('polling', seed);
  });

  it('Socket.IO handshakes: junk auth gets a connect_error with a contract code', async () => {
    await timed('socket.io handshake', () => runSocketHandshakes(world, root.fork('handshakes'), scaled(300), 8));
    world.findings.assertNone('socket.io handshake', seed);
  });

  it('Socket.IO events: junk payloads, unknown events, binary and oversized frames on joined sockets', async () => {
    await timed('socket.io events', () => runSocketEvents(world, root.fork('sio-events'), 6, scaled(120)));
    world.findings.assertNone('socket.io events', seed);
  });

  it('Socket.IO packets written by hand: malformed, truncated, deep, binary, before and after joining', async () => {
    await timed('engine.io packets', () => runEio(world, root.fork('eio'), scaled(300), 6));
    world.findings.assertNone('engine.io packets', seed);
  });

  it('raw /ws identification: junk first frames and paths get an error frame and the right close code', async () => {
    await timed('raw ws identification', () => runRawJoins(world, root.fork('raw-joins'), scaled(300), 8));
    world.findings.assertNone('raw ws identification', seed);
  });

  it('raw /ws frames: junk, deep, binary, invalid UTF-8 and near-16 KiB frames on joined connections', async () => {
    await timed('raw ws frames', () => runRawFrames(world, root.fork('raw-frames'), 6, scaled(150)));
    world.findings.assertNone('raw ws frames', seed);
  });

  it('afterwards: the node is alive and serving, memory is bounded, the log is clean, history holds only accepted messages', async () => {
    const n = node!;
    expect(exitedWith, `the node exited (${exitedWith}):\n${n.logTail(60)}`).to.equal(null);
    expect(isAlive(n.pid), 'the node process is gone').to.equal(true);
    const health = await http(n.url, 'GET', '/health');
    expect(health.status, health.text).to.equal(200);
    expect(health.body).to.include({ status: 'healthy', database: 'connected', redis: 'connected' });
    expect(await redisPing(redis!.port), 'redis-server answers PING').to.equal(true);

    // Still serving end to end on both transports (and no prototype got poisoned on the way).
    const fresh = await createSession(n.url);
    const sio = await joinSocket(n.url, { session_id: fresh.id, name: 'Canary', user_id: 'canary' });
    const raw = await RawClient.join(world.wsUrl, fresh.id, { user_id: 'canary-raw', name: 'Canary Raw' });
    try {
      expect(raw.inbox.of('session_joined')[0].you).to.include({ id: 'canary-raw', name: 'Canary Raw' });
      const ack = await sendWithAck(sio, { message: 'is anyone still there?' });
      expect(ack.ok, show(ack)).to.equal(true);
      const seen = await raw.inbox.waitFor('message_received', (m) => m.id === ack.id);
      expect(seen).to.include({ user_id: 'canary', user_name: 'Canary', message: 'is anyone still there?' });
      world.ledger.record(seen);
    } finally {
      sio.close();
      raw.close();
    }
    const refused = await http(n.url, 'POST', '/api/sessions', { json: {} });
    expect(refused.status, refused.text).to.equal(400);

    const rss = rssBytes(n.pid);
    console.log(`        RSS ${(baselineRss / 2 ** 20).toFixed(0)} MiB before the fuzz, ${(rss / 2 ** 20).toFixed(0)} MiB after`);
    expect(rss - baselineRss, 'RSS growth in bytes').to.be.below(MAX_RSS_GROWTH);

    const log = fs.readFileSync(n.logFile, 'utf8').split('\n');
    const unhandled = log.filter((line) => /unhandled|uncaught/i.test(line));
    expect(unhandled, 'unhandled errors in the node log').to.deep.equal([]);
    for (const line of log) {
      let entry: { level?: number; msg?: string; err?: { message?: string }; path?: string; status?: number } | null = null;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = null;
      }
      if (entry && typeof entry.level === 'number' && entry.level >= 50) {
        world.findings.add(
          'afterwards',
          0,
          line.slice(0, 600),
          `error logged: ${entry.msg}${entry.err?.message ? `: ${entry.err.message}` : ''}${entry.path ? ` (${entry.status} ${entry.path})` : ''}`,
        );
      }
    }

    const sessions = new Set([...realSessions(world), ...world.ledger.sessions]);
    let checked = 0;
    for (const sessionId of sessions) {
      const found = new Map<string, { message: string; user_name: string | null }>();
      let before: string | null = null;
      for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
        const reply = await http(n.url, 'GET', `/api/sessions/${sessionId}/history?limit=100${before ? `&before=${before}` : ''}`);
        expect(reply.status, reply.text).to.equal(200);
        for (const m of reply.body.data) {
          checked++;
          for (const p of historyMessageProblems(m, sessionId)) world.findings.add('afterwards', checked, m, `invalid message in history (${p}) of session ${sessionId}`);
          if (m.is_spirit === false) found.set(String(m.id), { message: m.message, user_name: m.user_name });
        }
        before = reply.body.meta.next_cursor;
        if (before === null) break;
      }
      const accepted = world.ledger.of(sessionId);
      // Equal, or equal once lone surrogates read as U+FFFD (UTF-8 cannot carry them).
      const same = (stored: string | null, sent: string | null) => stored === sent || (stored !== null && sent !== null && stored === Buffer.from(sent, 'utf8').toString('utf8'));
      for (const [id, stored] of found) {
        const sent = accepted.get(id);
        if (!sent) world.findings.add('afterwards', Number(id), stored, `history of ${sessionId} holds message ${id}, which was never acknowledged or broadcast as accepted`);
        else if (!same(stored.message, sent.message))
          world.findings.add('afterwards', Number(id), { broadcast: sent.message, history: stored.message }, 'history text differs from what message_received announced');
        else if (!same(stored.user_name, sent.user_name))
          world.findings.add('afterwards', Number(id), { broadcast: sent.user_name, history: stored.user_name }, 'history user_name differs from what message_received announced');
      }
      for (const [id, sent] of accepted) if (!found.has(id)) world.findings.add('afterwards', Number(id), sent, `accepted message ${id} is missing from the history of ${sessionId}`);
    }
    console.log(`        history: ${checked} stored messages checked in ${sessions.size} sessions`);
    world.findings.assertNone('afterwards', seed);
  });
});
