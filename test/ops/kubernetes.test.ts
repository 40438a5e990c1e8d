/**
 * deploy/kubernetes, checked without a cluster: every object is validated against the
 * Kubernetes API schemas (kubernetes-models, offline), the objects are checked against each
 * other and against the app (labels, ports, probe paths, settings, grace period), and the
 * Ingress's session hashing snippet is run in a real nginx.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments, parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../config';
import { findNginx } from '../../harness/nginx';
import { freePort } from '../../harness/ports';
import { PROJECT_ROOT, findExecutable, makeTempDir, removeTempDir, run, spawnLogged, stopProcess, waitUntil } from '../../harness/processes';
import { http } from '../support/clients';
import { startTestServer } from '../support/server';

const DIR = path.join(PROJECT_ROOT, 'deploy', 'kubernetes');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: any;
}

const kustomization = parse(fs.readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as {
  resources: string[];
  configMapGenerator: Array<{ name: string; literals: string[] }>;
};
const objects: K8sObject[] = kustomization.resources.flatMap((file) => parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')).map((d) => d.toJSON() as K8sObject));
const find = (kind: string, name?: string) => {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind} ${name ?? ''} in deploy/kubernetes`);
  return found;
};
const deployment = find('Deployment');
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers[0];
const configLiterals = Object.fromEntries(kustomization.configMapGenerator.find((g) => g.name === 'seance-config')!.literals.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
/** What the Secret `seance-secrets` must hold (docs/operations.md says how to create it). */
const SECRET_KEYS = { JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://seance:pw@postgres:5432/seance?sslmode=require' };
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The model class of kubernetes-models for an object (ESM only: loaded with import()). */
async function modelOf(object: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  const group = object.apiVersion.includes('/') ? object.apiVersion : `v1`;
  const module = (await import(`kubernetes-models/${group}/${object.kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  return module[object.kind];
}

describe('deploy/kubernetes', () => {
  it('lists the Deployment, Service, Ingress, migration Job, PodDisruptionBudget and HorizontalPodAutoscaler', () => {
    expect(objects.map((o) => o.kind).sort()).to.deep.equal(['Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'Job', 'PodDisruptionBudget', 'Service']);
  });

  it('validates every object against the Kubernetes API schemas', async () => {
    for (const object of objects) {
      const Model = await modelOf(object);
      expect(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`).not.to.throw();
    }
    // The schema check has teeth: a wrong type is refused.
    const Model = await modelOf(deployment);
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
    expect(() => new Model(broken).validate()).to.throw(/containerPort must be integer/);
  });

  it('ties the objects together: selectors, ports, the scaled Deployment', () => {
    const podLabels = deployment.spec.template.metadata.labels;
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).to.equal(true);
    const service = find('Service');
    expect(matches(service.spec.selector, podLabels), 'Service selector').to.equal(true);
    expect(matches(find('PodDisruptionBudget').spec.selector.matchLabels, podLabels), 'PDB selector').to.equal(true);
    expect(matches(service.spec.selector, find('Job').spec.template.metadata.labels), 'the Service must not send traffic to the migration Job').to.equal(false);
    const portNames = container.ports.map((p: { name: string }) => p.name);
    expect(portNames).to.include(service.spec.ports[0].targetPort);
    const backend = find('Ingress').spec.rules[0].http.paths[0].backend.service;
    expect(backend.name).to.equal(service.metadata.name);
    expect(service.spec.ports.map((p: { name: string }) => p.name)).to.include(backend.port.name);
    const hpa = find('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).to.include({ kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).to.be.at.least(2);
    expect(find('PodDisruptionBudget').spec.maxUnavailable).to.be.below(hpa.spec.minReplicas);
  });

  it('probes ports the container has and paths the app answers: /readyz for readiness, /livez for liveness', async () => {
    const portNames = container.ports.map((p: { name: string }) => p.name);
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) expect(portNames, probe).to.include(container[probe].httpGet.port);
    expect(container.readinessProbe.httpGet.path).to.equal('/readyz');
    expect(container.livenessProbe.httpGet.path).to.equal('/livez');
    const server = await startTestServer({ database: 'sqlite' });
    try {
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) expect((await http(server.url, 'GET', container[probe].httpGet.path)).status, probe).to.equal(200);
    } finally {
      await server.close();
    }
  });

  it("passes the app's own config validation with its settings, and listens where the container port says", () => {
    const names = [...Object.keys(configLiterals), ...container.env.map((e: { name: string }) => e.name), ...Object.keys(SECRET_KEYS)];
    for (const name of names) expect(CONFIG_VARIABLES, name).to.include(name);
    const config = loadConfig({ ...configLiterals, ...SECRET_KEYS, NODE_ID: 'seance-7d9f-abcde' });
    expect(config.nodeEnv).to.equal('production');
    expect(config.port).to.equal(container.ports[0].containerPort);
    expect(config.database.migrateOnStart, 'the Job migrates, not every replica').to.equal(false);
    expect(container.envFrom.map((e: any) => e.configMapRef?.name ?? e.secretRef?.name)).to.deep.equal(['seance-config', 'seance-secrets']);
    const job = find('Job').spec.template.spec.containers[0];
    expect(job.command.join(' ')).to.include('sequelize-cli db:migrate');
    expect(job.envFrom).to.deep.equal(container.envFrom);
  });

  it('drains before SIGKILL: the grace period covers preStop and the hard exit of SHUTDOWN_TIMEOUT_MS', () => {
    const config = loadConfig({ ...configLiterals, ...SECRET_KEYS });
    const preStop = container.lifecycle.preStop.exec.command as string[];
    const preStopMs = Number(/setTimeout\(\(\) => \{\}, (\d+)\)/.exec(preStop.join(' '))?.[1]);
    expect(preStopMs).to.be.above(0);
    expect(podSpec.terminationGracePeriodSeconds * 1000).to.be.at.least(preStopMs + config.hardExitMs);
  });

  it('runs as a non-root user on a read-only root filesystem, writing only to emptyDir volumes', () => {
    for (const spec of [podSpec, find('Job').spec.template.spec]) {
      expect(spec.securityContext.runAsNonRoot).to.equal(true);
      expect(spec.securityContext.runAsUser).to.be.above(0);
      for (const c of spec.containers) {
        expect(c.securityContext).to.deep.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
        expect(c.securityContext.capabilities.drop).to.deep.equal(['ALL']);
        expect(c.resources.requests).to.include.keys('cpu', 'memory');
        expect(c.resources.limits).to.include.keys('memory');
        for (const mount of c.volumeMounts) expect(spec.volumes.find((v: any) => v.name === mount.name)?.emptyDir, mount.mountPath).to.be.an('object');
        expect(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).to.include('/tmp');
      }
    }
  });

  it('renders with `kubectl kustomize`', async function () {
    const kubectl = findExecutable('kubectl');
    if (!kubectl) this.skip(); // kustomize is built into kubectl; nothing here needs a cluster.
    const rendered = parseAllDocuments(await run(kubectl, ['kustomize', DIR], { cwd: DIR })).map((d) => d.toJSON() as K8sObject);
    const configMap = rendered.find((o) => o.kind === 'ConfigMap')!;
    const renderedDeployment = rendered.find((o) => o.kind === 'Deployment')!;
    expect(renderedDeployment.spec.template.spec.containers[0].envFrom[0].configMapRef.name, 'the generated ConfigMap, by its hashed name').to.equal(configMap.metadata.name);
    expect(renderedDeployment.spec.template.spec.containers[0].image).to.match(/^registry\.example\.com\/seance:/);
  });

  describe('the Ingress (ingress-nginx)', () => {
    const annotations = find('Ingress').metadata.annotations!;

    it('hashes on a variable its snippet sets, with timeouts above the ping intervals', () => {
      expect(annotations['nginx.ingress.kubernetes.io/upstream-hash-by']).to.equal('$seance_session');
      expect(annotations['nginx.ingress.kubernetes.io/configuration-snippet']).to.include('set $seance_session');
      expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).to.be.above(25 + 20);
    });

    it('picks the session from ?session_id= or /ws/{id}, else the client address, and hides /metrics (run in a real nginx)', async function () {
      this.timeout(20_000);
      const binary = findNginx();
      if (!binary) this.skip(); // CI installs nginx (.ci/run).
      const workDir = makeTempDir('seance-ingress-snippet-');
      if (process.getuid?.() === 0) fs.chmodSync(workDir, 0o755);
      const port = await freePort();
      // The snippet in a location, as ingress-nginx places it; the reply shows the key it hashed on.
      const conf = `pid ${workDir}/nginx.pid;
events {}
http {
  access_log off;
  client_body_temp_path ${workDir}/body; proxy_temp_path ${workDir}/proxy; fastcgi_temp_path ${workDir}/fastcgi; uwsgi_temp_path ${workDir}/uwsgi; scgi_temp_path ${workDir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      ${annotations['nginx.ingress.kubernetes.io/configuration-snippet']}
      return 200 "$seance_session";
    }
  }
}
`;
      fs.writeFileSync(path.join(workDir, 'nginx.conf'), conf);
      const proc = spawnLogged(binary, ['-p', workDir, '-c', path.join(workDir, 'nginx.conf'), '-e', path.join(workDir, 'error.log'), '-g', 'daemon off;'], {
        cwd: workDir,
        logFile: path.join(workDir, 'nginx.out'),
      });
      const key = async (pathAndQuery: string) => (await fetch(`http://127.0.0.1:${port}${pathAndQuery}`)).text();
      try {
        await waitUntil(
          'nginx with the snippet',
          () =>
            key('/').then(
              () => true,
              () => false,
            ),
          { timeoutMs: 10_000, proc, logFile: path.join(workDir, 'error.log') },
        );
        expect(await key('/socket.io/?EIO=4&transport=polling&session_id=abc-123')).to.equal('abc-123');
        expect(await key('/socket.io/?EIO=4&transport=websocket&session_id=abc-123&sid=x')).to.equal('abc-123');
        expect(await key('/ws/abc-123?token=t')).to.equal('abc-123');
        expect(await key('/api/sessions')).to.equal('127.0.0.1');
        expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).to.equal(404);
      } finally {
        await stopProcess(proc, 'SIGTERM', 5_000);
        await removeTempDir(workDir);
      }
    });
  });
});
