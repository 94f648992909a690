import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CompareOutput, compareRun } from '../../src/compare/index.js';
import { FormatError } from '../../src/errors.js';
import { type Adapter, loraScale, readAdapter, writeDirAtomically } from '../../src/io/index.js';
import { renderCompareReport, writeReport } from '../../src/report/index.js';
import { loadModel, loadTaskData, type TrainMetrics, trainTask, writeTrainOutput } from '../../src/train/index.js';
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

/** W + s·B·A of every module of `adapter`, in f64 (biases and other tensors as they are). */
function merged(weights: Map<string, Float32Array>, adapter: Adapter): Map<string, Float64Array> {
  const out = new Map([...weights].map(([k, v]) => [k, Float64Array.from(v)]));
  for (const m of adapter.modules) {
    const w = out.get(`${m.module}.weight`)!;
    const s = loraScale(m, adapter.config['use_rslora'] === true);
    for (let i = 0; i < m.outFeatures; i++)
      for (let j = 0; j < m.inFeatures; j++) {
        let d = 0;
        for (let k = 0; k < m.rank; k++) d += m.b[i * m.rank + k]! * m.a[k * m.inFeatures + j]!;
        w[i * m.inFeatures + j]! += s * d;
      }
  }
  return out;
}

/** The MLP's forward pass in f64 over `n` images: the input of every Linear layer (in order) and the logits. */
function mlpForward(w: Map<string, Float64Array | Float32Array>, hidden: number[], images: Float32Array, n: number) {
  const names = [...hidden.map((_, i) => `model.layers.${i}.fc`), 'classifier'];
  let x: Float64Array = Float64Array.from(images);
  let width = images.length / n;
  const inputs: { module: string; x: Float64Array; cols: number }[] = [];
  for (const [l, name] of names.entries()) {
    inputs.push({ module: name, x, cols: width });
    const wt = w.get(`${name}.weight`)!;
    const bias = w.get(`${name}.bias`)!;
    const out = bias.length;
    const y = new Float64Array(n * out);
    for (let e = 0; e < n; e++)
      for (let i = 0; i < out; i++) {
        let v = bias[i]!;
        for (let j = 0; j < width; j++) v += wt[i * width + j]! * x[e * width + j]!;
        y[e * out + i] = l < hidden.length ? Math.max(0, v) : v;
      }
    x = y;
    width = out;
  }
  return { inputs, logits: x, classes: width };
}

