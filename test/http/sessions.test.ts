import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { http } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function expectEnvelopeError(reply: { status: number; body: any }, status: number, code: string) {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  expect(reply.body.success).to.equal(false);
  expect(reply.body.error.code).to.equal(code);
  expect(reply.body.error.message).to.be.a('string').and.not.empty;
  expect(reply.body.meta.timestamp).to.match(ISO);
  expect(reply.body.meta.request_id).to.be.a('string');
  expect(JSON.stringify(reply.body)).not.to.match(/at .*\.(ts|js):\d+|SELECT|INSERT|Sequelize/);
}

for (const database of ['postgres', 'sqlite'] as const) {
  describe(`REST sessions on ${database}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database });
    });
    after(async () => server?.close());

    describe('POST /api/sessions', () => {
      it('creates a session with defaults, trimmed name and a creator token', async () => {
        const reply = await http(server.url, 'POST', '/api/sessions', { json: { name: '  The Ouija Circle  ' } });
        expect(reply.status).to.equal(201);
        expect(reply.body.success).to.equal(true);
        const data = reply.body.data;
        expect(data.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(data).to.include({ name: 'The Ouija Circle', max_users: 6, is_active: true });
        expect(data.created_at).to.match(ISO);
        expect(data.creator_token).to.be.a('string').with.length.above(20);
        expect(reply.body.meta.timestamp).to.match(ISO);
        expect(reply.body.meta.request_id).to.equal(reply.headers.get('x-request-id'));
      });

      for (const max of [2, 12]) {
        it(`accepts max_users ${max}`, async () => {
          expect((await createSession(server.url, { max_users: max })).max_users).to.equal(max);
        });
      }

      for (const name of ['a', 'x'.repeat(100)]) {
        it(`accepts a ${name.length}-character name`, async () => {
          expect((await createSession(server.url, { name })).name).to.equal(name);
        });
      }

      const invalid: Array<[string, unknown, string[]]> = [
        ['an empty name', { name: '' }, ['name']],
        ['a blank name', { name: '   ' }, ['name']],
        ['a 101-character name', { name: 'x'.repeat(101) }, ['name']],
        ['a missing name', {}, ['name']],
        ['a numeric name', { name: 42 }, ['name']],
        ['max_users 1', { name: 'a', max_users: 1 }, ['max_users']],
        ['max_users 13', { name: 'a', max_users: 13 }, ['max_users']],
        ['max_users 0', { name: 'a', max_users: 0 }, ['max_users']],
        ['a string max_users', { name: 'a', max_users: '6' }, ['max_users']],
        ['a fractional max_users', { name: 'a', max_users: 2.5 }, ['max_users']],
        ['an unknown field', { name: 'a', colour: 'black' }, ['colour']],
        ['several bad fields at once', { name: '', max_users: 99, extra: true }, ['name', 'max_users', 'extra']],
        ['an array body', [], ['body']],
        ['a __proto__ field', JSON.parse('{"name": "a", "__proto__": {"max_users": 99}}'), ['__proto__']],
        ['a field named like an Object method', { name: 'a', constructor: 1, toString: 2 }, ['constructor', 'toString']],
        ['a null body', null, ['body']],
      ];
      for (const [label, body, fields] of invalid) {
        it(`refuses ${label} with VALIDATION_ERROR naming each field`, async () => {
          const reply = await http(server.url, 'POST', '/api/sessions', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
          expectEnvelopeError(reply, 400, 'VALIDATION_ERROR');
          expect(reply.body.error.details).to.have.all.keys(...fields);
        });
      }

      it('refuses malformed JSON with VALIDATION_ERROR', async () => {
        const reply = await http(server.url, 'POST', '/api/sessions', { body: '{"name": "a",', headers: { 'content-type': 'application/json' } });
        expectEnvelopeError(reply, 400, 'VALIDATION_ERROR');
        expect(reply.body.error.details).to.have.property('body');
      });

      it('refuses a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
        const reply = await http(server.url, 'POST', '/api/sessions', { json: { name: 'a', padding: 'x'.repeat(64 * 1024) } });
        expectEnvelopeError(reply, 413, 'PAYLOAD_TOO_LARGE');
      });

      it('treats SQL-looking names as plain text', async () => {
        const name = "Robert'); DROP TABLE sessions;--";
        const created = await createSession(server.url, { name });
        const fetched = await http(server.url, 'GET', `/api/sessions/${created.id}`);
        expect(fetched.body.data.name).to.equal(name);
      });
    });

    describe('GET /api/sessions/{id}', () => {
      it('returns the session with participant_count', async () => {
        const created = await createSession(server.url, { max_users: 3 });
        const reply = await http(server.url, 'GET', `/api/sessions/${created.id}`);
        expect(reply.status).to.equal(200);
        expect(reply.body.success).to.equal(true);
        expect(reply.body.data).to.deep.equal({
          id: created.id,
          name: created.name,
          created_at: created.created_at,
          max_users: 3,
          is_active: true,
          participant_count: 0,
        });
      });

      const badIds = [
        ['an unknown UUID', randomUUID()],
        ['a malformed id', 'not-a-uuid'],
        ['an SQL-looking id', encodeURIComponent("1' OR '1'='1")],
        ['a 5,000-character id', 'a'.repeat(5000)],
        ['a percent-encoded NUL', '%00'],
        ['a malformed percent-escape', '%zz'],
      ];
      for (const [label, id] of badIds) {
        it(`answers 404 SESSION_NOT_FOUND for ${label}`, async () => {
          expectEnvelopeError(await http(server.url, 'GET', `/api/sessions/${id}`), 404, 'SESSION_NOT_FOUND');
        });
      }
    });
  });
}

describe('REST surface', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { CORS_ORIGINS: 'http://frontend.test:3000' } });
  });
  after(async () => server?.close());

  it('puts X-Request-Id and X-Seance-Node on every reply, keeping a sane incoming id', async () => {
    for (const path of ['/health', '/api/sessions/x', '/nowhere', '/openapi.json']) {
      const reply = await http(server.url, 'GET', path, { headers: { 'x-request-id': 'trace-123' } });
      expect(reply.headers.get('x-request-id'), path).to.equal('trace-123');
      expect(reply.headers.get('x-seance-node'), path).to.equal(server.config.nodeId);
    }
    const generated = await http(server.url, 'GET', '/health', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
  });

  it('names the node on Socket.IO long-polling replies too', async () => {
    const reply = await http(server.url, 'GET', '/socket.io/?EIO=4&transport=polling');
    expect(reply.status).to.equal(200);
    expect(reply.headers.get('x-seance-node')).to.equal(server.config.nodeId);
  });

  it('lets browsers read the request id and node headers', async () => {
    const reply = await http(server.url, 'GET', '/health', { headers: { origin: 'http://frontend.test:3000' } });
    expect(reply.headers.get('access-control-expose-headers')).to.include('X-Request-Id').and.include('X-Seance-Node');
  });

  it('answers unknown routes with 404 NOT_FOUND in the envelope', async () => {
    for (const [method, path] of [
      ['GET', '/nowhere'],
      ['POST', '/api/nothing'],
      ['PUT', '/api/sessions'],
    ]) {
      expectEnvelopeError(await http(server.url, method, path), 404, 'NOT_FOUND');
    }
  });

  it('redirects / to /docs and serves Swagger UI', async () => {
    const root = await http(server.url, 'GET', '/');
    expect(root.status).to.equal(302);
    expect(root.headers.get('location')).to.equal('/docs');
    const docs = await http(server.url, 'GET', '/docs/');
    expect(docs.status).to.equal(200);
    expect(docs.text).to.include('swagger-ui');
    const init = await http(server.url, 'GET', '/docs/swagger-ui-init.js');
    expect(init.status).to.equal(200);
  });

  it('documents every endpoint, with schemas and error replies, in /openapi.json', async () => {
    const doc = (await http(server.url, 'GET', '/openapi.json')).body;
    expect(doc.openapi).to.match(/^3\./);
    const expected: Record<string, string[]> = {
      '/api/sessions': ['post'],
      '/api/sessions/{id}': ['get', 'delete'],
      '/api/sessions/{id}/history': ['get'],
      '/api/sessions/{id}/participants': ['get'],
      '/api/auth/token': ['post'],
      '/api/sessions/{id}/messages/{message_id}/audio': ['get'],
      '/api/tts/generate': ['post'],
      '/health': ['get'],
      '/': ['get'],
      '/docs': ['get'],
      '/openapi.json': ['get'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      for (const method of methods) expect(doc.paths[path]?.[method], `${method} ${path}`).to.be.an('object');
    }
    expect(Object.keys(doc.paths['/api/sessions'].post.responses)).to.include.members(['201', '400', '413', '429']);
    expect(Object.keys(doc.paths['/api/sessions/{id}'].delete.responses)).to.include.members(['200', '401', '403', '404']);
    expect(Object.keys(doc.paths['/api/tts/generate'].post.responses['200'].content)).to.have.members(['audio/wav', 'audio/mpeg']);
    expect(Object.keys(doc.paths['/api/tts/generate'].post.responses)).to.include.members(['200', '400', '429']);
    expect(doc.components.schemas.Session.properties).to.have.all.keys('id', 'name', 'created_at', 'max_users', 'is_active');
  });

  it('answers CORS preflight for allowed origins with credentials and the contract methods', async () => {
    const reply = await http(server.url, 'OPTIONS', '/api/sessions', {
      headers: { origin: 'http://frontend.test:3000', 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(reply.status).to.be.oneOf([200, 204]);
    expect(reply.headers.get('access-control-allow-origin')).to.equal('http://frontend.test:3000');
    expect(reply.headers.get('access-control-allow-credentials')).to.equal('true');
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) expect(reply.headers.get('access-control-allow-methods')).to.include(method);
  });

  it('does not grant CORS to other origins', async () => {
    const reply = await http(server.url, 'GET', '/health', { headers: { origin: 'http://evil.test' } });
    expect(reply.headers.get('access-control-allow-origin')).to.equal(null);
  });

  it('reports health with the database and node', async () => {
    const reply = await http(server.url, 'GET', '/health');
    expect(reply.status).to.equal(200);
    expect(reply.body).to.include({ status: 'healthy', database: 'connected', redis: 'disabled', node_id: server.config.nodeId });
    expect(reply.body.uptime_s).to.be.a('number');
    expect(reply.body.timestamp).to.match(ISO);
    expect(reply.body).not.to.have.property('success');
  });
});
