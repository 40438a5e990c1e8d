/**
 * @seance/client (the built package, as an application installs it) against 3 nodes behind
 * nginx, on both transports: the application sees every stored message once and in `seq`
 * order although the node serving it is SIGKILLed mid-conversation; a second tab comes in
 * as the same participant with the token the first one kept; every refusal and every
 * rejected send arrives as a typed SeanceError.
 */
import { randomUUID } from 'node:crypto';
import { connect, SeanceError, type ConnectOptions, type RoomEvents, type SeanceMessage, type SeanceRoom } from '@seance/client';
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import type { NodeHandle } from '../../harness/node';
import { http } from '../support/clients';
import { createSession, wholeHistory } from '../support/factories';
import { sharedPostgres } from '../support/hooks';
import { startTestServer } from '../support/server';

const TRANSPORTS = ['socket.io', 'ws'] as const;

/** Resolves once `check()` holds, looking again after each of the room's `events`; fails loudly after `ms`. */
function until(room: SeanceRoom, events: Array<keyof RoomEvents>, check: () => boolean, what: string, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = [];
    const done = (err?: Error) => {
      clearTimeout(timer);
      offs.forEach((off) => off());
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    for (const event of events) offs.push(room.on(event, () => check() && done()));
    if (check()) done();
  });
}

/** What the application was handed, in the order it was handed. */
function record(room: SeanceRoom): SeanceMessage[] {
  const seen: SeanceMessage[] = [];
  room.on('message', (m) => seen.push(m));
  return seen;
}

