/**
 * A 3-node cluster as an operator runs it: a real Prometheus scrapes every replica (with
 * METRICS_TOKEN) and finds each contract series for every node through its query API;
 * nginx does not publish /metrics; probes and scrapes stay out of the info log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { PROJECT_ROOT, waitUntil } from '../../harness/processes';
import { startPrometheus, type PrometheusHandle } from '../../harness/prometheus';
import { http, joinSocket, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { CONTRACT_SERIES } from '../support/metrics';

const TOKEN = 'cluster-metrics-token-0123456789';

describe('monitoring a cluster', function () {
  this.timeout(120_000);
  let cluster: ClusterHandle;
  let prometheus: PrometheusHandle | undefined;

  before(async () => {
    cluster = await startCluster({ nodes: 3, env: { METRICS_TOKEN: TOKEN, LOG_LEVEL: 'info' } });
  });
  after(async () => {
    await prometheus?.stop();
    await cluster?.stop();
  });

  it('Prometheus scrapes every replica and finds each contract series for every node', async () => {
    // Some traffic on every node, so the figures are not only zeros.
    const session = await createSession(cluster.url);
    const sockets = await Promise.all(cluster.nodes.map((n, i) => joinSocket(n.url, { session_id: session.id, user_id: `u${i}`, name: `U${i}` })));
    expect((await sendWithAck(sockets[0], { message: 'Is anyone there?' })).ok).to.equal(true);
    await Promise.all(sockets.map((s) => s.inbox.waitFor('spirit_response', () => true)));

    const targets = cluster.nodes.map((n) => `127.0.0.1:${n.port}`);
    prometheus = await startPrometheus({ targets, bearerToken: TOKEN, scrapeIntervalSeconds: 1 });
    const p = prometheus;
    await waitUntil('every replica scraped', async () => (await p.query('up == 1')).length === targets.length, { timeoutMs: 30_000, logFile: p.logFile });
    for (const series of CONTRACT_SERIES) {
      const found = await p.query(`group by (instance) ({__name__="${series}"})`);
      expect(found.map((r) => r.metric.instance).sort(), series).to.deep.equal([...targets].sort());
    }
    // Every node counts the connection it holds, and the message reached all three.
    const connections = await p.query('seance_connections{transport="socketio"}');
    expect(connections.map((r) => Number(r.value[1]))).to.deep.equal([1, 1, 1]);
    const delivered = await p.query('seance_deliveries_total > 0');
    expect(delivered).to.have.length(3);
    for (const s of sockets) s.close();
  });

  it('answers every query of the shipped Grafana dashboard', async () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'monitoring/grafana/dashboards/seance.json'), 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const p = prometheus!;
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        // Rates need two scrapes in their window: wait for a series rather than a fixed time.
        await waitUntil(`${panel.title}: ${expr}`, async () => (await p.query(expr)).length > 0, { timeoutMs: 15_000, logFile: p.logFile });
      }
    }
  });

  it('nginx does not publish /metrics, whatever the spelling; probes pass through', async () => {
    for (const path of ['/metrics', '/metrics/', '/METRICS', '/Metrics?x=1']) {
      const reply = await http(cluster.url, 'GET', path, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(reply.status, path).to.equal(404);
      expect(reply.text, path).not.to.include('seance_');
    }
    expect((await http(cluster.url, 'GET', '/livez')).status).to.equal(200);
    expect((await http(cluster.url, 'GET', '/readyz')).status).to.equal(200);
    // The node itself still serves it to whoever has the token.
    expect((await http(cluster.nodes[0].url, 'GET', '/metrics')).status).to.equal(401);
  });

  it('logs REST requests at info but not probes and scrapes', async () => {
    const node = cluster.nodes[0];
    for (const path of ['/livez', '/readyz']) expect((await http(node.url, 'GET', path)).status).to.equal(200);
    expect((await http(node.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
    const marker = `/api/sessions/log-marker-${Date.now()}`;
    await http(node.url, 'GET', marker);
    await waitUntil('the marker request logged', async () => fs.readFileSync(node.logFile, 'utf8').includes(marker), { timeoutMs: 5000 });
    const requests = fs
      .readFileSync(node.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; path?: string; level: number })
      .filter((r) => r.msg === 'request');
    expect(requests.map((r) => r.path)).to.include(marker);
    const quiet = requests.filter((r) => ['/livez', '/readyz', '/metrics'].includes(r.path ?? ''));
    expect(quiet, 'probe or scrape logged at info').to.deep.equal([]);
  });
});
