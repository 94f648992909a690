import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** The skip reason for report rendering tests where no Chromium is installed (CI installs it). */
export const NO_CHROMIUM = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (apt-get install chromium): report rendering not checked`;

export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

export interface Rendered {
  /** Console errors and uncaught page errors. */
  errors: string[];
  /** Requests that left the file: the report must make none. */
  requests: string[];
  /** Ids of `.dr-plot` divs with no drawn figure. */
  missing: string[];
  plots: number;
  /** Ids of the page's sections. */
  sections: string[];
}

/**
 * Open an HTML report offline in headless Chromium, wait for every plot, run `interact` on the
 * page (clicks, assertions), take a full-page screenshot to test-artifacts/<name>.png, and say
 * what went wrong (errors raised during `interact` included).
 */
export async function renderInChromium(
  file: string,
  name: string,
  interact?: (page: Page) => Promise<void>,
): Promise<Rendered> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const context = await browser.newContext({ offline: true, viewport: { width: 1366, height: 900 } });
    const requests: string[] = [];
    await context.route('**', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
      requests.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('body[data-plots-ready]', { timeout: 90_000 });
    const missing = await page.evaluate(() =>
      [...document.querySelectorAll('.dr-plot')].filter((d) => !d.querySelector('.main-svg')).map((d) => d.id),
    );
    const plots = await page.evaluate(() => document.querySelectorAll('.dr-plot').length);
    const sections = await page.evaluate(() => [...document.querySelectorAll('section.dr-card')].map((s) => s.id));
    if (interact) {
      await interact(page);
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    return { errors, requests, missing, plots, sections };
  } finally {
    await browser.close();
  }
}
