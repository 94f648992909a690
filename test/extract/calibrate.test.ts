/**
 * `extract --calibrate` on real short fine-tunes (Python-built): the calibrated factors have a
 * lower output error than the plain SVD at the same rank on the calibration inputs
 * (module by module and model-level), a higher weight error, and extraction.json reports both
 * beside plain SVD's; budgets are spent within the budget; and on held-out text the calibrated
 * adapter's KL(tuned ‖ merged) is below plain SVD's at ranks 2, 4, 8, 16 (heldout-kl.ts;
 * calibrate-heldout.test.ts covers the other families).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CODE, PROSE } from '../../src/train/texts.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';
import { runCli } from '../helpers/run-cli.js';
import { assertHeldOutGains } from './heldout-kl.js';

const SCRIPT = fileURLToPath(new URL('../model/finetune.py', import.meta.url));
const FAMILIES = ['llama', 'qwen2', 'phi3'];
const RANK = 4;
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-calibrate-'));
  await writeFile(join(dir, 'texts.json'), JSON.stringify({ prose: PROSE, code: CODE }));
  if (!NO_PYTHON) await runPython(SCRIPT, [join(dir, 'texts.json'), dir, FAMILIES.join(','), String(RANK), '64']);
});
after(() => rm(dir, { recursive: true, force: true }));

async function extract(family: string, name: string, extra: string[]) {
  const out = join(dir, family, name);
  await runCli([
    'extract',
    join(dir, family, 'base'),
    join(dir, family, 'tuned'),
    '--out',
    out,
    '--dtype',
    'f32',
    '--quiet',
    ...extra,
  ]);
  return { out, doc: JSON.parse(await readFile(join(out, 'extraction.json'), 'utf8')) };
}

for (const family of FAMILIES) {
  test(`${family}: calibrated rank-${RANK} factors lower the output error the plain SVD leaves`, {
    skip: NO_PYTHON,
  }, async (t) => {
    const calib = ['--calibrate', join(dir, 'calibration.txt'), '--seq-len', '64'];
    const plain = await extract(family, 'plain', ['--rank', String(RANK)]);
    const cal = await extract(family, 'cal', ['--rank', String(RANK), ...calib]);
    const layered = cal.doc.modules.filter((m: { module: string }) => m.module.includes('.layers.'));
    assert.equal(layered.length, family === 'phi3' ? 8 : 14);
    const plainByModule = new Map(
      plain.doc.modules.map((m: { module: string; relativeError: number }) => [m.module, m.relativeError]),
    );
    for (const m of layered) {
      const c = m.calibrated;
      assert.ok(c, `${m.module}: no calibrated errors`);
      assert.ok(
        c.outputError < c.svdOutputError,
        `${m.module}: output error ${c.outputError} vs plain ${c.svdOutputError}`,
      );
      // The plain SVD is the weight-error optimum: calibrated factors give some of it up.
      assert.ok(
        m.relativeError >= c.svdWeightError * (1 - 1e-4),
        `${m.module}: weight error ${m.relativeError} below the SVD's ${c.svdWeightError}`,
      );
      assert.ok(
        Math.abs(c.svdWeightError - (plainByModule.get(m.module) as number)) < 1e-3,
        `${m.module}: plain weight error ${c.svdWeightError} vs extract's ${plainByModule.get(m.module)}`,
      );
    }
    const s = cal.doc.calibration;
    assert.equal(s.inputs, 'extracted');
    assert.ok(s.outputError < s.svdOutputError && s.tokens > 1000, JSON.stringify(s));
    t.diagnostic(
      `${family} rank ${RANK}: output error ${s.outputError.toFixed(4)} vs plain ${s.svdOutputError.toFixed(4)}`,
    );
  });
  test(
    `${family}: calibrated extraction beats plain SVD on held-out KL at ranks 2, 4, 8, 16`,
    { skip: NO_PYTHON },
    (t) => assertHeldOutGains(t, dir, family),
  );
}

test('--calibrate with a budget allocates by output-error gains within the budget; --energy in the output metric', {
  skip: NO_PYTHON,
}, async () => {
  const calib = ['--calibrate', join(dir, 'calibration.txt'), '--seq-len', '64', '--calibrate-inputs', 'tuned'];
  const budget = await extract('llama', 'budget', ['--budget', '20k', ...calib]);
  assert.ok(
    budget.doc.summary.loraParams <= 20_000 && budget.doc.summary.loraParams > 15_000,
    String(budget.doc.summary.loraParams),
  );
  assert.equal(budget.doc.calibration.inputs, 'tuned');
  assert.ok(
    budget.doc.skipped.some((s: { reason: string }) => /not calibrated/.test(s.reason)) ||
      budget.doc.modules.every((m: { module: string }) => m.module.includes('.layers.')),
  );
  const ranks = budget.doc.modules.map((m: { rank: number }) => m.rank);
  assert.ok(new Set(ranks).size > 1, `the budget gave every module rank ${ranks[0]}`);
  const energy = await extract('llama', 'energy', ['--energy', '0.8', ...calib]);
  for (const m of energy.doc.modules.filter((m: { module: string }) => m.module.includes('.layers.'))) {
    // Output energy ≥ 0.8 means a damped output error ≤ √0.2; the undamped error sits close to it.
    assert.ok(m.calibrated.outputError < Math.sqrt(0.2) * 1.1, `${m.module}: ${m.calibrated.outputError}`);
  }
});
