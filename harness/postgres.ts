/**
 * A throwaway PostgreSQL server: initdb into a temp dir, postgres in the foreground as our
 * child (so we hold its PID), trust auth on 127.0.0.1 only, durability off for speed (tests)
 * or PostgreSQL's production defaults (`durable`, the benchmark: what a deployment pays per commit).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pgQuery } from './pg';
import { freePort } from './ports';
import { findExecutable, makeTempDir, removeTempDir, run, spawnLogged, stopProcess, waitUntil, serverProcess, type ServerProcess, type Spawned } from './processes';

export interface PostgresHandle extends ServerProcess {
  /** postgres://postgres@127.0.0.1:PORT/seance */
  url: string;
  port: number;
  /** Temp dir holding data/, the unix socket and postgres.log. */
  dir: string;
  logFile: string;
  /** Fast shutdown (SIGINT): open connections are cut, data is kept. */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data (outage tests). */
  start(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

/** The directory of initdb/postgres: `initdb` on PATH, else the newest /usr/lib/postgresql/N/bin (Debian). */
export function findPostgresBinDir(): string {
  const onPath = findExecutable('initdb');
  if (onPath) return path.dirname(fs.realpathSync(onPath));
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    throw new Error('PostgreSQL not found: no initdb on PATH nor under /usr/lib/postgresql/*/bin (apt-get install postgresql)');
  }
  return path.join(root, versions[0], 'bin');
}

/** PostgreSQL refuses to run as root: when we are root, its processes run as the `postgres` user. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, but there is no `postgres` user to run PostgreSQL as');
  }
}

export interface PostgresOptions {
  /** Keep PostgreSQL's own durability defaults (fsync, full page writes): the benchmark measures what production pays. */
  durable?: boolean;
  /** Serve TLS with this certificate and key (PEM files; copied into the data dir with the modes PostgreSQL demands). */
  tls?: { certFile: string; keyFile: string };
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresHandle> {
  const binDir = findPostgresBinDir();
  const user = postgresUser();
  const port = await freePort();
  const dir = makeTempDir('seance-pg-');
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  // Spawning with uid/gid (instead of wrapping in runuser) keeps postgres itself as our
  // direct child, so the PID we hold is the postmaster's and signals reach it unrelayed.
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const runAs = { cwd: dir, uid: user?.uid, gid: user?.gid };

  let proc: Spawned | undefined;
  const start = async () => {
    if (proc && !proc.hasExited()) return;
    proc = spawnLogged(path.join(binDir, 'postgres'), ['-D', dataDir], { ...runAs, logFile });
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitUntil(
      `postgres on port ${port}`,
      () =>
        pgQuery(adminUrl, 'SELECT 1').then(
          () => true,
          () => false,
        ),
      { timeoutMs: READY_TIMEOUT_MS, proc, logFile },
    );
  };
  const stop = async () => {
    if (proc) await stopProcess(proc, 'SIGINT', STOP_GRACE_MS);
  };

  try {
    await run(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], runAs);
    if (opts.tls) {
      // PostgreSQL refuses a key readable by others or owned by another user.
      for (const [from, to] of [
        [opts.tls.certFile, 'server.crt'],
        [opts.tls.keyFile, 'server.key'],
      ]) {
        fs.copyFileSync(from, path.join(dataDir, to));
        fs.chmodSync(path.join(dataDir, to), 0o600);
        if (user) fs.chownSync(path.join(dataDir, to), user.uid, user.gid);
      }
    }
    // Settings live in the data dir, so start() after stop() needs no arguments to agree.
    fs.appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        '# seance test harness',
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${dir}'`,
        // Throwaway test data: nothing is flushed to disk. synchronous_commit stays at its
        // default (on), as in production. The benchmark (`durable`) keeps every default: a
        // commit there waits for its WAL to reach the disk, as a deployment's does.
        ...(opts.durable ? [] : ['fsync = off', 'full_page_writes = off']),
        ...(opts.tls ? ['ssl = on', "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"] : []),
        // Several nodes with a pool of 30 each, plus the tests' own connections.
        'max_connections = 300',
        '',
      ].join('\n'),
    );
    await start();
    await pgQuery(`postgres://postgres@127.0.0.1:${port}/postgres`, 'CREATE DATABASE seance');
  } catch (err) {
    await stop().catch(() => undefined);
    await removeTempDir(dir);
    throw err;
  }

  // Object.assign keeps serverProcess's getters live (a spread would copy their values once).
  return Object.assign(
    serverProcess(() => proc, stop, dir),
    {
      url: `postgres://postgres@127.0.0.1:${port}/seance`,
      port,
      dir,
      logFile,
      stop,
      start,
    },
  );
}
