import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NO_CHROMIUM, renderInChromium } from '../helpers/browser.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NOTEBOOKS: [string, string][] = [
  ['01-energy-concentration.ts', 'energy-concentration.html'],
  ['02-extract-verify-merge.ts', 'extract-verify-merge.html'],
  ['03-lora-vs-full.ts', 'lora-vs-full.html'],
];

let reports: string;
before(async () => {
  reports = await mkdtemp(join(tmpdir(), 'deltarank-notebooks-'));
});
after(async () => {
  await rm(reports, { recursive: true, force: true });
});

describe('notebooks run at small settings and their reports render', () => {
  for (const [file, report] of NOTEBOOKS) {
    it(file, { timeout: 180_000 }, async () => {
      // The notebooks import the package by name ('deltarank'), i.e. the built dist/ (npm test builds first).
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'notebooks', file), '--small'], {
        cwd: ROOT,
        env: { ...process.env, DELTARANK_REPORTS: reports },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `${file} exited ${r.status}:\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`report: .*${report.replace('.', '\\.')}`));
      assert.ok((await readdir(reports)).includes(report));
      if (NO_CHROMIUM) return;
      const shown = await renderInChromium(join(reports, report), `notebook-${report.replace('.html', '')}`);
      assert.deepEqual(shown.errors, []);
      assert.deepEqual(shown.requests, []);
      assert.deepEqual(shown.missing, []);
      assert.ok(shown.plots >= 4, `${report}: ${shown.plots} plots`);
    });
  }
});
