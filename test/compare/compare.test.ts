import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CompareOutput, compareRun } from '../../src/compare/index.js';
import { FormatError } from '../../src/errors.js';
import { writeDirAtomically } from '../../src/io/index.js';
import { renderCompareReport, writeReport } from '../../src/report/index.js';
import { type TrainMetrics, trainTask, writeTrainOutput } from '../../src/train/index.js';
import { NO_CHROMIUM, renderInChromium } from '../helpers/browser.js';

let dir: string;
let metrics: TrainMetrics;
let result: CompareOutput;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-compare-'));
  const trained = await trainTask({
    task: 'mnist',
    epochs: 2,
    ranks: [2, 4, 16],
    variants: ['lora', 'dora', 'pissa'],
    seed: 3,
    model: { hidden: [48, 32], maxTrain: 800 },
  });
  metrics = trained.metrics;
  await writeDirAtomically(join(dir, 'run'), {}, (tmp) => writeTrainOutput(tmp, trained));
  result = await compareRun(join(dir, 'run'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('compare', () => {
  it('scores base and full as training did, and trained adapters through merge as training did', () => {
    const run = (name: string) => metrics.runs.find((r) => r.name === name)!;
    assert.ok(Math.abs(result.base.target - run('base').final.target.metric) < 1e-9);
    assert.ok(Math.abs(result.full.target - run('full').final.target.metric) < 1e-9);
    for (const row of result.ranks) {
      const r = run(`lora-r${row.rank}`);
      assert.ok(row.trained, `rank ${row.rank} was trained`);
      // Merged weights differ from the unmerged forward pass by f32 rounding only.
      assert.ok(
        Math.abs(row.trained.target - r.final.target.metric) <= 0.002,
        `r=${row.rank}: ${row.trained.target} vs ${r.final.target.metric}`,
      );
      assert.ok(
        Math.abs(row.trained.targetLoss - r.final.target.loss) <= 1e-4,
        `r=${row.rank}: loss ${row.trained.targetLoss} vs ${r.final.target.loss}`,
      );
      assert.equal(row.trained.params, r.trainableParams);
    }
  });

  it('scores every trained variant at every rank as training did (DoRA merged as PEFT merges it, PiSSA through its conversion onto the original base)', () => {
    assert.deepEqual(result.variants, ['lora', 'dora', 'pissa']);
    for (const row of result.ranks) {
      assert.deepEqual(
        row.variants.map((v) => v.variant),
        ['lora', 'dora', 'pissa'],
      );
      for (const v of row.variants) {
        const r = metrics.runs.find((x) => x.name === v.run)!;
        assert.equal(v.run, `${v.variant}-r${row.rank}`);
        assert.ok(
          Math.abs(v.targetLoss - r.final.target.loss) <= 1e-4,
          `${v.run}: loss ${v.targetLoss} vs ${r.final.target.loss}`,
        );
        assert.ok(Math.abs(v.sourceLoss - r.final.source.loss) <= 1e-4, `${v.run}: source loss`);
        assert.equal(v.params, r.trainableParams);
      }
    }
  });

  it('ΔM/ΔD series for full fine-tuning and every adapter, and intruder counts per layer', () => {
    assert.deepEqual(
      result.direction.map((d) => d.run),
      metrics.runs.filter((r) => r.kind !== 'base').map((r) => r.name),
    );
    for (const d of result.direction) {
      assert.equal(d.points.length, 2 * metrics.config.loraTargets.length);
      assert.ok(d.correlation === null || (d.correlation >= -1 - 1e-12 && d.correlation <= 1 + 1e-12));
    }
    assert.deepEqual(
      result.intruders.map((x) => x.run),
      ['full', ...metrics.runs.filter((r) => r.kind === 'lora').map((r) => r.name)],
    );
    for (const x of result.intruders) {
      assert.deepEqual(
        x.layers.map((l) => l.module),
        metrics.config.loraTargets,
      );
      for (const l of x.layers) {
        assert.equal(l.count, l.maxCos.filter((c) => c < 0.5).length);
        assert.ok(l.maxCos.every((c) => c > 0 && c <= 1 + 1e-5));
      }
      assert.equal(
        x.total,
        x.layers.reduce((n, l) => n + l.count, 0),
      );
    }
  });

  it('extracts at each rank into extracted-r{R}/, with error falling as rank grows', async () => {
    const folders = (await readdir(join(dir, 'run'))).filter((f) => f.startsWith('extracted-r')).sort();
    assert.deepEqual(folders, ['extracted-r16', 'extracted-r2', 'extracted-r4']);
    const errors = result.ranks.map((r) => r.extracted.relativeError);
    for (let i = 1; i < errors.length; i++)
      assert.ok(errors[i]! < errors[i - 1]!, `extraction error falls with rank: ${errors}`);
    assert.ok(result.full.target > result.base.target + 0.2, 'the fine-tune gains clearly on the target task');
  });

  it('subspace similarity lies in [0, 1] and Table 7 respects that W’s own directions capture most of W', () => {
    assert.ok(result.similarity.length > 0);
    for (const g of result.similarity)
      for (const row of g.phi) for (const v of row) assert.ok(v >= -1e-9 && v <= 1 + 1e-6, `${g.module}: φ = ${v}`);
    // φ(i, j)·min(i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖_F² can only grow as j adds columns.
    for (const g of result.similarity) {
      g.phi.forEach((row, a) => {
        const i = g.rows[a]!;
        for (let b = 1; b < row.length; b++) {
          const prev = row[b - 1]! * Math.min(i, g.cols[b - 1]!);
          assert.ok(
            row[b]! * Math.min(i, g.cols[b]!) >= prev - 1e-6,
            `${g.module} ${g.what}: ‖·‖² falls from j=${g.cols[b - 1]} to ${g.cols[b]}`,
          );
        }
      });
    }
    assert.ok(result.projections.length > 0);
    for (const p of result.projections) {
      // Eckart–Young: no rank-r pair of orthonormal bases captures more of W than W's own top-r singular directions.
      assert.ok(p.fromWeight >= p.fromDelta * (1 - 1e-4), `${p.module}: ${p.fromWeight} < ${p.fromDelta}`);
      assert.ok(p.fromWeight >= p.fromRandom * (1 - 1e-4), `${p.module}: ${p.fromWeight} < ${p.fromRandom}`);
      assert.ok(p.fromWeight <= p.weightNorm * (1 + 1e-4));
      assert.ok(Math.abs(p.amplification - p.deltaNorm / p.fromDelta) < 1e-9 * p.amplification);
    }
  });

  it('fails clearly on a folder that is not a training run', async () => {
    await assert.rejects(
      compareRun(join(dir, 'nowhere')),
      (e: unknown) => e instanceof FormatError && /metrics\.json: cannot read the training metrics/.test(e.message),
    );
  });

  it('its report renders offline with every section', { skip: NO_CHROMIUM, timeout: 120_000 }, async () => {
    const file = join(dir, 'compare.html');
    await writeReport(file, renderCompareReport(result));
    const r = await renderInChromium(file, 'report-compare');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.requests, []);
    assert.deepEqual(r.missing, []);
    for (const id of [
      'lora-vs-full',
      'magnitude-direction',
      'intruders',
      'lora-spectra',
      'subspace',
      'table7',
      'lora-extraction',
      'heatmap',
      'scree',
      'tensors',
    ])
      assert.ok(r.sections.includes(id), `section ${id}`);
  });
});
