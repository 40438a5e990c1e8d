/**
 * TLS to PostgreSQL as a managed database asks for it: a real PostgreSQL serving a certificate
 * signed by a CA that `openssl` makes for this run, reached through `sslmode` in DATABASE_URL
 * (and PGSSLROOTCERT), which Sequelize alone would silently drop.
 */
import fs from 'node:fs';
import path from 'node:path';
import bunyan from 'bunyan';
import { expect } from 'chai';
import { loadConfig } from '../../config';
import { startPostgres, type PostgresHandle } from '../../harness/postgres';
import { findExecutable, makeTempDir, removeTempDir, run } from '../../harness/processes';
import { createDatabase } from '../../server/db';
import { sharedPostgres } from '../support/hooks';

const logger = bunyan.createLogger({ name: 'test', level: 'fatal' });
/** A PostgreSQL URL makes a cluster node, which needs a shared secret. */
const JWT_SECRET = 'a-shared-secret-of-the-cluster-0123';

/** A CA, a server certificate it signs for 127.0.0.1 only, and an unrelated CA. */
async function makeCertificates(dir: string): Promise<{ ca: string; otherCa: string; cert: string; key: string }> {
  const file = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=seance test CA'], { cwd: dir });
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('other.key'), '-out', file('other-ca.pem'), '-days', '2', '-subj', '/CN=some other CA'], { cwd: dir });
  await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1'], { cwd: dir });
  fs.writeFileSync(file('san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run(
    'openssl',
    ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.crt'), '-days', '2', '-extfile', file('san.cnf')],
    { cwd: dir },
  );
  return { ca: file('ca.pem'), otherCa: file('other-ca.pem'), cert: file('server.crt'), key: file('server.key') };
}

/** The error a promise rejects with, or undefined when it resolves. */
const failureOf = (work: Promise<unknown>): Promise<Error | undefined> =>
  work.then(
    () => undefined,
    (err: Error) => err,
  );

describe('TLS to PostgreSQL (sslmode, PGSSLROOTCERT)', function () {
  this.timeout(60_000);
  let dir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  let pg: PostgresHandle;

  before(async function () {
    if (!findExecutable('openssl')) this.skip(); // CI has it (Debian's openssl package).
    dir = makeTempDir('seance-pg-tls-');
    certs = await makeCertificates(dir);
    pg = await startPostgres({ tls: { certFile: certs.cert, keyFile: certs.key } });
  });
  after(async () => {
    await pg?.destroy();
    if (dir) await removeTempDir(dir);
  });

  /** Connects as the server does at start (migrations), then asks PostgreSQL whether this connection is encrypted. */
  async function connect(query: string, env: Record<string, string> = {}, host = '127.0.0.1'): Promise<boolean> {
    const config = loadConfig({ JWT_SECRET, DATABASE_URL: `postgres://postgres@${host}:${pg.port}/seance?${query}`, ...env });
    const db = createDatabase(config, logger);
    try {
      await db.migrate();
      const [rows] = await db.sequelize.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return (rows as Array<{ ssl: boolean }>)[0].ssl;
    } finally {
      await db.close();
    }
  }

  it('sslmode=require encrypts without checking the certificate', async () => {
    expect(await connect('sslmode=require')).to.equal(true);
    // Without sslmode, the same server is reached in the clear: the setting is what made the difference.
    expect(await connect('application_name=plain')).to.equal(false);
  });

  it('sslmode=verify-full connects with the CA from PGSSLROOTCERT, and verify-ca with sslrootcert in the URL', async () => {
    expect(await connect('sslmode=verify-full', { PGSSLROOTCERT: certs.ca })).to.equal(true);
    expect(await connect(`sslmode=verify-ca&sslrootcert=${encodeURIComponent(certs.ca)}`)).to.equal(true);
  });

  it('sslmode=verify-full refuses a certificate from another CA, or for another host, and says why', async () => {
    const wrongCa = await failureOf(connect('sslmode=verify-full', { PGSSLROOTCERT: certs.otherCa }));
    expect(wrongCa?.message).to.match(
      /^TLS to PostgreSQL failed with sslmode=verify-full, which checks the server certificate against the CA in .*other-ca\.pem and the host name in DATABASE_URL: .*certificate/,
    );
    // The certificate names 127.0.0.1 only; `localhost` reaches the same server under another name.
    const wrongHost = await failureOf(connect('sslmode=verify-full', { PGSSLROOTCERT: certs.ca }, 'localhost'));
    expect(wrongHost?.message).to.match(/sslmode=verify-full.*: Hostname\/IP does not match certificate's altnames: Host: localhost/);
    // verify-ca checks the chain only, as libpq's does: the same name passes.
    expect(await connect('sslmode=verify-ca', { PGSSLROOTCERT: certs.ca }, 'localhost')).to.equal(true);
  });

  it('says so when sslmode asks for TLS from a server without it', async () => {
    const plainUrl = (await sharedPostgres()).url;
    const db = createDatabase(loadConfig({ JWT_SECRET, DATABASE_URL: `${plainUrl}?sslmode=require` }), logger);
    try {
      const failure = await failureOf(db.migrate());
      expect(failure?.message).to.match(/^PostgreSQL does not accept TLS but DATABASE_URL asks for sslmode=require/);
    } finally {
      await db.close();
    }
  });
});