async function refusalOf(room: SeanceRoom): Promise<SeanceError> {
  const heard = new Promise<SeanceError>((resolve) => room.on('refused', resolve));
  const err = await room.ready.then(
    () => expect.fail('the join was accepted'),
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(SeanceError);
  expect(await heard).to.equal(err);
  expect(room.status).to.equal('closed');
  return err as SeanceError;
}

describe('@seance/client against 3 nodes behind nginx', function () {
  this.timeout(90_000);
  let cluster: ClusterHandle;
  const killed = new Set<NodeHandle>();
  const rooms: SeanceRoom[] = [];
  const open = (options: ConnectOptions) => {
    const room = connect(options);
    rooms.push(room);
    return room;
  };

  before(async () => {
    cluster = await startCluster({ nodes: 3, postgres: await sharedPostgres(), env: { SPIRIT_ORACLE_DELAY_MS: '50', MESSAGE_RATE_LIMIT: '1000' } });
  });
  afterEach(() => {
    while (rooms.length) rooms.pop()!.close();
  });
  after(async () => cluster?.stop());

  /** The node nginx sends a session's connections to. */
  async function nodeServing(sessionId: string): Promise<NodeHandle> {
    const reply = await http(cluster.url, 'GET', `/health?session_id=${sessionId}`);
    return cluster.nodes.find((n) => n.nodeId === reply.body.node_id)!;
  }

  for (const transport of TRANSPORTS) {
    it(`${transport}: hands every stored message once, in seq order, across a SIGKILL of its node mid-conversation`, async () => {
      const session = await createSession(cluster.url);
      const alice = open({ url: cluster.url, sessionId: session.id, name: 'Alice', transport });
      const seen = record(alice);
      const joins: boolean[] = [];
      alice.on('joined', (j) => joins.push(j.resumed));
      await alice.ready;
      const serving = await nodeServing(session.id);
      // Bob talks straight to another live node, so he keeps talking while Alice's node is dead.
      const other = cluster.nodes.find((n) => n !== serving && !killed.has(n))!;
      const bob = open({ url: other.url, sessionId: session.id, name: 'Bob' });
      const bobSaw = record(bob);
      await bob.ready;

      const mine = await alice.send('Alice, before');
      await until(alice, ['message'], () => seen.some((m) => m.is_spirit && m.in_reply_to === mine.id), "the spirit's answer to Alice");

      const sentByBob: number[] = [];
      let killedAfter = 0;
      const talk = (async () => {
        for (let i = 1; i <= 10; i++) {
          sentByBob.push((await bob.send(`Bob ${i}`)).id);
          if (i === 3) {
            serving.kill('SIGKILL');
            killed.add(serving);
            killedAfter = sentByBob.length;
          }
        }
      })();
      await serving.exited;
      await talk;
      expect(killedAfter).to.equal(3);
      await until(alice, ['joined'], () => joins.length >= 2, "Alice's rejoin");
      expect(joins.slice(1).every((resumed) => resumed)).to.equal(true);
      expect((await nodeServing(session.id)).nodeId).to.not.equal(serving.nodeId);
      const after = await alice.send('Alice, after');

      // Everything is said once each answer is in (Bob's node answered all of his).
      const asked = [mine.id, ...sentByBob, after.id];
      await until(bob, ['message'], () => asked.every((id) => bobSaw.some((m) => m.in_reply_to === id)), 'every answer');
      const history = await wholeHistory(other.url, session.id);
      const lastSeq = history[history.length - 1].seq;
      await until(alice, ['message'], () => alice.lastSeq === lastSeq, `Alice at seq ${lastSeq}`);

      expect(seen.map((m) => m.seq)).to.deep.equal(history.map((m) => m.seq));
      expect(seen.map((m) => m.id)).to.deep.equal(history.map((m) => m.id));
      expect(seen.map((m) => m.message)).to.deep.equal(history.map((m) => m.message));
      expect(history.map((m) => m.seq)).to.deep.equal(Array.from({ length: history.length }, (_, i) => i + 1));
      expect(seen.filter((m) => m.user_name === 'Bob').map((m) => m.message)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `Bob ${i + 1}`));
    });
  }

  it('lets a second tab in as the same participant with the token the first one kept', async () => {
    const session = await createSession(cluster.url);
    const auth = (await http(cluster.url, 'POST', '/api/auth/token', { json: { name: 'Dana' } })).body.data;
    const first = open({ url: cluster.url, sessionId: session.id, name: 'Dana', userId: auth.user.id, token: auth.access_token });
    const firstJoin = await first.ready;
    expect(first.token).to.be.a('string');
    expect(first.token).to.equal(firstJoin.token);
    const eve = open({ url: cluster.url, sessionId: session.id, name: 'Eve', transport: 'ws' });
    const arrivals: string[] = [];
    eve.on('user_joined', (p) => arrivals.push(p.id));
    const eveSaw = record(eve);
    await eve.ready;

    const second = open({ url: cluster.url, sessionId: session.id, name: 'Dana', userId: first.me!.id, token: first.token, transport: 'ws' });
    const secondJoin = await second.ready;
    expect(secondJoin.you.id).to.equal(first.me!.id);
    const sent = await second.send('From the other tab');
    await until(eve, ['message'], () => eveSaw.some((m) => m.id === sent.id), "Eve's copy");
    expect(eveSaw.find((m) => m.id === sent.id)!.user_id).to.equal(first.me!.id);
    // The same participant: nobody heard of a new arrival.
    expect(arrivals.filter((id) => id === first.me!.id)).to.deep.equal([]);
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: turns every refused join into a SeanceError with the contract's code`, async () => {
      const url = cluster.url;
      const cases: Array<[string, ConnectOptions]> = [];
      cases.push(['VALIDATION_ERROR', { url, sessionId: (await createSession(url)).id, name: '   ', transport }]);
      cases.push(['SESSION_NOT_FOUND', { url, sessionId: randomUUID(), name: 'Nobody', transport }]);
      const ended = await createSession(url);
      await http(url, 'DELETE', `/api/sessions/${ended.id}`, { headers: { authorization: `Bearer ${ended.creator_token}` } });
      cases.push(['SESSION_INACTIVE', { url, sessionId: ended.id, name: 'Late', transport }]);
      cases.push(['UNAUTHORIZED', { url, sessionId: (await createSession(url)).id, name: 'Forger', userId: 'forger', token: 'not-a-token', transport }]);
      const small = await createSession(url, { max_users: 2 });
      for (const name of ['One', 'Two']) await open({ url, sessionId: small.id, name, transport }).ready;
      cases.push(['SESSION_FULL', { url, sessionId: small.id, name: 'Three', transport }]);
      // Naming a participant who is connected right now, without their token.
      const taken = await createSession(url);
      const holder = open({ url, sessionId: taken.id, name: 'Holder', transport });
      await holder.ready;
      cases.push(['USER_ID_TAKEN', { url, sessionId: taken.id, name: 'Impostor', userId: holder.me!.id, transport }]);

      for (const [code, options] of cases) {
        const err = await refusalOf(open(options));
        expect({ kind: err.kind, code: err.code }, code).to.deep.equal({ kind: 'refused', code });
        expect(err.message).to.be.a('string').and.not.equal('');
      }
    });

    it(`${transport}: rejects a send the server refuses with a typed error, and goes on`, async () => {
      const room = open({ url: cluster.url, sessionId: (await createSession(cluster.url)).id, name: 'Fay', transport });
      await room.ready;
      for (const [text, code] of [
        ['   ', 'EMPTY_MESSAGE'],
        ['x'.repeat(501), 'MESSAGE_TOO_LONG'],
      ]) {
        const err = await room.send(text).then(
          () => expect.fail('the send was accepted'),
          (e: unknown) => e as SeanceError,
        );
        expect(err).to.be.instanceOf(SeanceError);
        expect({ kind: err.kind, code: err.code }).to.deep.equal({ kind: 'rejected', code });
      }
      const sent = await room.send('Still here');
      expect(sent.seq).to.equal(1);
    });
  }

  it('turns a rate-limited join into a SeanceError (RATE_LIMITED) on both transports', async () => {
    const server = await startTestServer({ database: 'sqlite', env: { CONNECT_RATE_LIMIT: '2' } });
    try {
      const session = await createSession(server.url);
      for (const name of ['One', 'Two']) await open({ url: server.url, sessionId: session.id, name }).ready;
      for (const transport of TRANSPORTS) {
        const err = await refusalOf(open({ url: server.url, sessionId: session.id, name: 'Three', transport }));
        expect({ kind: err.kind, code: err.code }).to.deep.equal({ kind: 'refused', code: 'RATE_LIMITED' });
      }
    } finally {
      while (rooms.length) rooms.pop()!.close();
      await server.close();
    }
  });
});
