/**
 * The unit tier (`npm run test:unit`, test/tiers.js) runs without PostgreSQL, Redis or nginx:
 * the harness refuses to start them there, so a misfiled test fails at once, by name.
 */
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { run, spawnLogged } from '../../harness/processes';

describe('the unit test tier', () => {
  const before = process.env.SEANCE_TEST_TIER;
  afterEach(() => {
    if (before === undefined) delete process.env.SEANCE_TEST_TIER;
    else process.env.SEANCE_TEST_TIER = before;
  });
  const logFile = path.join(os.tmpdir(), 'seance-unit-tier.log');

  it('refuses to start PostgreSQL, Redis or nginx, naming the file to move', () => {
    process.env.SEANCE_TEST_TIER = 'unit';
    expect(() => spawnLogged('/usr/lib/postgresql/17/bin/postgres', [], { cwd: os.tmpdir(), logFile })).to.throw(/unit test may not start postgres.*test\/tiers\.js/);
    expect(() => spawnLogged('nginx', [], { cwd: os.tmpdir(), logFile })).to.throw(/nginx/);
    expect(() => run('redis-server', ['--version'], { cwd: os.tmpdir() })).to.throw(/redis-server/);
  });

  it('lets other tiers start them, and the unit tier start other processes', async () => {
    process.env.SEANCE_TEST_TIER = 'unit';
    expect(await run(process.execPath, ['-e', 'process.stdout.write("ok")'], { cwd: os.tmpdir() })).to.equal('ok');
    process.env.SEANCE_TEST_TIER = 'integration';
    // A missing binary rejects (ENOENT) rather than being refused: the guard let it through.
    await run('/nonexistent/redis-server', [], { cwd: os.tmpdir() }).then(
      () => expect.fail('should not run'),
      (err: Error) => expect(err.message).to.match(/ENOENT/),
    );
  });
});
