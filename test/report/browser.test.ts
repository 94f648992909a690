import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderAnalyzeReport, writeReport } from '../../src/report/index.js';
import { NO_CHROMIUM, renderInChromium } from '../helpers/browser.js';
import { llamaResult, TINYLLAMA } from './synthetic.js';

test('the analyze report renders offline in headless Chromium: every plot drawn, no console error, no request', {
  skip: NO_CHROMIUM,
  timeout: 120_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltarank-browser-'));
  const file = join(dir, 'report.html');
  const { result } = llamaResult(TINYLLAMA);
  await writeReport(file, renderAnalyzeReport(result));
  try {
    const shown = await renderInChromium(file, 'report-analyze', async (page) => {
      assert.ok(
        await page.evaluate(() => document.querySelectorAll('#dr-heatmap-plot .heatmaplayer image').length >= 1),
        'heatmap image drawn',
      );
      // the q view: 22 curves, r90/r95/r99 markers, the layer colour bar
      assert.equal(
        await page.evaluate(() => document.querySelectorAll('#dr-energy-plot .scatterlayer .trace').length),
        22 + 3 + 1,
        'energy traces drawn',
      );

      // the views respond: another heatmap mode, another module type, another tensor, a sorted table
      await page.click('#dr-heatmap-plot .updatemenu-button >> nth=2');
      await page.selectOption('#dr-scree-pick', { index: 40 });
      await page.waitForFunction(() =>
        (document.querySelector('#dr-scree-plot .gtitle')?.textContent ?? '').includes('layers.5.'),
      );
      const title = await page.textContent('#dr-scree-plot .gtitle');
      assert.match(title ?? '', /layers\.5\.\w+\.\w+_proj · \d+×\d+/);
      const firstRow = () =>
        page.evaluate(() =>
          [...document.querySelectorAll('#dr-tensor-table tbody tr:first-child td')].map((td) => td.textContent),
        );
      const r90 = 'th:nth-child(8)';
      assert.equal(await page.textContent(`#dr-tensor-table thead ${r90}`), 'r90');
      await page.click(`#dr-tensor-table thead ${r90}`);
      await page.click(`#dr-tensor-table thead ${r90}`);
      // descending r90: the deepest down_proj has the largest planted τ
      assert.equal((await firstRow())[0], 'layers.21.mlp.down_proj');
      await page.click('#dr-tensor-table thead th:nth-child(10)');
      const least99 = Math.min(
        ...result.tensors.map((t) => (typeof t.rankAt['0.99'] === 'number' ? t.rankAt['0.99'] : Infinity)),
      );
      assert.equal((await firstRow())[9], String(least99), 'ascending r99 starts at the smallest');
      await page.click('#dr-tensor-table thead th:nth-child(10)');
      assert.equal((await firstRow())[9], '> 300', 'unreached ranks sort above every number');
      await page.click('#dr-heatmap-plot .updatemenu-button >> nth=0');
    });
    assert.deepEqual(shown.missing, [], 'every plot div holds a drawn figure');
    assert.equal(shown.plots, 5);
    assert.deepEqual(shown.errors, [], 'no console error');
    assert.deepEqual(shown.requests, [], 'no network request');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
