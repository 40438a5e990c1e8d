/**
 * The compose topology, run for real with `docker run` (compose v2 is not installable here):
 * one user network, PostgreSQL and Redis (stand-ins from Debian packages), the migrate job,
 * three app containers answering to the alias `app`, and the shipped nginx.conf in an nginx
 * container in front, each with the environment, command and healthcheck docker-compose.yml
 * gives it. Through nginx, a Socket.IO client and a raw client on different app containers
 * chat; then the app containers are replaced one at a time (start the new one, wait until it
 * is healthy, `docker stop` the old, reload nginx) while clients chat, and the chaos checker
 * finds nothing lost, repeated or out of order. Skipped, with the reason, without Docker.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import { check } from '../../chaos/check';
import { RawClient as ChaosRawClient, SocketIoClient, type ChaosClient, type ClientSpec } from '../../chaos/clients';
import { readHistory, type StoredMessage } from '../../chaos/history';
import { DockerUnavailable, inspectContainer, waitHealthy, type DockerEngine } from '../../harness/docker';
import { freePort } from '../../harness/ports';
import { waitUntil } from '../../harness/processes';
import { RawClient, http, joinSocket } from '../support/clients';
import { bindMountFlags, commandArgs, environmentFlags, healthFlags, readCompose, stopFlags } from '../support/compose';
import { appImage, dockerEngine, servicesImage } from '../support/docker';

const services = readCompose();
/** Generous: three containers start at once on a loaded 2-core machine. */
const HEALTHY_WITHIN_MS = 120_000;

/** The app containers nginx sent six requests with this query to (by the session in it, else by the client address). */
async function nodesFor(url: string, query = ''): Promise<Set<string>> {
  const nodes = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const res = await http(url, 'GET', `/health${query}`);
    if (res.status !== 200) throw new Error(`GET /health${query}: ${res.status}`);
    nodes.add(res.body.node_id as string);
  }
  return nodes;
}

