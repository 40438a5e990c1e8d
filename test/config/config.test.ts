import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../config';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const PROJECT_ROOT = ROOT;

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
    const cluster = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001' });
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
        loadConfig(env);
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
