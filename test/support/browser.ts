/**
 * Real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for tests
 * that must see what a person's browser shows. Host names given here resolve to 127.0.0.1
 * inside the browser only (--host-resolver-rules), so a page can be loaded under a name
 * other than localhost while all traffic stays on loopback. Nothing is downloaded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Chromium with a fresh profile, mapping each of `hostNames` to 127.0.0.1. */
export async function launchBrowser(hostNames: string[] = []): Promise<BrowserSession> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-chromium-'));
  const rules = hostNames.map((h) => `MAP ${h} 127.0.0.1`).join(', ');
  let context: BrowserContext;
  try {
    // A persistent context is how playwright takes a user-data-dir of our choosing.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        ...(rules ? [`--host-resolver-rules=${rules}`] : []),
      ],
    });
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Where failing browser tests leave their screenshots (kept after the run). */
export const ARTIFACTS_DIR = path.join(os.tmpdir(), 'seance-test-artifacts');

/** Runs `check`; when it fails, saves a screenshot and names its path in the error. */
export async function withScreenshotOnFailure(page: Page, name: string, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const file = path.join(ARTIFACTS_DIR, `${name}-${Date.now()}.png`);
    const saved = await page.screenshot({ path: file, fullPage: true }).then(
      () => `screenshot: ${file}`,
      (shotErr: Error) => `no screenshot (${shotErr.message})`,
    );
    if (err instanceof Error) err.message += `\n${saved}`;
    throw err;
  }
}

/** Saves a full-page screenshot of each page in ARTIFACTS_DIR; never throws. */
export async function saveScreenshots(name: string, pages: Record<string, Page | undefined>): Promise<string[]> {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const saved: string[] = [];
  const base = name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 80);
  for (const [label, page] of Object.entries(pages)) {
    if (!page || page.isClosed()) continue;
    const file = path.join(ARTIFACTS_DIR, `${base}-${label}-${Date.now()}.png`);
    await page.screenshot({ path: file, fullPage: true }).then(
      () => saved.push(file),
      () => undefined,
    );
  }
  return saved;
}

/** Console errors, uncaught exceptions and failed requests of a page (a CSP violation shows up here). */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('response', (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()} ${response.url()}`);
  });
  return errors;
}
