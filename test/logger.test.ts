/**
 * What a real node writes to stdout: one JSON line per request with the fields operators
 * need, and never a token, a secret or a message text at info level.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { startNode, type NodeHandle } from '../harness/node';
import { http, joinSocket, RawClient, sendWithAck } from './support/clients';
import { sharedPostgres } from './support/hooks';

const SECRET = 'log-test-secret-0123456789-abcdefghij';

describe('logs', () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({ env: { DATABASE_URL: (await sharedPostgres()).url, NODE_ENV: 'test', LOG_LEVEL: 'info', JWT_SECRET: SECRET, NODE_ID: 'log-node' } });
  });
  after(async () => node?.stop());

  it('log requests as JSON lines with method, path, status, duration and request id; never tokens, secrets or message texts', async () => {
    const created = (await http(node.url, 'POST', '/api/sessions', { json: { name: 'Logged' }, headers: { 'x-request-id': 'log-req-1' } })).body.data;
    const guest = (await http(node.url, 'POST', '/api/auth/token', { json: { name: 'Guest' } })).body.data.access_token;
    const secretText = 'my-very-private-question-4242';
    const socket = await joinSocket(node.url, { session_id: created.id, token: guest });
    await sendWithAck(socket, { message: secretText });
    await socket.inbox.waitFor('spirit_response');
    const raw = await RawClient.join(node.url.replace('http', 'ws'), created.id, { name: 'Raw' }, { query: `token=${guest}` });
    raw.close();
    socket.close();
    await http(node.url, 'DELETE', `/api/sessions/${created.id}`, { headers: { authorization: `Bearer ${created.creator_token}`, 'x-request-id': 'log-req-end' } });
    // The DELETE's request line is the last thing we caused: wait for it to be written.
    const deadline = Date.now() + 5000;
    while (!fs.readFileSync(node.logFile, 'utf8').includes('log-req-end') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const text = fs.readFileSync(node.logFile, 'utf8');
    const records = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const create = records.find((r) => r.req_id === 'log-req-1');
    expect(create).to.include({ msg: 'request', method: 'POST', path: '/api/sessions', status: 201, node_id: 'log-node', level: 30 });
    expect(create.duration_ms).to.be.a('number');
    expect(records.some((r) => r.msg === 'participant joined' && r.session_id === created.id)).to.equal(true);
    for (const forbidden of [guest, created.creator_token, SECRET, secretText]) expect(text).not.to.include(forbidden);
  });
});
