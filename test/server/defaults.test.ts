/**
 * `npm start` with no configuration: the embedded SQLite default, one node, no Redis.
 * Both frontends (raw ws and socket.io-client) must work against it as they are.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { PROJECT_ROOT } from '../../harness/processes';
import { startNode, type NodeHandle } from '../../harness/node';
import { http, joinSocket, RawClient, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';

describe('a node with no configuration', () => {
  let node: NodeHandle;
  before(async () => {
    // Only the port is chosen (the suite runs beside other servers); everything else is default.
    const clean = { DATABASE_URL: '', REDIS_URL: '', NODE_ENV: '', JWT_SECRET: '', LOG_LEVEL: 'warn' };
    node = await startNode({ env: clean });
  });
  after(async () => node?.stop());

  it('reports the embedded database and no Redis', async () => {
    const health = await http(node.url, 'GET', '/health');
    expect(health.status).to.equal(200);
    expect(health.body).to.include({ status: 'healthy', database: 'connected', redis: 'disabled' });
  });

  it('signs tokens with a secret of its own, kept owner-only beside its data: a secret anyone could read proves nothing', async () => {
    const kept = path.join(PROJECT_ROOT, 'data', 'seance.sqlite.jwt-secret');
    expect(fs.statSync(kept).mode & 0o777).to.equal(0o600);
    const session = await createSession(node.url);
    // The development secret earlier releases printed in their source and README.
    const forged = jwt.sign({ typ: 'creator', sid: session.id }, 'seance-development-secret-do-not-use-in-production', { subject: `creator:${session.id}` });
    const ending = await http(node.url, 'DELETE', `/api/sessions/${session.id}`, { headers: { authorization: `Bearer ${forged}` } });
    expect(ending.status).to.equal(401);
    expect((await http(node.url, 'DELETE', `/api/sessions/${session.id}`, { headers: { authorization: `Bearer ${session.creator_token}` } })).status).to.equal(200);
  });

  it('serves the existing frontend and a socket.io-client frontend in one session', async () => {
    const session = await createSession(node.url);
    const sio = await joinSocket(node.url, { session_id: session.id, name: 'Next Frontend' });
    const raw = await RawClient.connect(node.url.replace('http', 'ws'), session.id);
    raw.send({ user_id: 'legacy-1', name: 'Legacy Frontend' });
    raw.send({ event: 'send_message', data: { user_name: 'Legacy Frontend', message: 'Spirit, are you here?' } });
    expect((await sio.inbox.waitFor('user_joined')).id).to.equal('legacy-1');
    const fromRaw = await sio.inbox.waitFor('message_received');
    expect(fromRaw).to.include({ user_name: 'Legacy Frontend', message: 'Spirit, are you here?' });
    const answer = await raw.inbox.waitFor('spirit_response');
    expect(answer.letter_timings).to.have.length(answer.message.length);
    const ack = await sendWithAck(sio, { message: 'And to me?' });
    expect((await raw.inbox.waitFor('message_received', (m) => m.id === ack.id)).message).to.equal('And to me?');
    raw.close();
    expect((await sio.inbox.waitFor('user_left')).id).to.equal('legacy-1');
    sio.close();
  });
});
