/**
 * nginx for local clusters and tests, configured from the SHIPPED nginx.conf: the render
 * changes only what must differ outside Docker (upstream addresses, listen port, file
 * paths), so the proxy behaviour under test is the production one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { canConnect, freePort } from './ports';
import { PROJECT_ROOT, childPids, findExecutable, makeTempDir, removeTempDir, run, signal, spawnLogged, stopProcess, waitUntil, type Spawned } from './processes';

export const SHIPPED_NGINX_CONF = path.join(PROJECT_ROOT, 'nginx.conf');

export interface RenderOptions {
  listenPort: number;
  /** "127.0.0.1:PORT", one per node. */
  upstreams: string[];
  /** Where pid, logs and temp files go (nginx's -p prefix). */
  workDir: string;
  /** Config text to render instead of the shipped file. */
  source?: string;
}

export interface NginxOptions {
  upstreams: string[];
  listenPort?: number;
  /** Created (and removed on stop) when not given. */
  workDir?: string;
}

export interface NginxHandle {
  url: string;
  port: number;
  /** The master process. */
  pid: number;
  workDir: string;
  configFile: string;
  errorLog: string;
  /** Exit code of the master (null for a signal); never rejects. */
  exited: Promise<number | null>;
  /** Fast shutdown (SIGTERM), SIGKILL after 10 s; removes the work dir if we made it. */
  stop(): Promise<void>;
  /** Re-renders with these upstreams and reloads (SIGHUP), resolving once new connections use them. */
  reload(upstreams: string[]): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 10_000;

/** nginx lives in /usr/sbin on Debian, which a non-root PATH often lacks. */
export function findNginx(): string | null {
  return findExecutable('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']);
}

function requireNginx(): string {
  const binary = findNginx();
  if (!binary) throw new Error('nginx not found (apt-get install nginx)');
  return binary;
}

