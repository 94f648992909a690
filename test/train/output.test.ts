import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { mergeAdapter } from '../../src/extract/index.js';
import { loraScale, openCheckpoint, readAdapter } from '../../src/io/index.js';
import { evaluate, loadModel } from '../../src/train/evaluate.js';
import { type TrainResult, trainTask } from '../../src/train/train-task.js';
import { writeTrainOutput } from '../../src/train/write-output.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-train-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** W + s·B·A over the base, in f64 then rounded once: an independent merge. */
async function mergeByHand(adapterDir: string, base: Map<string, Float32Array>): Promise<Map<string, Float32Array>> {
  const adapter = await readAdapter(adapterDir);
  const rslora = adapter.config['use_rslora'] === true;
  const out = new Map([...base].map(([k, v]) => [k, Float32Array.from(v)]));
  for (const m of adapter.modules) {
    const w = out.get(`${m.module}.weight`)!;
    const s = loraScale(m, rslora);
    for (let o = 0; o < m.outFeatures; o++) {
      for (let j = 0; j < m.inFeatures; j++) {
        let acc = 0;
        for (let k = 0; k < m.rank; k++) acc += m.b[o * m.rank + k]! * m.a[k * m.inFeatures + j]!;
        w[o * m.inFeatures + j] = w[o * m.inFeatures + j]! + s * acc;
      }
    }
  }
  return out;
}

async function checkOutput(
  result: TrainResult,
  dir: string,
  tolerance: { loss: number; metric: number },
): Promise<void> {
  const { metrics } = result;
  const task = metrics.task;
  await writeTrainOutput(dir, result);
  const lora = metrics.runs.filter((r) => r.kind === 'lora').map((r) => r.name);
  assert.deepEqual((await readdir(dir)).sort(), ['base', 'full', ...lora, 'metrics.json'].sort());
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')), JSON.parse(JSON.stringify(metrics)));

  // Checkpoints: exact f32 weights, PyTorch layout, config.json that loads back.
  for (const name of ['base', 'full'] as const) {
    const loaded = await loadModel(task, join(dir, name));
    assert.deepEqual(
      [...loaded.weights.keys()],
      result.shapes.map(([n]) => n),
    );
    for (const [n, w] of loaded.weights) assert.deepEqual(w, result[name].get(n), n);
    const ckpt = await openCheckpoint(join(dir, name));
    for (const [n, shape] of result.shapes) assert.deepEqual(ckpt.info(n).shape, shape);
    await ckpt.close();
    const run = metrics.runs.find((r) => r.name === name)!;
    for (const split of ['source', 'target'] as const) {
      const e = await evaluate(task, loaded.weights, split, { config: loaded.config });
      assert.ok(Math.abs(e.loss - run.final[split].loss) <= 1e-6 * run.final[split].loss, `${name} ${split} loss`);
      assert.equal(e.metric, run.final[split].metric);
    }
  }

  // Adapters: PEFT layout as trained; merged by `merge` they score what training measured.
  const base = (await loadModel(task, join(dir, 'base'))).weights;
  for (const run of metrics.runs.filter((r) => r.kind === 'lora')) {
    const adapterDir = join(dir, run.name);
    const adapter = await readAdapter(adapterDir);
    assert.equal(adapter.config['r'], run.rank);
    assert.equal(adapter.config['lora_alpha'], run.alpha);
    assert.equal(adapter.config['use_rslora'], run.rslora);
    assert.deepEqual(adapter.modules.map((m) => m.module).sort(), [...metrics.config.loraTargets].sort());
    const trained = result.adapters.find((a) => a.name === run.name)!;
    for (const m of adapter.modules) {
      const t = trained.modules.find((x) => x.module === m.module)!;
      assert.deepEqual([m.rank, m.inFeatures, m.outFeatures], [run.rank, t.inFeatures, t.outFeatures]);
      assert.deepEqual(m.a, t.a);
      assert.deepEqual(m.b, t.b);
    }
    const mergedDir = join(await tempDir(), 'merged');
    await mergeAdapter(join(dir, 'base'), adapterDir, mergedDir);
    const merged = await loadModel(task, mergedDir);
    const byHand = await mergeByHand(adapterDir, base);
    for (const weights of [merged.weights, byHand]) {
      const e = await evaluate(task, weights, 'target', { config: merged.config });
      const want = run.final.target;
      assert.ok(
        Math.abs(e.loss - want.loss) <= tolerance.loss,
        `${run.name}: merged loss ${e.loss} vs trained ${want.loss}`,
      );
      assert.ok(
        Math.abs(e.metric - want.metric) <= tolerance.metric,
        `${run.name}: merged metric ${e.metric} vs trained ${want.metric}`,
      );
    }
    // A real fine-tune: merging moved the target score away from the base's.
    const baseLoss = metrics.runs[0]!.final.target.loss;
    assert.ok(
      Math.abs(run.final.target.loss - baseLoss) > 0.05,
      `${run.name} target loss ${run.final.target.loss} vs base ${baseLoss}`,
    );
  }
}

test('mnist output: checkpoints reload exactly, adapters merged by `merge` score as in training', async () => {
  const result = await trainTask({
    task: 'mnist',
    epochs: 2,
    ranks: [2, 8],
    seed: 4,
    model: { hidden: [48, 32], maxTrain: 600 },
  });
  // f32 rounding in a different summation order may flip a borderline digit or two of 1,000.
  await checkOutput(result, join(await tempDir(), 'run'), { loss: 1e-4, metric: 0.002 });
});

test('charlm output with rsLoRA: Llama config.json, adapters with use_rslora, merged scores as in training', async () => {
  const result = await trainTask({
    task: 'charlm',
    epochs: 3,
    ranks: [2],
    rslora: true,
    alpha: 4,
    learningRate: { base: 1e-2, full: 1e-2, lora: 2e-2 },
    seed: 5,
    model: { hidden: 16, intermediate: 32, layers: 1, heads: 2, context: 16, maxTrain: 192 },
  });
  const dir = join(await tempDir(), 'run');
  await checkOutput(result, dir, { loss: 1e-4, metric: 1e-4 });
  const config = JSON.parse(await readFile(join(dir, 'full', 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config['model_type'], 'llama');
  assert.equal(config['hidden_size'], 16);
  const adapterConfig = JSON.parse(await readFile(join(dir, 'lora-r2', 'adapter_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(adapterConfig['task_type'], 'CAUSAL_LM');
});
