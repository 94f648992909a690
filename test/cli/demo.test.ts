import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NO_CHROMIUM, renderInChromium } from '../helpers/browser.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let out: string;
before(async () => {
  out = await mkdtemp(join(tmpdir(), 'deltarank-demo-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

// What `npm start` runs (there with the default ranks and epochs, here fewer to stay fast).
it('deltarank demo writes the run and one report whose every section renders offline', {
  timeout: 300_000,
}, async () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'demo', '--out', out, '--ranks', '2,8', '--epochs', '2'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /1\/3 training on MNIST/);
  assert.match(r.stderr, new RegExp(`report: ${join(out, 'index.html').replace(/[.]/g, '\\.')}`));
  assert.match(r.stdout, /extracted LoRA r=8/);
  const run = await readdir(join(out, 'run'));
  for (const f of [
    'base',
    'full',
    'lora-r2',
    'lora-r8',
    'dora-r2',
    'dora-r8',
    'pissa-r2',
    'pissa-r8',
    'extracted-r2',
    'extracted-r8',
    'calibrated-r2',
    'calibrated-r8',
    'metrics.json',
    'compare.json',
  ])
    assert.ok(run.includes(f), `run/${f}`);
  const doc = JSON.parse(await readFile(join(out, 'run', 'compare.json'), 'utf8'));
  assert.equal(doc.ranks.length, 2);
  assert.deepEqual(doc.variants, ['lora', 'dora', 'pissa']);
  assert.match(r.stdout, /calibrated LoRA r=8/);
  for (const row of doc.ranks) {
    // Every calibrated layer's output error on the calibration inputs is at most the plain SVD's, at the same rank.
    for (const l of row.calibrated.layers)
      assert.ok(l.outputError <= l.svdOutputError * (1 + 1e-3) + 1e-6, `r=${row.rank} ${l.module}`);
    assert.equal(row.calibrated.params, row.extracted.params);
  }
  assert.match(r.stdout, /trained dora r=8/);
  if (NO_CHROMIUM) return;
  const shown = await renderInChromium(join(out, 'index.html'), 'demo');
  assert.deepEqual(shown.errors, []);
  assert.deepEqual(shown.requests, []);
  assert.deepEqual(shown.missing, []);
  assert.deepEqual(shown.sections, [
    'lora-vs-full',
    'calibrated-extraction',
    'magnitude-direction',
    'intruders',
    'lora-spectra',
    'subspace',
    'table7',
    'lora-extraction',
    'extraction-modules',
    'summary',
    'heatmap',
    'energy',
    'scree',
    'extraction',
    'tensors',
  ]);
});
