/**
 * Swagger UI as a person opens it: over plain HTTP, under a host name other than
 * localhost (browsers upgrade or block less for localhost), in real headless Chromium.
 * Every operation of /openapi.json must be rendered.
 */
import { expect } from 'chai';
import { launchBrowser, withScreenshotOnFailure, type BrowserSession } from '../support/browser';
import { http } from '../support/clients';
import { startTestServer, type TestServer } from '../support/server';

const HOST = 'seance.test';
const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

describe('Swagger UI in Chromium', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: BrowserSession;

  before(async () => {
    server = await startTestServer({ database: 'sqlite' });
    browser = await launchBrowser([HOST]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it(`renders every operation at http://${HOST}:PORT/docs over plain HTTP`, async () => {
    const doc = (await http(server.url, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item).filter((m) => METHODS.has(m))).length;
    expect(operations).to.be.at.least(10);

    const { page } = browser;
    const failed: string[] = [];
    page.on('requestfailed', (req) => failed.push(`${req.url()} ${req.failure()?.errorText ?? ''}`));
    await withScreenshotOnFailure(page, 'swagger-ui', async () => {
      const reply = await page.goto(`http://${HOST}:${server.port}/docs/`, { waitUntil: 'load' });
      expect(reply?.status()).to.equal(200);
      await page
        .locator('.opblock')
        .first()
        .waitFor({ timeout: 15_000 })
        .catch((err: Error) => {
          throw new Error(`no operation rendered (${err.message.split('\n')[0]}); failed requests: ${failed.join(' | ') || 'none'}`);
        });
      expect(await page.locator('.opblock').count()).to.equal(operations);
      expect(failed, 'every asset loads over http').to.deep.equal([]);
    });
  });
});
