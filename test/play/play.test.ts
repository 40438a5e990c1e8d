/**
 * The /play page in a real headless Chromium, on a 3-node cluster behind nginx: two people
 * in one séance see each other, one asks, both watch the spirit think and answer, and the
 * answer's audio (the built-in voice) loads in the page's audio element.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { parseWav } from '../support/audio';
import { collectErrors, launchBrowser, saveScreenshots, type BrowserSession } from '../support/browser';
import { sharedPostgres } from '../support/hooks';

const ORACLE_DELAY_MS = 1500;
/** What the test reads of an <audio> element (the project compiles without the DOM library). */
type MediaElement = { duration: number; readyState: number; currentSrc: string };

describe('/play in headless Chromium, 3 nodes behind nginx', function () {
  this.timeout(90_000);
  let cluster: ClusterHandle;
  const browsers: BrowserSession[] = [];
  const pages: Record<string, Page> = {};
  const errors: Record<string, string[]> = {};

  before(async () => {
    cluster = await startCluster({ nodes: 3, postgres: await sharedPostgres(), env: { SPIRIT_ORACLE_DELAY_MS: String(ORACLE_DELAY_MS) } });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      const saved = await saveScreenshots(this.currentTest.fullTitle(), pages);
      if (saved.length > 0) console.log(`      screenshots: ${saved.join(', ')}`);
    }
  });
  after(async () => {
    await Promise.all(browsers.map((b) => b.close().catch(() => undefined)));
    await cluster?.stop();
  });

  /** A person with a browser (and profile) of their own: their own localStorage, so their own user_id. */
  async function person(label: string): Promise<Page> {
    const browser = await launchBrowser();
    browsers.push(browser);
    const { page } = browser;
    errors[label] = collectErrors(page);
    pages[label] = page;
    return page;
  }

  it('lets two people open and join a séance by link, see each other, ask, watch the spirit think and answer, and hear it', async () => {
    const ann = await person('ann');
    const reply = await ann.goto(`${cluster.url}/play`);
    expect(reply?.status()).to.equal(200);
    const servedBy = reply?.headers()['x-seance-node'];
    expect(servedBy).to.match(/^node-[123]$/);
    await ann.locator('#node').filter({ hasText: servedBy! }).waitFor();

    await ann.fill('#name', 'Ann');
    await ann.click('#create');
    await ann.locator('#room').waitFor({ state: 'visible' });
    const link = await ann.locator('#share').getAttribute('href');
    expect(link).to.match(/\/play\?session=[0-9a-f-]{36}$/);
    const sessionId = link!.split('=')[1];

    const bob = await person('bob');
    await bob.goto(link!);
    expect(await bob.inputValue('#session')).to.equal(sessionId);
    await bob.fill('#name', 'Bob');
    await bob.click('#join');
    await bob.locator('#room').waitFor({ state: 'visible' });

    // Each sees both people.
    for (const page of [ann, bob]) {
      await page.locator('#people li', { hasText: 'Ann' }).waitFor();
      await page.locator('#people li', { hasText: 'Bob' }).waitFor();
    }
    expect(await bob.locator('#people li.me').innerText()).to.equal('Bob');

    await ann.fill('#question', 'Will the candle stay lit tonight?');
    await ann.click('#ask');
    for (const page of [ann, bob]) {
      await page.locator('#messages li.chat', { hasText: 'Will the candle stay lit tonight?' }).waitFor();
      // The oracle takes its time: the thinking state shows before the answer.
      await page.locator('#thinking').waitFor({ state: 'visible', timeout: 5_000 });
      expect(await page.locator('#messages li.spirit').count()).to.equal(0);
    }
    const answers = await Promise.all(
      [ann, bob].map((page) =>
        page
          .locator('#messages li.spirit')
          .first()
          .waitFor({ timeout: 10_000 })
          .then(() => page),
      ),
    );
    for (const page of answers) {
      await page.locator('#thinking').waitFor({ state: 'hidden' });
      const audio = page.locator('#messages li.spirit audio');
      await audio.and(page.locator('[data-state="loaded"]')).waitFor({ timeout: 20_000 });
      const media = await audio.evaluate((el) => ({
        duration: (el as unknown as MediaElement).duration,
        readyState: (el as unknown as MediaElement).readyState,
        src: (el as unknown as MediaElement).currentSrc,
      }));
      expect(media.readyState).to.be.at.least(2);
      expect(media.duration).to.be.above(1);
      expect(media.src).to.match(new RegExp(`/api/sessions/${sessionId}/messages/\\d+/audio$`));
    }
    const annText = await ann.locator('#messages li.spirit .text').innerText();
    expect(annText.toLowerCase()).to.equal((await bob.locator('#messages li.spirit .text').innerText()).toLowerCase());

    // The audio the pages played, from every node directly: the same WAV bytes.
    const audioPath = new URL(await ann.locator('#messages li.spirit audio').evaluate((el) => (el as unknown as MediaElement).currentSrc)).pathname;
    const bodies = await Promise.all(cluster.nodes.map(async (n) => Buffer.from(await (await fetch(n.url + audioPath)).arrayBuffer())));
    for (const body of bodies) expect(body.equals(bodies[0])).to.equal(true);
    expect(parseWav(bodies[0]).rms).to.be.above(0.05);

    // No CSP violation, no script error, on either page.
    expect(errors.ann, errors.ann.join('\n')).to.deep.equal([]);
    expect(errors.bob, errors.bob.join('\n')).to.deep.equal([]);
  });

  it('keeps `/` as the docs redirect', async () => {
    const res = await fetch(`${cluster.url}/`, { redirect: 'manual' });
    expect(res.status).to.equal(302);
    expect(res.headers.get('location')).to.equal('/docs');
  });

  // Last: it kills the node that serves the browsers.
  it('rejoins by itself, as the same person, when the node serving its connection dies', async () => {
    const cleo = await person('cleo');
    await cleo.goto(`${cluster.url}/play`);
    await cleo.fill('#name', 'Cleo');
    await cleo.click('#create');
    await cleo.locator('#room').waitFor({ state: 'visible' });
    await cleo.locator('#status[data-state="connected"]').waitFor();
    // The connection names its session, so nginx puts it on the session's node (not necessarily the page's).
    await cleo
      .locator('#node')
      .filter({ hasText: /^node-\d$/ })
      .waitFor();
    const servedBy = (await cleo.locator('#node').innerText()).trim();
    await cleo.fill('#question', 'Is anyone listening?');
    await cleo.click('#ask');
    await cleo.locator('#messages li.spirit').first().waitFor({ timeout: 15_000 });
    expect(await cleo.locator('#messages').getAttribute('data-resumed')).to.equal('false');

    const node = cluster.nodes.find((n) => n.nodeId === servedBy)!;
    node.kill('SIGKILL');
    await node.exited;
    // auth is a function: the reconnect (through nginx, to another node) joins again by itself.
    await cleo.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    await cleo.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
    await cleo
      .locator('#node')
      .filter({ hasNotText: servedBy })
      .filter({ hasText: /^node-\d$/ })
      .waitFor({ timeout: 10_000 });
    expect(await cleo.locator('#people li').allInnerTexts()).to.deep.equal(['Cleo']);
    // It resumed from the last seq it had seen (auth.last_seq): what was shown stays, once.
    await cleo.locator('#messages[data-resumed="true"]').waitFor();
    expect(await cleo.locator('#messages li').count()).to.equal(2);
    await cleo.fill('#question', 'Are you still there?');
    await cleo.click('#ask');
    await cleo.locator('#messages li.spirit').nth(1).waitFor({ timeout: 15_000 });
    expect(await cleo.locator('#messages li.chat').count()).to.equal(2);
    expect(await cleo.locator('#messages li.spirit').count()).to.equal(2);
  });
});
