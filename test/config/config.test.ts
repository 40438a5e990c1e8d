import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CONFIG_VARIABLES, ConfigError, loadConfig, SHUTDOWN_CLOSE_MARGIN_MS } from '../../config';
import { signingSecret } from '../../server/auth/secret';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const PROJECT_ROOT = ROOT;
const SECRET = 'c'.repeat(32);

describe('config', () => {
  it('works with no configuration at all: port 8000, SQLite under ./data, no Redis, oracle', () => {
    const config = loadConfig({});
    expect(config.port).to.equal(8000);
    expect(config.database.dialect).to.equal('sqlite');
    expect(config.database.storage).to.equal(path.join(ROOT, 'data', 'seance.sqlite'));
    expect(config.redis).to.equal(null);
    expect(config.spirit.provider).to.equal('oracle');
    expect(config.auth).to.include({ jwtAlgorithm: 'HS256', accessTokenExpireMinutes: 30, requireAuth: false });
    expect(config.limits).to.include({ messagesPerWindow: 10, messageWindowSeconds: 10 });
    expect(config.database).to.include({ poolSize: 20, poolOverflow: 10 });
  });

  it('lets the hard exit follow SHUTDOWN_TIMEOUT_MS, so every accepted timeout is waited for in full', () => {
    for (const timeout of [100, 8000, 60000]) {
      const config = loadConfig({ SHUTDOWN_TIMEOUT_MS: String(timeout) });
      expect(config.shutdownTimeoutMs).to.equal(timeout);
      expect(config.hardExitMs, `SHUTDOWN_TIMEOUT_MS=${timeout}`).to.equal(timeout + SHUTDOWN_CLOSE_MARGIN_MS);
    }
    expect(loadConfig({}).hardExitMs, 'the default still exits within a 10 s grace period').to.be.at.most(10_000);
  });

  it('reads sslmode and sslrootcert out of DATABASE_URL (Sequelize would drop them) and PGSSLROOTCERT', () => {
    // A PostgreSQL URL makes a cluster node, which needs a shared secret.
    const CLUSTER_SECRET = 'a-shared-secret-of-the-cluster-0123';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-ca-'));
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n');
    try {
      const plain = loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: 'postgres://u:p@db:5432/seance' });
      expect(plain.database).to.include({ url: 'postgres://u:p@db:5432/seance', tls: null });
      const disabled = loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: 'postgres://u:p@db:5432/seance?sslmode=disable' });
      expect(disabled.database).to.include({ url: 'postgres://u:p@db:5432/seance', tls: null });
      const required = loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: 'postgres://u:p@db:5432/seance?sslmode=require&application_name=x' });
      expect(required.database.url).to.equal('postgres://u:p@db:5432/seance?application_name=x');
      expect(required.database.tls).to.deep.equal({ mode: 'require', ca: null, caFile: null });
      const full = loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: 'postgres://u:p@db:5432/seance?sslmode=verify-full', PGSSLROOTCERT: caFile });
      expect(full.database.tls).to.deep.include({ mode: 'verify-full', caFile });
      expect(full.database.tls!.ca).to.include('BEGIN CERTIFICATE');
      const inUrl = loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: `postgres://u:p@db:5432/seance?sslmode=verify-ca&sslrootcert=${encodeURIComponent(caFile)}` });
      expect(inUrl.database.tls).to.deep.include({ mode: 'verify-ca', caFile });
      expect(() => loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: 'postgres://u:p@db/seance?sslmode=sometimes' })).to.throw(
        ConfigError,
        /sslmode must be one of disable, require, verify-ca, verify-full/,
      );
      expect(() => loadConfig({ JWT_SECRET: CLUSTER_SECRET, DATABASE_URL: 'postgres://u:p@db/seance?sslmode=verify-full', PGSSLROOTCERT: path.join(dir, 'missing.pem') })).to.throw(
        ConfigError,
        /PGSSLROOTCERT: cannot read .*missing\.pem \(ENOENT\)/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is frozen all the way down', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.database)).to.equal(true);
    expect(Object.isFrozen(config.spirit.gemini)).to.equal(true);
  });

  it('reads every documented variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      NODE_ID: 'node-7',
      DATABASE_URL: 'postgres://u:p@db:5432/seance',
      REDIS_URL: 'redis://cache:6379',
      CORS_ORIGINS: '["http://a.test","http://b.test:3000"]',
      JWT_SECRET: 'x'.repeat(32),
      JWT_ALGORITHM: 'HS512',
      ACCESS_TOKEN_EXPIRE_MINUTES: '5',
      REQUIRE_AUTH: 'true',
      SPIRIT_PROVIDER: 'openai',
      OPENAI_BASE_URL: 'http://llm.local/v1/',
      MESSAGE_RATE_LIMIT: '3',
    });
    expect(config).to.deep.include({ port: 9000, host: '127.0.0.1', nodeId: 'node-7', redis: { mode: 'single', url: 'redis://cache:6379' } });
    expect(config.database.dialect).to.equal('postgres');
    expect(config.corsOrigins).to.deep.equal(['http://a.test', 'http://b.test:3000']);
    expect(config.auth).to.include({ jwtAlgorithm: 'HS512', accessTokenExpireMinutes: 5, requireAuth: true });
    expect(config.spirit.openai.baseUrl).to.equal('http://llm.local/v1');
    expect(config.limits.messagesPerWindow).to.equal(3);
  });

  it('reaches Redis through Sentinel or a Redis Cluster', () => {
    const sentinel = loadConfig({
      REDIS_SENTINELS: 'sentinel-1:26379, sentinel-2:26379,[::1]:26380',
      REDIS_SENTINEL_NAME: 'seance',
      REDIS_SENTINEL_PASSWORD: 'watch',
      REDIS_PASSWORD: 'data',
      JWT_SECRET: SECRET,
    });
    expect(sentinel.redis).to.deep.equal({
      mode: 'sentinel',
      sentinels: [
        { host: 'sentinel-1', port: 26379 },
        { host: 'sentinel-2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'seance',
      sentinelPassword: 'watch',
      password: 'data',
    });
    const cluster = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001', JWT_SECRET: SECRET });
    expect(cluster.redis).to.deep.equal({
      mode: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      password: null,
    });
  });

  it('takes one way to Redis at a time, and says what each one is missing', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ JWT_SECRET: SECRET, ...env });
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' })).to.deep.equal([
      'Set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got REDIS_URL, REDIS_CLUSTER_NODES)',
    ]);
    expect(problems({ REDIS_SENTINELS: 'a:26379', REDIS_URL: 'redis://a', REDIS_CLUSTER_NODES: 'b:7000' })[0]).to.match(/Set only one of .*got REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/);
    expect(problems({ REDIS_SENTINELS: 'a:26379' })).to.deep.equal(['REDIS_SENTINELS needs REDIS_SENTINEL_NAME (the master name the sentinels monitor)']);
    expect(problems({ REDIS_URL: 'redis://a:6379', REDIS_SENTINEL_NAME: 'x', REDIS_PASSWORD: 'p' })).to.have.members([
      'REDIS_SENTINEL_NAME needs REDIS_SENTINELS',
      'REDIS_PASSWORD goes with REDIS_SENTINELS or REDIS_CLUSTER_NODES (with REDIS_URL, put it in the URL: redis://:PASSWORD@host:6379)',
    ]);
    const bad = problems({ REDIS_CLUSTER_NODES: 'a:7000,b', PORT: 'x' }).join('\n');
    expect(bad).to.include('REDIS_CLUSTER_NODES must be a comma-separated list of host:port');
    expect(bad).to.include('PORT');
    expect(problems({ REDIS_CLUSTER_NODES: 'a:70000' })).to.deep.equal(['REDIS_CLUSTER_NODES: port of a must be 1-65535']);
  });

  it('lists every problem in one error', () => {
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', JWT_ALGORITHM: 'none', CORS_ORIGINS: 'not an origin', SPIRIT_PROVIDER: 'gemini' });
      expect.fail('should have thrown');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      for (const name of ['PORT', 'DATABASE_URL', 'JWT_ALGORITHM', 'CORS_ORIGINS', 'GOOGLE_API_KEY']) expect(problems).to.include(name);
    }
  });

  it('refuses production without a JWT secret, or with a short one', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).to.throw(ConfigError, /JWT_SECRET is required/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short' })).to.throw(ConfigError, /too short/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'y'.repeat(32) }).auth.jwtSecret).to.have.length(32);
  });

  it('refuses a node configured for a cluster without JWT_SECRET, in every NODE_ENV, naming what makes it one', () => {
    const clusters = [{ REDIS_URL: 'redis://r:6379' }, { REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }, { REDIS_CLUSTER_NODES: 'a:7000' }, { DATABASE_URL: 'postgres://u:p@db:5432/seance' }];
    for (const env of clusters) {
      for (const NODE_ENV of ['development', 'test', 'production']) {
        const expected = NODE_ENV === 'production' ? /JWT_SECRET is required in production/ : new RegExp(`JWT_SECRET is required on a node configured for a cluster \\(${Object.keys(env)[0]}`);
        expect(() => loadConfig({ ...env, NODE_ENV }), `${JSON.stringify(env)} ${NODE_ENV}`).to.throw(ConfigError, expected);
      }
      expect(loadConfig({ ...env, JWT_SECRET: SECRET }).auth).to.include({ jwtSecret: SECRET, jwtSecretFile: null });
    }
  });

  it('lets a single node with the embedded database keep its own secret beside its data (none printed anywhere)', () => {
    const single = loadConfig({ DATABASE_URL: 'sqlite:/var/lib/seance/db.sqlite' });
    expect(single.auth).to.include({ jwtSecret: null, jwtSecretFile: '/var/lib/seance/db.sqlite.jwt-secret' });
    expect(loadConfig({}).auth.jwtSecretFile).to.equal(path.join(ROOT, 'data', 'seance.sqlite.jwt-secret'));
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:' }).auth).to.include({ jwtSecret: null, jwtSecretFile: null });
    // A short secret is refused in production only; given, it is used as it is.
    expect(loadConfig({ JWT_SECRET: 'short' }).auth.jwtSecret).to.equal('short');
  });

  it('makes a random secret on first start, kept owner-only beside the SQLite file, the same after a restart', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-secret-'));
    try {
      const auth = loadConfig({ DATABASE_URL: `sqlite:${path.join(dir, 'data', 'db.sqlite')}` }).auth;
      const first = signingSecret(auth);
      expect(first).to.have.length.of.at.least(32);
      expect(fs.statSync(auth.jwtSecretFile!).mode & 0o777).to.equal(0o600);
      expect(signingSecret(auth)).to.equal(first);
      fs.chmodSync(auth.jwtSecretFile!, 0o644);
      expect(signingSecret(auth)).to.equal(first);
      expect(fs.statSync(auth.jwtSecretFile!).mode & 0o777, 'a loosened mode is tightened again').to.equal(0o600);
      const other = loadConfig({ DATABASE_URL: `sqlite:${path.join(dir, 'other.sqlite')}` }).auth;
      expect(signingSecret(other), 'another database, another secret').not.to.equal(first);
      expect(signingSecret({ jwtSecret: null, jwtSecretFile: null })).not.to.equal(signingSecret({ jwtSecret: null, jwtSecretFile: null }));
      fs.writeFileSync(auth.jwtSecretFile!, 'tiny');
      expect(() => signingSecret(auth)).to.throw(/damaged/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start a real process configured for a cluster without JWT_SECRET, in development too', async () => {
    const entry = path.join(ROOT, 'dist', 'server', 'index.js');
    for (const env of [{ REDIS_URL: 'redis://127.0.0.1:1' }, { DATABASE_URL: 'postgres://u:p@127.0.0.1:1/seance' }]) {
      const result = await run(process.execPath, [entry], { env: { PATH: process.env.PATH, NODE_ENV: 'development', ...env }, timeout: 10_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/Invalid configuration:\n {2}- JWT_SECRET is required on a node configured for a cluster/);
    }
  });

  it('stops the production server at start with one clear message', async () => {
    // The source entry, through tsx: the unit tier runs without a build.
    const entry = path.join(ROOT, 'server', 'index.ts');
    const result = await run(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env: { PATH: process.env.PATH, NODE_ENV: 'production', JWT_SECRET: 'weak' }, timeout: 25_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/Invalid configuration:\n {2}- JWT_SECRET is too short for production/);
    expect(result.stderr).not.to.include('weak');
  });
});

