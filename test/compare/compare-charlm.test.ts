import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { type CompareOutput, compareRun } from '../../src/compare/index.js';
import { applyAdapter } from '../../src/extract/index.js';
import { type Adapter, loraScale, readAdapter, writeDirAtomically } from '../../src/io/index.js';
import { type CharLmConfig, loadModel, loadTaskData, trainTask, writeTrainOutput } from '../../src/train/index.js';

let dir: string;
let result: CompareOutput;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-compare-charlm-'));
  const trained = await trainTask({
    task: 'charlm',
    epochs: 1,
    ranks: [2],
    variants: ['lora'],
    seed: 5,
    model: { maxTrain: 96 },
  });
  await writeDirAtomically(join(dir, 'run'), {}, (tmp) => writeTrainOutput(tmp, trained));
  result = await compareRun(join(dir, 'run'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('charlm: every projection and lm_head calibrated in forward order, the embedding kept plain, q/k/v fitted to the inputs the extracted embedding gives', async () => {
  const row = result.ranks[0]!;
  const layers = row.calibrated.layers.map((l) => l.module);
  const expected = [0, 1].flatMap((i) => [
    ...['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((m) => `model.layers.${i}.self_attn.${m}`),
    ...['gate_proj', 'up_proj', 'down_proj'].map((m) => `model.layers.${i}.mlp.${m}`),
  ]);
  assert.deepEqual(layers, [...expected, 'lm_head']);
  const plain = await readAdapter(join(dir, 'run', 'extracted-r2'));
  const cal = await readAdapter(join(dir, 'run', 'calibrated-r2'));
  const embed = (ad: Adapter) => ad.modules.find((m) => m.module === 'model.embed_tokens')!;
  assert.equal(embed(plain).kind, 'embedding');
  assert.deepEqual(embed(cal).a, embed(plain).a);
  assert.deepEqual(embed(cal).b, embed(plain).b);

  // Layer 0's q/k/v read RMSNorm(embedding) of the base with the plain embedding factors applied.
  const base = await loadModel('charlm', join(dir, 'run', 'base'));
  const full = await loadModel('charlm', join(dir, 'run', 'full'));
  const config = base.config as CharLmConfig;
  const withEmbed = await applyAdapter(base.weights, { ...plain, modules: [embed(plain)] });
  const train = (await loadTaskData('charlm', config)).target.train;
  const n = Math.min(train.size, Math.ceil(2048 / config.context));
  assert.equal(result.calibration.examples, n);
  const ids = train.batch(Int32Array.from({ length: n }, (_, i) => Math.floor((i * train.size) / n))).inputs;
  const hid = config.hidden;
  const e = withEmbed.get('model.embed_tokens.weight')!;
  const g = base.weights.get('model.layers.0.input_layernorm.weight')!;
  const x = new Float64Array(ids.length * hid);
  for (let t = 0; t < ids.length; t++) {
    let ms = 0;
    for (let d = 0; d < hid; d++) ms += e[ids[t]! * hid + d]! ** 2;
    const inv = 1 / Math.sqrt(ms / hid + config.rmsNormEps);
    for (let d = 0; d < hid; d++) x[t * hid + d] = e[ids[t]! * hid + d]! * inv * g[d]!;
  }
  for (const m of ['q_proj', 'k_proj', 'v_proj']) {
    const module = `model.layers.0.self_attn.${m}`;
    const err = (ad: Adapter) => {
      const f = ad.modules.find((q) => q.module === module)!;
      const s = loraScale(f, false);
      const w = full.weights.get(`${module}.weight`)!;
      const w0 = base.weights.get(`${module}.weight`)!;
      let e2 = 0;
      let n2 = 0;
      for (let t = 0; t < ids.length; t++)
        for (let i = 0; i < f.outFeatures; i++) {
          let u = 0;
          let v = 0;
          for (let j = 0; j < hid; j++) {
            let ba = 0;
            for (let k = 0; k < f.rank; k++) ba += f.b[i * f.rank + k]! * f.a[k * hid + j]!;
            const d = w[i * hid + j]! - w0[i * hid + j]!;
            v += d * x[t * hid + j]!;
            u += (d - s * ba) * x[t * hid + j]!;
          }
          e2 += u * u;
          n2 += v * v;
        }
      return Math.sqrt(e2 / n2);
    };
    const layer = row.calibrated.layers.find((l) => l.module === module)!;
    assert.equal(layer.rows, ids.length);
    const c = err(cal);
    const p = err(plain);
    assert.ok(Math.abs(layer.outputError - c) <= 2e-3 * c + 2e-4, `${module}: ${layer.outputError} vs ${c}`);
    assert.ok(
      Math.abs(layer.svdOutputError - p) <= 2e-3 * p + 2e-4,
      `${module}: plain ${layer.svdOutputError} vs ${p}`,
    );
    assert.ok(c < p, `${module}: calibrated ${c} ≥ plain ${p}`);
  }
  for (const l of row.calibrated.layers) {
    assert.ok(l.outputError <= l.svdOutputError * (1 + 1e-3) + 1e-6, `${l.module}: output error`);
    assert.ok(l.weightError >= l.svdWeightError * (1 - 1e-4) - 1e-6, `${l.module}: weight error (Eckart–Young)`);
  }
  // Bits per character, and fidelity per character position.
  for (const k of ['extracted', 'calibrated'] as const) {
    assert.ok(row[k].fidelity.target.kl >= 0 && row[k].fidelity.target.top1 <= 1);
    assert.ok(row[k].fidelity.target.kl < result.baseFidelity.target.kl, `${k}: closer to the fine-tune than the base`);
  }
});
