/**
 * Real headless Chromium for tests: Debian's /usr/bin/chromium driven by playwright-core
 * (no browser download), a fresh profile per launch, screenshots kept when a test fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** Where failing browser tests leave their screenshots (kept by CI as artifacts). */
export const ARTIFACTS_DIR = path.resolve(__dirname, '..', '..', 'test-artifacts');

/** Playwright gives each launch a fresh temporary --user-data-dir of its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Saves a full-page screenshot of each page as test-artifacts/<name>-<label>.png; never throws. */
export async function saveScreenshots(name: string, pages: Record<string, Page | undefined>): Promise<string[]> {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const saved: string[] = [];
  const base = name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 80);
  for (const [label, page] of Object.entries(pages)) {
    if (!page || page.isClosed()) continue;
    const file = path.join(ARTIFACTS_DIR, `${base}-${label}.png`);
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