describe('compose topology in Docker', function () {
  this.timeout(60_000);
  const tag = crypto.randomBytes(3).toString('hex');
  const network = `seance-topology-${tag}`;
  /** The shell environment compose would read the file with. */
  const vars = { JWT_SECRET: crypto.randomBytes(32).toString('hex') };
  let engine: DockerEngine;
  let app: string;
  let stand: string;
  let url: string;
  const containers: string[] = [];
  let appCount = 0;
  const apps: string[] = [];

  const run = async (service: string, name: string, image: string, extra: string[], command: string[]) => {
    containers.push(name);
    const config = services[service];
    await engine.docker([
      'run',
      '--detach',
      '--name',
      name,
      '--network',
      network,
      '--network-alias',
      service,
      ...environmentFlags(config, vars),
      ...healthFlags(config),
      ...stopFlags(config),
      ...extra,
      image,
      ...command,
    ]);
  };
  const startApp = async () => {
    const name = `seance-topology-${tag}-app-${++appCount}`;
    await run('app', name, app, [], commandArgs(services.app));
    return name;
  };

  before(async function () {
    this.timeout(1_500_000);
    try {
      engine = await dockerEngine();
      [app, stand] = await Promise.all([appImage(), servicesImage()]);
    } catch (err) {
      if (!(err instanceof DockerUnavailable)) throw err;
      console.log(`      skipped: ${err.message}`);
      this.skip();
    }
    this.timeout(HEALTHY_WITHIN_MS * 3);
    await engine.docker(['network', 'create', network]);
    await run('postgres', `seance-topology-${tag}-postgres`, stand, [], commandArgs(services.postgres));
    await run('redis', `seance-topology-${tag}-redis`, stand, [], commandArgs(services.redis));
    await Promise.all(['postgres', 'redis'].map((s) => waitHealthy(engine, `seance-topology-${tag}-${s}`, HEALTHY_WITHIN_MS)));

    // The one-shot migration must finish with 0 before any replica starts.
    const migrate = services.migrate;
    await engine.docker(['run', '--rm', '--network', network, ...environmentFlags(migrate, vars), app, ...commandArgs(migrate)], { timeoutMs: HEALTHY_WITHIN_MS });

    for (let i = 0; i < 3; i++) apps.push(await startApp());
    await Promise.all(apps.map((name) => waitHealthy(engine, name, HEALTHY_WITHIN_MS)));

    const port = await freePort();
    const target = String(services.nginx.ports?.[0] ?? '8000:8000')
      .split(':')
      .at(-1);
    await run('nginx', `seance-topology-${tag}-nginx`, stand, [...bindMountFlags(services.nginx), '--publish', `127.0.0.1:${port}:${target}`], ['nginx', '-g', 'daemon off;']);
    url = `http://127.0.0.1:${port}`;
    await waitUntil('nginx in front of the app containers', async () => (await fetch(`${url}/health`).catch(() => null))?.status === 200, { timeoutMs: 30_000, intervalMs: 250 });
  });

  after(async function () {
    this.timeout(120_000);
    if (!engine) return;
    if (containers.length) await engine.docker(['rm', '--force', '--volumes', ...containers], { timeoutMs: 60_000 }).catch(() => undefined);
    await engine.docker(['network', 'rm', network]).catch(() => undefined);
  });

  it('keeps each client on one app container, and a Socket.IO client and a raw client on different ones chat', async () => {
    // Socket.IO clients that name no session are placed by their address, raw ones by the session in the path.
    const byAddress = await nodesFor(url);
    expect([...byAddress], 'requests from one address went to several containers').to.have.length(1);
    const [socketNode] = byAddress;
    let sessionId = '';
    for (let attempt = 0; attempt < 30 && !sessionId; attempt++) {
      const id = (await http(url, 'POST', '/api/sessions', { json: { name: `Across ${attempt}` } })).body.data.id as string;
      const bySession = await nodesFor(url, `?session_id=${id}`);
      expect([...bySession], `requests for one session went to several containers`).to.have.length(1);
      if (!bySession.has(socketNode)) sessionId = id;
    }
    expect(sessionId, "every session landed on the Socket.IO client's container").to.not.equal('');

    const raw = await RawClient.join(url.replace(/^http/, 'ws'), sessionId, { user_id: 'ann', name: 'Ann' });
    const socket = await joinSocket(url, { session_id: sessionId, user_id: 'bob', name: 'Bob' });
    try {
      socket.emit('send_message', { message: 'from Socket.IO' });
      const first = await raw.inbox.waitFor('message_received', (m: { message?: string }) => m.message === 'from Socket.IO', 15_000);
      raw.send({ event: 'send_message', data: { message: 'from raw' } });
      const second = await socket.inbox.waitFor('message_received', (m: { message?: string }) => m.message === 'from raw', 15_000);
      expect([first.seq, second.seq]).to.deep.equal([1, 2]);
    } finally {
      raw.close();
      socket.close();
    }
  });

  it('replaces the app containers one at a time while clients chat: nothing lost, repeated or out of order', async function () {
    this.timeout(900_000);
    const t0 = Date.now();
    const clock = () => Date.now() - t0;
    const sessionIds: string[] = [];
    for (let s = 0; s < 3; s++) sessionIds.push((await http(url, 'POST', '/api/sessions', { json: { name: `Rolling ${s}` } })).body.data.id as string);
    const clients: ChaosClient[] = [];
    for (const sessionId of sessionIds) {
      for (const transport of ['sio', 'raw'] as const) {
        const index = clients.length;
        // One source address for everyone: nginx sees Docker's proxy anyway.
        const spec: ClientSpec = { index, transport, sessionId, userId: `rolling-${index}`, name: `Sitter ${index}`, url, localAddress: '127.0.0.1' };
        const behaviour = { resendUnconfirmed: true };
        clients.push(transport === 'raw' ? new ChaosRawClient(spec, clock, Math.random, behaviour) : new SocketIoClient(spec, clock, Math.random, behaviour));
      }
    }
    const waitAll = async (what: string, done: (c: ChaosClient) => boolean, timeoutMs: number) => {
      await Promise.all(clients.map((c) => c.waitFor(what, () => done(c), timeoutMs)));
    };
    const replaced: Array<{ name: string; exitCode: number; stopMs: number }> = [];
    try {
      for (const c of clients) c.start();
      await waitAll('first join', (c) => c.joined, 60_000);
      // No voluntary drops: the only disconnects are the replacements'. A message every 1.25-3.75 s
      // stays under the compose file's rate limit (MESSAGE_RATE_LIMIT, 10 in 10 s) with room for resends.
      for (const c of clients) c.startChatting({ messageEveryMs: 2500, dropEveryMs: Infinity, dropMaxMs: 1000 });
      await waitAll('a first acknowledged message', (c) => c.log.some((e) => e.type === 'ack'), 60_000);

      for (let i = 0; i < apps.length; i++) {
        const old = apps[i];
        apps[i] = await startApp();
        await waitHealthy(engine, apps[i], HEALTHY_WITHIN_MS);
        const stopping = Date.now();
        await engine.docker(['stop', old], { timeoutMs: 60_000 });
        replaced.push({ name: old, exitCode: (await inspectContainer(engine, old)).exitCode, stopMs: Date.now() - stopping });
        await engine.docker(['rm', old]);
        // nginx resolves `app` when it starts or reloads (see nginx.conf): now to the new container.
        await engine.docker(['exec', `seance-topology-${tag}-nginx`, 'nginx', '-s', 'reload']);
        await waitAll('rejoin after a replacement', (c) => c.joined, 90_000);
        const sentBefore = clients.map((c) => c.log.filter((e) => e.type === 'sent').length);
        await waitAll('chatting again', (c) => c.log.filter((e) => e.type === 'sent').length > sentBefore[clients.indexOf(c)], 60_000);
      }

      // Settle: quiet, everyone back, every message confirmed (resent where the node had refused it).
      for (const c of clients) c.stopChatting();
      await waitAll('rejoin', (c) => c.joined, 90_000);
      await waitAll('acknowledgements', (c) => c.unacknowledged === 0, 90_000);
      const history = new Map<string, StoredMessage[]>();
      let pagedBy = '';
      let previous = '';
      // The database is the truth: read it once late spirit answers stopped adding to it.
      await waitUntil(
        'history settled',
        async () => {
          for (const id of sessionIds) {
            const read = await readHistory(url, id);
            history.set(id, read.messages);
            pagedBy = read.pagedBy;
          }
          const now = [...history.values()].map((m) => m.length).join(',');
          const same = now === previous;
          previous = now;
          return same;
        },
        { timeoutMs: 60_000, intervalMs: 3_000 },
      );
      const lastOf = (id: string) => (history.get(id) ?? []).reduce((top, m) => Math.max(top, m.seq ?? 0), 0);
      await waitAll('catching up', (c) => (c.lastSeq ?? 0) >= lastOf(c.spec.sessionId), 60_000);

      const report = check({
        durationMs: clock(),
        clients: clients.map((c) => ({ spec: c.spec, log: [...c.log], connectedAtEnd: c.joined })),
        history,
        pagedBy,
        presence: [],
        exits: [],
        faults: [],
        startedAt: t0,
        answerDelayMs: 1500,
      });
      console.log(
        `      ${report.messages.sent} sent, ${report.messages.acknowledged} acknowledged, ${clients.flatMap((c) => c.log).filter((e) => e.type === 'resent').length} resent; ` +
          `${report.totals.joins} joins (${report.totals.resumed} resumed); old containers stopped in ${replaced.map((r) => `${(r.stopMs / 1000).toFixed(1)} s`).join(', ')}; ${(clock() / 1000).toFixed(0)} s`,
      );
      expect(report.failures).to.deep.equal([]);
      expect(report.messages.unconfirmed + report.messages.refused, 'messages never confirmed').to.equal(0);
      expect(report.messages.acknowledged).to.equal(report.messages.sent);
      // Every client was moved at least once (its container replaced), and came back where it left off.
      for (const row of report.perClient) expect(row.resumed, `client ${row.index} never resumed on another container`).to.be.at.least(1);
      expect(replaced.map((r) => r.exitCode)).to.deep.equal([0, 0, 0]);
    } finally {
      for (const c of clients) c.close();
    }
  });
});