function quote(file: string): string {
  if (/["\\\s;{}$]/.test(file)) throw new Error(`nginx path with special characters: ${file}`);
  return `"${file}"`;
}

/** Where the rendered config of a work dir keeps its error log (the harness waits on its lines). */
export function errorLogPath(workDir: string): string {
  return path.join(workDir, 'error.log');
}

export function renderNginxConfig(opts: RenderOptions): string {
  if (opts.upstreams.length === 0) throw new Error('renderNginxConfig: at least one upstream is needed');
  const w = (name: string) => quote(path.join(opts.workDir, name));
  let text = opts.source ?? fs.readFileSync(SHIPPED_NGINX_CONF, 'utf8');

  // Directives that point at system paths or users of the container; re-added below.
  text = text.replace(/^[ \t]*(user|pid|lock_file|error_log|access_log|daemon|(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path)\s[^;]*;[^\n]*\n/gm, '');

  const upstreamBlocks = [...text.matchAll(/upstream\s+\S+\s*\{[^}]*\}/g)];
  if (upstreamBlocks.length !== 1) throw new Error(`expected one upstream block in nginx.conf, found ${upstreamBlocks.length}`);
  const block = upstreamBlocks[0][0];
  const serverLine = /^([ \t]*)server\s+\S+([^;]*);[^\n]*\n/m.exec(block);
  if (!serverLine) throw new Error('the upstream block of nginx.conf has no server line');
  const [, indent, params] = serverLine;
  const servers = opts.upstreams.map((u) => `${indent}server ${u}${params};\n`).join('');
  // The first server line becomes one line per node (same parameters); any others go.
  const rendered = block
    .replace(serverLine[0], '\u0000')
    .replace(/^[ \t]*server\s+[^;]*;[^\n]*\n/gm, '')
    .replace('\u0000', servers);
  text = text.replace(block, rendered);

  const listens = text.match(/^[ \t]*listen\s[^;]*;/gm) ?? [];
  if (listens.length !== 1) throw new Error(`expected one listen directive in nginx.conf, found ${listens.length}`);
  text = text.replace(/^([ \t]*)listen\s+\S+?([ \t][^;]*)?;/m, (_m, ind: string, rest?: string) => {
    return `${ind}listen 127.0.0.1:${opts.listenPort}${rest ?? ''};`;
  });

  if (!/^[ \t]*http\s*\{/m.test(text)) throw new Error('nginx.conf has no http block');
  text = text.replace(
    /^([ \t]*)http\s*\{[^\n]*\n/m,
    (line) =>
      line +
      [
        '    # --- local paths (test/harness/nginx.ts) ---',
        `    access_log ${w('access.log')};`,
        `    client_body_temp_path ${w('client_body')};`,
        `    proxy_temp_path ${w('proxy')};`,
        `    fastcgi_temp_path ${w('fastcgi')};`,
        `    uwsgi_temp_path ${w('uwsgi')};`,
        `    scgi_temp_path ${w('scgi')};`,
        '',
      ].join('\n'),
  );

  return [
    '# Rendered by test/harness/nginx.ts from the shipped nginx.conf for a local run.',
    `pid ${w('nginx.pid')};`,
    `lock_file ${w('nginx.lock')};`,
    // notice level: reload() waits for the "gracefully shutting down" lines of old workers.
    `error_log ${quote(errorLogPath(opts.workDir))} notice;`,
    '',
    text,
  ].join('\n');
}

/** `nginx -t` on a config file; resolves with nginx's output, rejects with it on failure. */
export function checkNginxConfig(file: string): Promise<string> {
  return run(requireNginx(), ['-t', '-p', path.dirname(file), '-c', file, '-e', 'stderr'], { cwd: path.dirname(file) });
}

export async function startNginx(opts: NginxOptions): Promise<NginxHandle> {
  const binary = requireNginx();
  const port = opts.listenPort ?? (await freePort());
  const ownsWorkDir = !opts.workDir;
  const workDir = opts.workDir ?? makeTempDir('seance-nginx-');
  fs.mkdirSync(workDir, { recursive: true });
  // As root, workers run as `nobody` and must reach the temp dirs nginx creates here.
  if (process.getuid?.() === 0) fs.chmodSync(workDir, 0o755);
  const configFile = path.join(workDir, 'nginx.conf');
  const errorLog = errorLogPath(workDir);
  const outLog = path.join(workDir, 'nginx.out');
  const write = (upstreams: string[]) => fs.writeFileSync(configFile, renderNginxConfig({ listenPort: port, upstreams, workDir }));

  let proc: Spawned | undefined;
  const stop = async () => {
    if (proc) await stopProcess(proc, 'SIGTERM', STOP_GRACE_MS);
    if (ownsWorkDir) await removeTempDir(workDir);
  };

  try {
    write(opts.upstreams);
    proc = spawnLogged(binary, ['-p', workDir, '-c', configFile, '-e', errorLog, '-g', 'daemon off;'], {
      cwd: workDir,
      logFile: outLog,
    });
    await waitUntil(`nginx on port ${port}`, () => canConnect(port), {
      timeoutMs: READY_TIMEOUT_MS,
      proc,
      logFile: errorLog,
    });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  const master = proc;

  const reload = async (upstreams: string[]) => {
    write(upstreams);
    // A config nginx rejects would be ignored by the running master with only a log line.
    await checkNginxConfig(configFile);
    const oldWorkers = childPids(master.pid);
    const offset = fs.statSync(errorLog).size;
    signal(master.pid, 'SIGHUP');
    // Old workers close their listening sockets as they log this line; after it, every
    // new connection reaches a worker running the new config.
    await waitUntil(
      'nginx reload',
      async () => {
        const fresh = fs.readFileSync(errorLog).subarray(offset).toString('utf8');
        return oldWorkers.every((pid) => !fs.existsSync(`/proc/${pid}`) || new RegExp(`${pid}#\\d+: gracefully shutting down`).test(fresh));
      },
      { timeoutMs: READY_TIMEOUT_MS, proc: master, logFile: errorLog },
    );
  };

  return { url: `http://127.0.0.1:${port}`, port, pid: master.pid, exited: master.exited, workDir, configFile, errorLog, stop, reload };
}
