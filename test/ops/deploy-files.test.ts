/**
 * The deployment files, checked without a Docker engine (none runs on these machines):
 * the compose file is parsed and its scaling rules asserted, the Dockerfile and Procfile
 * read, and the shipped nginx.conf rendered for loopback and given to `nginx -t`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import Redis from 'ioredis';
import { loadConfig } from '../../config';
import { checkNginxConfig, findNginx, renderNginxConfig } from '../../harness/nginx';
import { freePort } from '../../harness/ports';
import { startRedis } from '../../harness/redis';
import { PROJECT_ROOT, findExecutable, makeTempDir, removeTempDir, spawnLogged, stopProcess, waitUntil } from '../../harness/processes';

const read = (file: string) => fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  ports?: Array<string | { published?: string | number; target?: number }>;
  expose?: Array<string | number>;
  environment?: Record<string, string> | string[];
  healthcheck?: { test?: string | string[] };
  depends_on?: string[] | Record<string, { condition?: string }>;
  restart?: string;
  volumes?: unknown[];
  container_name?: string;
}

describe('deployment files', () => {
  describe('docker-compose.yml', () => {
    // ${VAR:?message} and ${VAR:-default} stay literal strings: only compose interpolates them.
    // `merge` resolves the `<<: *app-env` keys as compose does (YAML 1.2 dropped them).
    const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
    const { services } = compose;
    const env = (name: string) => (services[name].environment ?? {}) as Record<string, string>;
    const dependsOn = (name: string) => (services[name].depends_on ?? {}) as Record<string, { condition?: string }>;

    it('has postgres, redis, migrate, app and nginx', () => {
      expect(services).to.include.all.keys('postgres', 'redis', 'migrate', 'app', 'nginx');
      expect(services.postgres.image).to.match(/^postgres:16/);
      expect(services.redis.image).to.match(/^redis:7/);
      expect(services.nginx.image).to.match(/^nginx:1\.27/);
    });

    it('lets postgres accept the connections of ten app replicas at the default pool (20 + 10 each)', () => {
      const setting = [services.postgres.command].flat().join(' ').match(/max_connections=(\d+)/);
      expect(Number(setting?.[1] ?? 100)).to.be.at.least(10 * 30);
    });

    it('gives postgres and redis healthchecks', () => {
      expect(String(services.postgres.healthcheck?.test)).to.include('pg_isready');
      expect(String(services.redis.healthcheck?.test)).to.include('ping');
    });

    it('lets app scale: no fixed host port, exposes 8000, has a healthcheck', () => {
      const app = services.app;
      expect(app.ports ?? [], 'a host port would collide between replicas').to.have.length(0);
      expect((app.expose ?? []).map(String)).to.include('8000');
      expect(app.build).to.exist;
      expect(app.container_name, 'a fixed container name allows one replica only').to.equal(undefined);
      expect(String(app.healthcheck?.test)).to.include('/health');
    });

    it('configures app for the cluster and refuses to run without a JWT secret', () => {
      const e = env('app');
      expect(e.DATABASE_URL).to.match(/^postgres:\/\/.+@postgres:5432\//);
      expect(e.REDIS_URL).to.equal('redis://redis:6379');
      expect(e.NODE_ENV).to.equal('production');
      expect(e.MIGRATE_ON_START).to.equal('false');
      expect(e.JWT_SECRET).to.match(/^\$\{JWT_SECRET:\?.+\}$/);
      expect(e.CORS_ORIGINS).to.match(/^\$\{CORS_ORIGINS:-.+\}$/);
    });

    it('runs migrations once, before app starts', () => {
      const migrate = services.migrate;
      expect(migrate.restart).to.equal('no');
      expect([migrate.command].flat().join(' ')).to.include('sequelize-cli db:migrate');
      expect(env('migrate').DATABASE_URL).to.equal(env('app').DATABASE_URL);
      expect(dependsOn('migrate').postgres?.condition).to.equal('service_healthy');
      expect(dependsOn('app').migrate?.condition).to.equal('service_completed_successfully');
      expect(dependsOn('app').redis?.condition).to.equal('service_healthy');
    });

    it('publishes nginx on 8000 with the shipped nginx.conf', () => {
      const nginx = services.nginx;
      expect((nginx.ports ?? []).map(String)).to.include('8000:8000');
      expect((nginx.volumes ?? []).map(String)).to.include('./nginx.conf:/etc/nginx/nginx.conf:ro');
      expect(dependsOn('nginx')).to.have.property('app');
    });
  });

  describe('docker-compose.sentinel.yml (the Sentinel override)', () => {
    const base = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
    const override = parse(read('docker-compose.sentinel.yml'), { merge: true }) as { services: Record<string, ComposeService & { hostname?: string }> };
    const { services } = override;
    const sentinels = ['sentinel-1', 'sentinel-2', 'sentinel-3'];
    const script = (name: string) => [services[name].command].flat()[2] as string;

    it('adds a replica of the default redis and three sentinels watching it with quorum 2', () => {
      expect(services).to.include.all.keys('redis', 'redis-replica', ...sentinels, 'app');
      expect([services['redis-replica'].command].flat().join(' ')).to.include('--replicaof redis 6379');
      for (const name of sentinels) {
        expect(services[name].hostname).to.equal(name);
        expect(script(name)).to.include('sentinel monitor seance redis 6379 2');
        expect(script(name)).to.include('exec redis-sentinel');
        expect(String(services[name].healthcheck?.test)).to.include('ping');
      }
    });

    it('points app at the sentinels instead of REDIS_URL, and the merged environment passes config validation', () => {
      const appEnv = { ...(base.services.app.environment as Record<string, string>), ...(services.app.environment as Record<string, string>) };
      expect(appEnv.REDIS_SENTINELS.split(',')).to.deep.equal(sentinels.map((s) => `${s}:26379`));
      for (const name of [...sentinels, 'redis-replica']) expect(dependsOn(name)).to.deep.equal({ condition: 'service_healthy' });
      // Compose's defaults (${VAR:-default}) as an unset shell would leave them.
      const interpolated = Object.fromEntries(Object.entries(appEnv).map(([k, v]) => [k, String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));
      const config = loadConfig({ ...interpolated, JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://u:p@postgres:5432/seance' });
      expect(config.redis).to.deep.include({ mode: 'sentinel', name: 'seance' });
      function dependsOn(name: string) {
        return ((services.app.depends_on ?? {}) as Record<string, { condition?: string }>)[name];
      }
    });

    it('starts a real redis-sentinel from its command, as compose runs it', async function () {
      this.timeout(20_000);
      const binary = findExecutable('redis-sentinel', ['/usr/bin', '/usr/local/bin']);
      if (!binary) this.skip(); // CI installs it (.ci/run).
      const redis = await startRedis();
      const dir = makeTempDir('seance-sentinel-conf-');
      const port = await freePort();
      // What compose hands the shell ($$ is its escape for $), pointed at loopback and a temp dir.
      const shell = script('sentinel-1')
        .replace(/\$\$/g, '$')
        .replaceAll('/tmp/sentinel.conf', path.join(dir, 'sentinel.conf'))
        .replace('port 26379', `port ${port}`)
        .replace('seance redis 6379', `seance 127.0.0.1 ${redis.port}`)
        .replace('exec redis-sentinel', `exec ${binary}`);
      const proc = spawnLogged('sh', ['-c', shell], { cwd: dir, logFile: path.join(dir, 'sentinel.log') });
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 100 });
      client.on('error', () => undefined);
      try {
        await waitUntil(
          'sentinel names the master',
          async () => {
            const addr = (await client.call('SENTINEL', 'get-master-addr-by-name', 'seance').catch(() => null)) as string[] | null;
            return addr?.[1] === String(redis.port);
          },
          { timeoutMs: 10_000, proc, logFile: path.join(dir, 'sentinel.log') },
        );
      } finally {
        client.disconnect();
        await stopProcess(proc, 'SIGTERM', 5_000);
        await redis.destroy();
        await removeTempDir(dir);
      }
    });
  });

  describe('Dockerfile', () => {
    const dockerfile = read('Dockerfile');
    const instructions = dockerfile
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));

    it('builds in stages and runs the server as a non-root user', () => {
      const stages = instructions.filter((l) => /^FROM\s/i.test(l));
      expect(stages.length).to.be.at.least(2);
      const users = instructions.filter((l) => /^USER\s/i.test(l));
      expect(users, 'a USER instruction').to.not.be.empty;
      expect(users.at(-1)).to.not.match(/^USER\s+(root|0)(:|$)/i);
      expect(instructions).to.include('CMD ["node", "dist/server/index.js"]');
      expect(instructions).to.include('EXPOSE 8000');
    });

    it('is fed by a .dockerignore that keeps node_modules and dist out', () => {
      const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
      expect(ignored).to.include.members(['node_modules', 'dist', '.git']);
    });
  });

  describe('Procfile', () => {
    it('declares a web process and a release phase for migrations', () => {
      const entries = Object.fromEntries(
        read('Procfile')
          .split('\n')
          .filter((l) => l.includes(':'))
          .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      expect(entries.web).to.equal('node dist/server/index.js');
      expect(entries.release).to.include('sequelize-cli db:migrate');
    });
  });

  describe('nginx.conf', () => {
    const conf = read('nginx.conf');
    const uncommented = conf.replace(/#[^\n]*/g, '');

    it('is sticky by full client address (raw ws by session) and upgrades both websocket paths', () => {
      expect(uncommented).to.match(/hash \$seance_balance_key consistent;/);
      const key = /map \$uri \$seance_balance_key \{([^}]*)\}/.exec(uncommented);
      expect(key, 'the map that picks the hash key').to.not.equal(null);
      expect(key![1]).to.match(/default\s+\$remote_addr;/);
      expect(key![1]).to.include('"~^/ws/([^/]+)/?$"');
      expect(uncommented).not.to.match(/\bip_hash\b/);
      expect(uncommented).to.match(/server app:8000 [^;]*max_fails=1/);
      for (const location of ['/socket.io/', '/ws/']) {
        const block = new RegExp(`location ${location.replace(/[/.]/g, '\\$&')} \\{([^}]*)\\}`).exec(uncommented);
        expect(block, location).to.not.equal(null);
        expect(block![1]).to.match(/proxy_read_timeout 75s;/);
        expect(block![1]).to.match(/proxy_buffering off;/);
      }
      expect(uncommented).to.match(/proxy_set_header Upgrade\s+\$http_upgrade;/);
      expect(uncommented).to.match(/proxy_set_header Connection\s+\$connection_upgrade;/);
      expect(uncommented).to.match(/proxy_next_upstream error timeout;/);
    });

    it('passes `nginx -t` once rendered for loopback', async function () {
      if (!findNginx()) this.skip(); // CI installs nginx (.ci/run); only a bare laptop skips.
      const workDir = makeTempDir('seance-nginx-t-');
      try {
        const file = path.join(workDir, 'nginx.conf');
        const port = await freePort();
        fs.writeFileSync(file, renderNginxConfig({ listenPort: port, upstreams: ['127.0.0.1:8001', '127.0.0.1:8002'], workDir }));
        expect(await checkNginxConfig(file)).to.include('test is successful');
      } finally {
        await removeTempDir(workDir);
      }
    });
  });
});
