import { expect } from 'chai';
import { http } from '../support/clients';
import { startTestServer, type TestServer } from '../support/server';

describe('security headers', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server?.close());

  it('sets helmet headers on API replies and hides the framework', async () => {
    const reply = await http(server.url, 'GET', '/api/sessions/nope');
    expect(reply.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(reply.headers.get('x-frame-options')).to.equal('SAMEORIGIN');
    expect(reply.headers.get('content-security-policy')).to.include("default-src 'self'");
    expect(reply.headers.get('x-powered-by')).to.equal(null);
  });

  it('serves plain HTTP without HSTS or upgrade-insecure-requests (BEHIND_TLS unset)', async () => {
    const reply = await http(server.url, 'GET', '/docs/');
    expect(reply.headers.get('strict-transport-security')).to.equal(null);
    expect(reply.headers.get('content-security-policy')).not.to.include('upgrade-insecure-requests');
  });

  it('adds HSTS and upgrade-insecure-requests when BEHIND_TLS says TLS is in front', async () => {
    const tls = await startTestServer({ database: 'sqlite', env: { BEHIND_TLS: 'true' } });
    try {
      const reply = await http(tls.url, 'GET', '/docs/');
      expect(reply.headers.get('strict-transport-security')).to.match(/max-age=\d+/);
      expect(reply.headers.get('content-security-policy')).to.include('upgrade-insecure-requests');
    } finally {
      await tls.close();
    }
  });

  it('keeps /docs working under its CSP: no inline scripts, every asset served from itself', async () => {
    const page = await http(server.url, 'GET', '/docs/');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).to.include("script-src 'self'");
    const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).to.be.above(0);
    for (const [, attrs, body] of scripts) {
      expect(body.trim(), 'inline script would be blocked by the CSP').to.equal('');
      const src = /src="\.?\/?([^"]+)"/.exec(attrs)![1];
      expect((await http(server.url, 'GET', `/docs/${src}`)).status, src).to.equal(200);
    }
    for (const [, href] of page.text.matchAll(/<link[^>]+href="\.?\/?([^"]+)"/g)) {
      expect((await http(server.url, 'GET', `/docs/${href}`)).status, href).to.equal(200);
    }
  });
});
