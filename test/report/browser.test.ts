import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderAnalyzeReport, writeReport } from '../../src/report/index.js';
import { TINYLLAMA, llamaResult } from './synthetic.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

test(
  'the analyze report renders offline in headless Chromium: every plot drawn, no console error, no request',
  { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium): report rendering not checked`, timeout: 120_000 },
  async () => {
    const { chromium } = await import('playwright-core');
    const dir = await mkdtemp(join(tmpdir(), 'deltarank-browser-'));
    const file = join(dir, 'report.html');
    const { result } = llamaResult(TINYLLAMA);
    await writeReport(file, renderAnalyzeReport(result));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
      await page.waitForSelector('body[data-plots-ready]', { timeout: 60_000 });
      const missing = await page.evaluate(() =>
        [...document.querySelectorAll('.dr-plot')].filter((d) => !d.querySelector('.main-svg')).map((d) => d.id),
      );
      assert.deepEqual(missing, [], 'every plot div holds a drawn figure');
      const plots = await page.evaluate(() => document.querySelectorAll('.dr-plot').length);
      assert.equal(plots, 5);
      assert.ok(await page.evaluate(() => document.querySelectorAll('#dr-heatmap-plot .heatmaplayer image').length >= 1), 'heatmap image drawn');
      // the q view: 22 curves, r90/r95/r99 markers, the layer colour bar
      assert.equal(await page.evaluate(() => document.querySelectorAll('#dr-energy-plot .scatterlayer .trace').length), 22 + 3 + 1, 'energy traces drawn');

      // the views respond: another heatmap mode, another module type, another tensor, a sorted table
      await page.click('#dr-heatmap-plot .updatemenu-button >> nth=2');
      await page.selectOption('#dr-scree-pick', { index: 40 });
      await page.waitForFunction(() => (document.querySelector('#dr-scree-plot .gtitle')?.textContent ?? '').includes('layers.5.'));
      const title = await page.textContent('#dr-scree-plot .gtitle');
      assert.match(title ?? '', /layers\.5\.\w+\.\w+_proj · \d+×\d+/);
      const firstRow = () => page.evaluate(() => [...document.querySelectorAll('#dr-tensor-table tbody tr:first-child td')].map((td) => td.textContent));
      const r90 = 'th:nth-child(8)';
      assert.equal(await page.textContent(`#dr-tensor-table thead ${r90}`), 'r90');
      await page.click(`#dr-tensor-table thead ${r90}`);
      await page.click(`#dr-tensor-table thead ${r90}`);
      // descending r90: the deepest down_proj has the largest planted τ
      assert.equal((await firstRow())[0], 'layers.21.mlp.down_proj');
      await page.click('#dr-tensor-table thead th:nth-child(10)');
      const least99 = Math.min(...result.tensors.map((t) => t.rankAt['0.99'] ?? Infinity));
      assert.equal((await firstRow())[9], String(least99), 'ascending r99 starts at the smallest');
      await page.click('#dr-tensor-table thead th:nth-child(10)');
      assert.equal((await firstRow())[9], '> 300', 'unreached ranks sort above every number');
      await page.click('#dr-heatmap-plot .updatemenu-button >> nth=0');

      assert.deepEqual(errors, [], 'no console error');
      assert.deepEqual(requests, [], 'no network request');
      await mkdir(ARTIFACTS, { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(ARTIFACTS, 'report-analyze.png'), fullPage: true });
    } finally {
      await browser.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
