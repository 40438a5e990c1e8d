/**
 * The Docker image, built from the repository's Dockerfile and run as an operator would run
 * it: `docker run` with no configuration serves the embedded default (SQLite, one node, a
 * random JWT secret kept beside the data), as `npm start` does, as a non-root user, and `docker stop` drains its connections
 * and ends it with exit 0 well before Docker's SIGKILL. Needs a Docker engine (CI installs
 * docker.io and starts one); skipped, with the reason, where none can run.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import { DockerUnavailable, inspectContainer, type DockerEngine } from '../../harness/docker';
import { freePort } from '../../harness/ports';
import { waitUntil } from '../../harness/processes';
import { RawClient, http, joinSocket } from '../support/clients';
import { appImage, dockerEngine, imageSize, standInBase } from '../support/docker';

/** What the app (its node_modules, dist, public, migrations) may add to its Node base image. */
const MAX_APP_LAYERS_MB = 160;
/** `docker stop` must see the process gone within this: Docker's own SIGKILL comes at 10 s. */
const STOP_WITHIN_MS = 10_000;

describe('Docker image', function () {
  this.timeout(60_000);
  let engine: DockerEngine;
  let image: string;
  const containers: string[] = [];
  const name = (what: string) => {
    const n = `seance-image-${what}-${crypto.randomBytes(3).toString('hex')}`;
    containers.push(n);
    return n;
  };

  before(async function () {
    // A cold build (stand-in base, npm ci, sqlite3 compiled from source) takes minutes on 2 cores.
    this.timeout(1_500_000);
    try {
      engine = await dockerEngine();
      image = await appImage();
    } catch (err) {
      if (!(err instanceof DockerUnavailable)) throw err;
      console.log(`      skipped: ${err.message}`);
      this.skip();
    }
  });

  after(async function () {
    this.timeout(60_000);
    if (engine && containers.length) await engine.docker(['rm', '--force', ...containers]).catch(() => undefined);
  });

  it(`adds at most ${MAX_APP_LAYERS_MB} MB to its Node base image`, async () => {
    const [app, base] = await Promise.all([imageSize(image), imageSize(await standInBase())]);
    const mb = (bytes: number) => Math.round(bytes / 1e6);
    console.log(`      image ${mb(app)} MB: the stand-in Node base ${mb(base)} MB + the app ${mb(app - base)} MB`);
    expect(mb(app - base)).to.be.below(MAX_APP_LAYERS_MB);
  });

  it('refuses to start with NODE_ENV=production and no JWT_SECRET, saying so in one line', async () => {
    const failure = await engine.docker(['run', '--rm', '--name', name('nosecret'), '--env', 'NODE_ENV=production', image], { timeoutMs: 60_000 }).then(
      (out) => new Error(`started without a secret:\n${out}`),
      (err: Error) => err,
    );
    expect(failure.message).to.match(/failed \(exit 1\)/);
    expect(failure.message).to.include('JWT_SECRET is required in production');
    expect(failure.message, 'a stack trace').not.to.match(/\n\s+at /);
  });

  describe('run with no configuration at all', () => {
    let container: string;
    let url: string;

    before(async function () {
      if (!engine) this.skip();
      const port = await freePort();
      container = name('alone');
      url = `http://127.0.0.1:${port}`;
      // As `npm start` on a laptop: one node, SQLite, and a random JWT secret kept beside the data.
      await engine.docker(['run', '--detach', '--name', container, '--publish', `127.0.0.1:${port}:8000`, image]);
      await waitUntil('the container serving /health', async () => (await fetch(`${url}/health`).catch(() => null))?.status === 200, { timeoutMs: 45_000, intervalMs: 250 });
    });

    it('runs as a non-root user', async () => {
      const status = await engine.docker(['exec', container, 'cat', '/proc/1/status']);
      const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
      expect(uid, 'the server process (PID 1) runs as root').to.be.a('string').and.not.equal('0');
    });

    it('serves the embedded default: SQLite in /app/data, no Redis, a session to join and chat in', async () => {
      const health = await http(url, 'GET', '/health');
      expect(health.status).to.equal(200);
      expect(health.body).to.include({ database: 'connected', redis: 'disabled' });

      const created = await http(url, 'POST', '/api/sessions', { json: { name: 'In a container' } });
      expect(created.status).to.equal(201);
      const sessionId = created.body.data.id as string;
      const raw = await RawClient.join(url.replace(/^http/, 'ws'), sessionId, { user_id: 'ann', name: 'Ann' });
      const socket = await joinSocket(url, { session_id: sessionId, user_id: 'bob', name: 'Bob' });
      try {
        socket.emit('send_message', { message: 'is anyone there?' });
        const seen = await raw.inbox.waitFor('message_received', (m: { message?: string }) => m.message === 'is anyone there?', 10_000);
        expect(seen.seq).to.equal(1);
      } finally {
        raw.close();
        socket.close();
      }
      // The database file is the app user's, in the one directory it may write.
      expect((await engine.docker(['exec', container, 'stat', '--format', '%U', 'data/seance.sqlite'])).trim()).to.equal('node');
    });

    it(`drains its connections and exits 0 within ${STOP_WITHIN_MS / 1000} s of docker stop`, async () => {
      const sessionId = (await http(url, 'POST', '/api/sessions', { json: { name: 'Closing time' } })).body.data.id as string;
      const raw = await RawClient.join(url.replace(/^http/, 'ws'), sessionId, { user_id: 'ann', name: 'Ann' });
      const socket = await joinSocket(url, { session_id: sessionId, user_id: 'bob', name: 'Bob' });
      try {
        const started = Date.now();
        // Docker's default grace is 10 s too; a longer one here lets a slow exit show as slow rather than as a SIGKILL.
        await engine.docker(['stop', '--time', '20', container], { timeoutMs: 30_000 });
        const tookMs = Date.now() - started;
        const state = await inspectContainer(engine, container);
        const logs = await engine.docker(['logs', '--tail', '20', container]);
        expect(state.exitCode, logs).to.equal(0);
        expect(tookMs, logs).to.be.below(STOP_WITHIN_MS);
        expect(logs).to.include('shut down cleanly');
        // Both were told to go elsewhere before the process went: 1012 (service restart) and a transport close.
        expect((await raw.closed).code).to.equal(1012);
        expect(await socket.inbox.waitFor('disconnect', () => true, 1_000)).to.equal('transport close');
      } finally {
        raw.close();
        socket.close();
      }
    });
  });
});
