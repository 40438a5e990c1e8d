/**
 * PostgreSQL ending a connection in the very read that finishes its start-up (a server
 * restarting sends 57P01 to every backend, also to one that just said ReadyForQuery): the
 * node's database layer must take that as a failed connection, not crash on an unhandled
 * 'error' event. No real server can be made to do it on cue, so a small one speaks the
 * protocol's start-up and the error in one write.
 */
import net from 'node:net';
import { expect } from 'chai';
import { Sequelize } from 'sequelize';
import { loadConfig } from '../../config';
import { sequelizeOptions } from '../../server/db';

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const int32 = (...values: number[]) => Buffer.concat(values.map((v) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255])));
const cstrings = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\0`).join(''), 'latin1');

/** Answers every start-up with "ready", then at once "terminating connection" (57P01), in one write. */
function startDyingServer(): Promise<{ port: number; connections: () => number; close: () => void }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.once('data', () => {
      socket.write(
        Buffer.concat([
          message('R', int32(0)),
          message('S', cstrings('server_version', '15.0')),
          message('S', cstrings('standard_conforming_strings', 'on')),
          message('K', int32(4242, 99)),
          message('Z', Buffer.from('I')),
          message('E', Buffer.concat([cstrings('SFATAL', 'VFATAL', 'C57P01', 'Mterminating connection due to administrator command'), Buffer.from([0])])),
        ]),
      );
      setTimeout(() => socket.destroy(), 50);
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, connections: () => connections, close: () => server.close() })));
}

describe('database: PostgreSQL ending a connection as it opens', () => {
  it('is a failed connection, not an unhandled error event that ends the process', async () => {
    const dying = await startDyingServer();
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: `postgres://seance:secret@127.0.0.1:${dying.port}/seance`, JWT_SECRET: 'x'.repeat(40) });
    const sequelize = new Sequelize(config.database.url, { ...sequelizeOptions(config), pool: { max: 1, min: 0, acquire: 3000 } });
    try {
      // Three tries: each opens a connection that is told to go in the read that made it ready.
      for (let i = 0; i < 3; i++) {
        const outcome = await sequelize.query('SELECT 1').then(
          () => 'answered',
          () => 'refused',
        );
        expect(outcome).to.equal('refused');
      }
      // Let any late 'error' event fire: mocha fails the test on an uncaught one.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(dying.connections()).to.be.at.least(3);
    } finally {
      await sequelize.close().catch(() => undefined);
      dying.close();
    }
  });
});