describe('.env.example', () => {
  const lines = fs.readFileSync(path.join(PROJECT_ROOT, '.env.example'), 'utf8').split('\n');
  const entries = lines
    .map((line, index) => ({ match: /^#?\s?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line), index }))
    .filter((e) => e.match !== null)
    .map((e) => ({ name: e.match![1], value: e.match![2], index: e.index }));

  it('lists exactly the variables the config reads, each once', () => {
    const names = entries.map((e) => e.name);
    expect(new Set(names).size, 'a variable listed twice').to.equal(names.length);
    expect([...names].sort()).to.deep.equal([...CONFIG_VARIABLES].sort());
  });

  it('says what each one does in a comment above it', () => {
    for (const { name, index } of entries) {
      let above = index - 1;
      while (above >= 0 && /^#?\s?[A-Z][A-Z0-9_]*=/.test(lines[above])) above -= 1;
      expect(lines[above] ?? '', name).to.match(/^# \S/);
    }
  });

  it('shows the default the config applies', () => {
    const defaults = loadConfig({});
    const shown = Object.fromEntries(entries.map((e) => [e.name, e.value]));
    expect(shown.PORT).to.equal(String(defaults.port));
    expect(shown.SESSION_IDLE_TIMEOUT_MINUTES).to.equal('1440');
    expect(shown.SPIRIT_BREAKER_FAILURES).to.equal(String(defaults.spirit.breakerFailures));
    expect(shown.SPIRIT_BREAKER_COOLDOWN_MS).to.equal(String(defaults.spirit.breakerCooldownMs));
    expect(shown.BEHIND_TLS).to.equal(String(defaults.behindTls));
    expect(shown.ACCESS_TOKEN_EXPIRE_MINUTES).to.equal(String(defaults.auth.accessTokenExpireMinutes));
  });
});
