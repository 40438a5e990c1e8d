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
import { PROJECT_ROOT, findExecutable, makeTempDir, removeTempDir, run, spawnLogged, stopProcess, waitUntil } from '../../harness/processes';
import { http } from '../support/clients';
import { scrape } from '../support/metrics';
import { startTestServer } from '../support/server';

const read = (file: string) => fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  ports?: Array<string | { published?: string | number; target?: number }>;
  expose?: Array<string | number>;
  environment?: Record<string, string> | string[];
  env_file?: Array<string | { path: string; required?: boolean }>;
  healthcheck?: { test?: string | string[] };
  depends_on?: string[] | Record<string, { condition?: string }>;
  restart?: string;
  volumes?: unknown[];
  container_name?: string;
  profiles?: string[];
}

/**
 * How `npm start` runs the server (node and any node flags): the image and the Procfile must
 * run it the same way, so a deployment behaves as the benchmarks measured.
 */
const NODE_COMMAND = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.replace(/^exec /, '');

/** The series names a real node's /metrics response has (after one request, which makes the labelled HTTP series appear). */
async function exposedSeries(): Promise<Set<string>> {
  const server = await startTestServer({ database: 'sqlite' });
  try {
    await http(server.url, 'GET', '/livez');
    return new Set((await scrape(server.url)).map((s) => s.name));
  } finally {
    await server.close();
  }
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
      const setting = [services.postgres.command]
        .flat()
        .join(' ')
        .match(/max_connections=(\d+)/);
      expect(Number(setting?.[1] ?? 100)).to.be.at.least(10 * 30);
    });

    it("believes nginx's X-Forwarded-For on the project's own network only", () => {
      const { networks } = compose as unknown as { networks?: { default?: { name?: string; ipam?: { config?: Array<{ subnet?: string }> } } } };
      const subnet = networks?.default?.ipam?.config?.[0]?.subnet;
      expect(networks?.default?.name).to.equal('seance');
      expect(subnet).to.match(/^172\.\d+\.\d+\.0\/24$/);
      expect(env('app').TRUST_PROXY).to.equal(subnet);
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
      expect(String(app.healthcheck?.test)).to.include('/readyz');
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

    it('runs the cluster without a profile, Prometheus and Grafana only in the `monitoring` profile', () => {
      for (const name of ['postgres', 'redis', 'migrate', 'app', 'nginx']) expect(services[name].profiles, name).to.equal(undefined);
      for (const name of ['prometheus', 'grafana']) expect(services[name].profiles, name).to.deep.equal(['monitoring']);
      expect(services.prometheus.image).to.match(/^prom\/prometheus:v\d/);
      expect(services.grafana.image).to.match(/^grafana\/grafana:\d/);
      expect((services.prometheus.volumes ?? []).map(String)).to.include('./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
      expect((services.grafana.volumes ?? []).map(String)).to.include.members([
        './monitoring/grafana/provisioning:/etc/grafana/provisioning:ro',
        './monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro',
      ]);
      for (const volume of [...(services.prometheus.volumes ?? []), ...(services.grafana.volumes ?? [])].map(String)) {
        const source = volume.split(':')[0];
        if (source.startsWith('./')) expect(fs.existsSync(path.join(PROJECT_ROOT, source)), source).to.equal(true);
      }
    });

    it('passes METRICS_TOKEN and ADMIN_UI_PASSWORD through to the replicas, unset by default', () => {
      expect(env('app').METRICS_TOKEN).to.equal('${METRICS_TOKEN:-}');
      expect(env('app').ADMIN_UI_PASSWORD).to.equal('${ADMIN_UI_PASSWORD:-}');
    });

    it('hands the replicas an optional .env for every other setting (.env.example lists them)', () => {
      expect(services.app.env_file).to.deep.equal([{ path: '.env', required: false }]);
      expect(read('.env.example')).to.include('SPIRIT_PROVIDER');
    });

    it('is what the README tells a newcomer to run', () => {
      expect(read('README.md')).to.include('docker compose --profile monitoring up -d --build --scale app=3');
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

  describe('monitoring/', () => {
    const yaml = (file: string): any => parse(read(file));

    it('has Prometheus find every app replica through Docker DNS', () => {
      const config = yaml('monitoring/prometheus.yml');
      const job = config.scrape_configs.find((j: any) => j.job_name === 'seance');
      expect(job.metrics_path ?? '/metrics').to.equal('/metrics');
      expect(job.dns_sd_configs).to.deep.equal([{ names: ['app'], type: 'A', port: 8000, refresh_interval: '15s' }]);
    });

    it('provisions Grafana with the Prometheus datasource and the dashboards folder', () => {
      const datasource = yaml('monitoring/grafana/provisioning/datasources/prometheus.yml').datasources[0];
      expect(datasource).to.include({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' });
      const provider = yaml('monitoring/grafana/provisioning/dashboards/seance.yml').providers[0];
      expect(provider.type).to.equal('file');
      expect(provider.options.path).to.equal('/var/lib/grafana/dashboards');
    });

    describe('alerts.yml', () => {
      const promtool = () => findExecutable('promtool', ['/usr/bin', '/usr/local/bin']);
      const rules = (yaml('monitoring/alerts.yml').groups as Array<{ rules: Array<{ alert: string; expr: string }> }>).flatMap((g) => g.rules);

      it('is loaded by the monitoring profile: rule_files of prometheus.yml, mounted beside it', () => {
        expect(yaml('monitoring/prometheus.yml').rule_files).to.deep.equal(['alerts.yml']);
        const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
        expect((compose.services.prometheus.volumes ?? []).map(String)).to.include('./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro');
      });

      it('alerts on a node down, Redis or the database down, errors, delivery p99, gap repairs and memory', () => {
        const exprOf = (alert: string) => rules.find((r) => r.alert === alert)?.expr ?? '';
        expect(exprOf('SeanceNodeDown')).to.include('up{job="seance"} == 0');
        expect(exprOf('SeanceRedisDown')).to.include('seance_degraded');
        expect(exprOf('SeanceDatabaseDown')).to.include('seance_database_up');
        expect(exprOf('SeanceHighErrorRate')).to.include('status=~"5.."');
        expect(exprOf('SeanceDeliveryP99High')).to.include('histogram_quantile(0.99');
        expect(exprOf('SeanceGapRepairs')).to.include('seance_gap_repairs_total');
        expect(exprOf('SeanceMemoryHigh')).to.include('process_resident_memory_bytes');
      });

      it('passes `promtool check rules`, its unit tests, and `promtool check config` with the scrape config', async function () {
        const binary = promtool();
        if (!binary) this.skip(); // CI installs Debian's prometheus package, which ships promtool (.ci/run).
        const cwd = path.join(PROJECT_ROOT, 'monitoring');
        expect(await run(binary, ['check', 'rules', 'alerts.yml'], { cwd })).to.match(/SUCCESS: 7 rules found/);
        expect(await run(binary, ['test', 'rules', 'alerts.test.yml'], { cwd })).to.include('SUCCESS');
        expect(await run(binary, ['check', 'config', 'prometheus.yml'], { cwd })).to.include('SUCCESS: 7 rules found');
      });

      it('names only series that a real /metrics response has', async () => {
        const exposed = await exposedSeries();
        for (const rule of rules) for (const name of seriesNames(rule.expr)) if (name !== 'up') expect(exposed, `${name} (in ${rule.alert})`).to.include(name);
      });
    });

    describe('the Grafana dashboard', () => {
      const dashboard = JSON.parse(read('monitoring/grafana/dashboards/seance.json')) as {
        uid: string;
        panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ expr: string; datasource: { uid: string } }> }>;
      };
      const queries = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

      it('is valid JSON with a panel for each thing an operator watches, all on the provisioned datasource', () => {
        expect(dashboard.uid).to.be.a('string');
        const titles = dashboard.panels.map((p) => p.title.toLowerCase());
        for (const topic of [
          'connections',
          'messages',
          'delivery',
          'spirit latency',
          'spirit failures',
          'rate limited',
          'gap repairs',
          'event-loop lag',
          'http requests',
          'http latency',
          'database pool',
          'memory',
          'cpu',
        ]) {
          expect(
            titles.some((t) => t.includes(topic)),
            topic,
          ).to.equal(true);
        }
        for (const panel of dashboard.panels) {
          expect(panel.datasource.uid, panel.title).to.equal('prometheus');
          expect(panel.targets, panel.title).to.not.be.empty;
          for (const target of panel.targets) expect(target.datasource.uid).to.equal('prometheus');
        }
      });

      it('names only series that a real /metrics response has', async () => {
        const exposed = await exposedSeries();
        const named = new Set(queries.flatMap(seriesNames));
        expect(named.size).to.be.at.least(10);
        // `up` is the one series Prometheus makes itself, per target.
        for (const name of named) if (name !== 'up') expect(exposed, `${name} (in the dashboard)`).to.include(name);
      });
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
      expect(instructions).to.include(`CMD ${JSON.stringify(NODE_COMMAND.split(' '))}`.replace(/","/g, '", "'));
      expect(instructions).to.include('EXPOSE 8000');
    });

    it('builds and runs on Node 24 LTS, as package.json engines says', () => {
      // Every stage on the base the NODE_IMAGE argument names, by default the official Node 24 image.
      const stages = instructions.filter((l) => /^FROM\s/i.test(l));
      for (const stage of stages) expect(stage).to.match(/^FROM \$\{NODE_IMAGE\} AS /);
      expect(instructions).to.include('ARG NODE_IMAGE=node:24-bookworm-slim');
      const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
      expect(pkg.engines.node).to.include('24');
    });

    it('is fed by a .dockerignore that keeps node_modules and dist out', () => {
      const ignored = read('.dockerignore')
        .split('\n')
        .map((l) => l.trim());
      expect(ignored).to.include.members(['node_modules', 'dist', '.git']);
      // Nothing that only the tests, the benchmark or the docs need goes into the image.
      expect(ignored).to.include.members(['bench', 'chaos', 'harness', 'test', 'test-artifacts', 'docs/*', '.ci']);
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
      expect(entries.web).to.equal(NODE_COMMAND);
      expect(entries.release).to.include('sequelize-cli db:migrate');
    });

    it('is documented with the session affinity its router needs for Socket.IO long-polling', () => {
      const docs = read('docs/operations.md');
      const section = docs.slice(docs.indexOf('### On a Procfile platform'), docs.indexOf('\n## ', docs.indexOf('### On a Procfile platform')));
      expect(section).to.include('heroku features:enable http-session-affinity');
      expect(section).to.include('transports: ["websocket"]');
    });
  });

  describe('nginx.conf', () => {
    const conf = read('nginx.conf');
    const uncommented = conf.replace(/#[^\n]*/g, '');

    it('is sticky by session when the client names it (raw ws path, Socket.IO query), else by full client address, and upgrades both websocket paths', () => {
      expect(uncommented, 'consistent would ring all replicas of `app` as one').to.match(/hash \$seance_balance_key;/);
      const key = /map "\$uri\?\$arg_session_id" \$seance_balance_key \{([^}]*)\}/.exec(uncommented);
      expect(key, 'the map that picks the hash key').to.not.equal(null);
      expect(key![1]).to.match(/default\s+\$remote_addr;/);
      expect(key![1]).to.include('"~^/ws/([^/?]+)/?\\?"');
      expect(key![1]).to.include('"~\\?(.+)$"');
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

    it('lets each worker open two descriptors per connection (client and upstream side of a WebSocket)', () => {
      const rlimit = Number(/^worker_rlimit_nofile (\d+);/m.exec(uncommented)?.[1]);
      const connections = Number(/worker_connections (\d+);/.exec(uncommented)?.[1]);
      expect(connections).to.be.above(1024);
      expect(rlimit, 'worker_rlimit_nofile').to.be.at.least(2 * connections);
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

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless']);
function seriesNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\[[^\]]*\]/g, ' ') // range selectors
    .replace(/"[^"]*"/g, ' ');
  return [...bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:]|\s*\()/g)]
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w))
    .filter((w, i, all) => all.indexOf(w) === i);
}