function logSoftmax(z: Float64Array, classes: number): Float64Array {
  const out = new Float64Array(z.length);
  for (let o = 0; o < z.length; o += classes) {
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) mx = Math.max(mx, z[o + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(z[o + c]! - mx);
    for (let c = 0; c < classes; c++) out[o + c] = z[o + c]! - mx - Math.log(sum);
  }
  return out;
}

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
    const folders = (await readdir(join(dir, 'run'))).filter((f) => /^(extracted|calibrated)-r/.test(f)).sort();
    assert.deepEqual(folders, [
      'calibrated-r16',
      'calibrated-r2',
      'calibrated-r4',
      'extracted-r16',
      'extracted-r2',
      'extracted-r4',
    ]);
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

  it('calibrated extraction: per layer, the output error recomputed from the calibration inputs, never above the plain SVD’s, whose weight error it never beats', async () => {
    const hidden = [48, 32];
    const base = await loadModel('mnist', join(dir, 'run', 'base'));
    const full = await loadModel('mnist', join(dir, 'run', 'full'));
    // The calibration examples: the target task's training split (the rule of compare.json's `calibration`), never its test split.
    const train = (await loadTaskData('mnist', base.config)).target.train;
    const n = Math.min(train.size, 2048);
    assert.deepEqual(result.calibration, { split: 'target', part: 'train', examples: n, rows: n, inputs: 'extracted' });
    const batch = train.batch(Int32Array.from({ length: n }, (_, i) => Math.floor((i * train.size) / n)));
    for (const row of result.ranks) {
      const plain = await readAdapter(join(dir, 'run', `extracted-r${row.rank}`));
      const cal = await readAdapter(join(dir, 'run', `calibrated-r${row.rank}`));
      // With `extracted` inputs, layer l reads what the base with the calibrated layers before it computes.
      const { inputs } = mlpForward(merged(base.weights, cal), hidden, batch.inputs as Float32Array, n);
      assert.equal(row.calibrated.layers.length, 3);
      let num = 0;
      let svdNum = 0;
      let den = 0;
      for (const layer of row.calibrated.layers) {
        const { x, cols } = inputs.find((i) => i.module === layer.module)!;
        const err = (ad: Adapter) => {
          const m = ad.modules.find((q) => q.module === layer.module)!;
          const s = loraScale(m, false);
          const w = full.weights.get(`${layer.module}.weight`)!;
          const w0 = base.weights.get(`${layer.module}.weight`)!;
          const out = m.outFeatures;
          // R = ΔW − s·B·A, then ‖R·x‖² and ‖ΔW·x‖² example by example (no Gram matrix).
          const r = new Float64Array(out * cols);
          const d = new Float64Array(out * cols);
          for (let i = 0; i < out; i++)
            for (let j = 0; j < cols; j++) {
              let ba = 0;
              for (let k = 0; k < m.rank; k++) ba += m.b[i * m.rank + k]! * m.a[k * cols + j]!;
              d[i * cols + j] = w[i * cols + j]! - w0[i * cols + j]!;
              r[i * cols + j] = d[i * cols + j]! - s * ba;
            }
          let e2 = 0;
          let n2 = 0;
          for (let e = 0; e < n; e++)
            for (let i = 0; i < out; i++) {
              let u = 0;
              let v = 0;
              for (let j = 0; j < cols; j++) {
                u += r[i * cols + j]! * x[e * cols + j]!;
                v += d[i * cols + j]! * x[e * cols + j]!;
              }
              e2 += u * u;
              n2 += v * v;
            }
          return { e2, n2, rank: m.rank };
        };
        const c = err(cal);
        const p = err(plain);
        assert.equal(layer.rank, c.rank);
        assert.equal(layer.rank, p.rank);
        assert.equal(layer.rows, n);
        const tol = (v: number) => 2e-3 * v + 2e-4;
        assert.ok(
          Math.abs(layer.outputError - Math.sqrt(c.e2 / c.n2)) <= tol(layer.outputError),
          `r=${row.rank} ${layer.module}: ${layer.outputError} vs ${Math.sqrt(c.e2 / c.n2)}`,
        );
        assert.ok(
          Math.abs(layer.svdOutputError - Math.sqrt(p.e2 / p.n2)) <= tol(layer.svdOutputError),
          `r=${row.rank} ${layer.module}: plain ${layer.svdOutputError} vs ${Math.sqrt(p.e2 / p.n2)}`,
        );
        // The calibrated factors minimise the (slightly damped) output error: never above the plain SVD's beyond rounding.
        assert.ok(
          c.e2 <= p.e2 * (1 + 1e-3) + 1e-8 * c.n2,
          `r=${row.rank} ${layer.module}: calibrated ${c.e2} > plain ${p.e2}`,
        );
        // Eckart–Young: the plain SVD's weight error is the least of any rank-r factors.
        assert.ok(
          layer.weightError >= layer.svdWeightError * (1 - 1e-4) - 1e-6,
          `r=${row.rank} ${layer.module}: weight error`,
        );
        num += c.e2;
        svdNum += p.e2;
        den += c.n2;
      }
      assert.ok(
        Math.abs(row.calibrated.outputError - Math.sqrt(num / den)) <= 2e-3 * row.calibrated.outputError + 2e-4,
      );
      assert.ok(
        Math.abs(row.extracted.outputError - Math.sqrt(svdNum / den)) <= 2e-3 * row.extracted.outputError + 2e-4,
      );
      assert.ok(row.calibrated.relativeError >= row.extracted.relativeError * (1 - 1e-4));
      assert.equal(row.calibrated.params, row.extracted.params);
    }
    // Below full rank of the first layer, calibration lowers the output error clearly.
    assert.ok(result.ranks[0]!.calibrated.outputError < 0.9 * result.ranks[0]!.extracted.outputError);
  });

  it('scores plain and calibrated extractions and their fidelity to the full fine-tune, recomputed in f64 on the test examples', async () => {
    const hidden = [48, 32];
    const base = await loadModel('mnist', join(dir, 'run', 'base'));
    const full = await loadModel('mnist', join(dir, 'run', 'full'));
    const data = await loadTaskData('mnist', base.config);
    for (const split of ['target', 'source'] as const) {
      const test = data[split].test;
      const batch = test.batch(Int32Array.from({ length: test.size }, (_, i) => i));
      const n = test.size;
      const run = (w: Map<string, Float64Array | Float32Array>) => {
        const { logits, classes } = mlpForward(w, hidden, batch.inputs as Float32Array, n);
        return { lp: logSoftmax(logits, classes), classes };
      };
      const ref = run(full.weights);
      const argmax = (lp: Float64Array, o: number, k: number) => {
        let best = 0;
        for (let c = 1; c < k; c++) if (lp[o + c]! > lp[o + best]!) best = c;
        return best;
      };
      const check = (
        w: Map<string, Float64Array | Float32Array>,
        got: { kl: number; top1: number },
        metric: number,
        what: string,
      ) => {
        const { lp, classes } = run(w);
        let kl = 0;
        let agree = 0;
        let correct = 0;
        for (let e = 0; e < n; e++) {
          const o = e * classes;
          for (let c = 0; c < classes; c++) kl += Math.exp(ref.lp[o + c]!) * (ref.lp[o + c]! - lp[o + c]!);
          if (argmax(lp, o, classes) === argmax(ref.lp, o, classes)) agree++;
          if (argmax(lp, o, classes) === batch.labels[e]) correct++;
        }
        assert.ok(Math.abs(got.kl - kl / n) <= 2e-3 * (kl / n) + 1e-6, `${what} ${split}: KL ${got.kl} vs ${kl / n}`);
        // f32 against f64 logits may flip a near-tie or two.
        assert.ok(Math.abs(got.top1 - agree / n) <= 0.003, `${what} ${split}: top-1 ${got.top1} vs ${agree / n}`);
        assert.ok(Math.abs(metric - correct / n) <= 0.003, `${what} ${split}: accuracy ${metric} vs ${correct / n}`);
      };
      check(base.weights, result.baseFidelity[split], result.base[split], 'base');
      for (const row of result.ranks) {
        const plain = await readAdapter(join(dir, 'run', `extracted-r${row.rank}`));
        const cal = await readAdapter(join(dir, 'run', `calibrated-r${row.rank}`));
        check(merged(base.weights, plain), row.extracted.fidelity[split], row.extracted[split], `plain r=${row.rank}`);
        check(
          merged(base.weights, cal),
          row.calibrated.fidelity[split],
          row.calibrated[split],
          `calibrated r=${row.rank}`,
        );
      }
    }
    // Both extractions approach the full fine-tune as rank grows.
    const last = result.ranks.at(-1)!;
    assert.ok(last.calibrated.fidelity.target.kl < 0.1 * result.baseFidelity.target.kl);
    assert.ok(last.extracted.fidelity.target.kl < 0.1 * result.baseFidelity.target.kl);
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
      'calibrated-extraction',
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
