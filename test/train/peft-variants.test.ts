import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { applyAdapter } from '../../src/extract/index.js';
import { readAdapter, writeCheckpoint } from '../../src/io/index.js';
import { createRng } from '../../src/svd/random.js';
import { initBackend } from '../../src/train/backend.js';
import { charlmTask } from '../../src/train/charlm-task.js';
import { mnistTask } from '../../src/train/mnist-task.js';
import { attachLora, createModel, disposeModel, type TfModel } from '../../src/train/model.js';
import type { TaskSpec } from '../../src/train/task.js';
import { adapterModules, type TrainedAdapter } from '../../src/train/train-task.js';
import { fit } from '../../src/train/trainer.js';
import { parseVariant } from '../../src/train/variants.js';
import { writeTrainedAdapter } from '../../src/train/write-output.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./peft_variants.py', import.meta.url));

interface PyResult {
  name: string;
  missing: string[];
  unexpected: string[];
  maxDiff: number;
  scale: number;
  useDora: boolean;
  trainable: string[];
  residualDiff: number | null;
  /** PiSSA: ours against W − U_r·S_r·V_rᵀ from LAPACK's f64 SVD. */
  residualTruthDiff: number | null;
  mergeDiff: number;
}

/** PEFT's state-dict names of what the tfjs layers train. */
function trainableNames(model: TfModel): string[] {
  const names: string[] = [];
  for (const layer of model.lora.values()) {
    const a = layer.active!;
    names.push(`${layer.module}.lora_A.weight`, `${layer.module}.lora_B.weight`);
    if (a.bias) names.push(`${layer.module}.lora_B.bias`);
    if (a.magnitude) names.push(`${layer.module}.lora_magnitude_vector.weight`);
  }
  return names.sort();
}

async function cases<C>(task: TaskSpec<C>, config: C, variants: string[], dir: string, rank: number) {
  const data = await task.data(config);
  const base = task.init(config, createRng(1).fork('init'));
  const shapes = task.shapes(config);
  const baseDir = join(dir, `${task.name}-base`);
  await writeCheckpoint(
    baseDir,
    shapes.map(([name, shape]) => ({ name, dtype: 'F32' as const, shape })),
    (s) => base.get(s.name)!,
    { metadata: { format: 'pt' } },
  );
  await writeFile(join(baseDir, 'config.json'), JSON.stringify(task.configJson(config)));
  const batch = data.target.test.batch(Int32Array.from({ length: 6 }, (_, i) => i));
  const out = [];
  for (const spec of variants) {
    const variant = parseVariant(spec);
    const model = createModel(shapes, base);
    try {
      const targets = task.loraTargets(config);
      attachLora(model, targets, {
        rank,
        alpha: 8,
        seed: 2,
        useDora: variant.useDora,
        loraBias: variant.loraBias,
        initLoraWeights: variant.init,
      });
      const residual =
        variant.init === 'pissa' || variant.init === 'olora'
          ? Array.from(model.variables.get(`${targets[0]}.weight`)!.dataSync())
          : undefined;
      await fit(task, config, model, data.target.train, {
        epochs: 1,
        batchSize: 16,
        learningRate: 1e-2,
        seed: 3,
        evalSplit: data.target.test,
      });
      const logits = tf.tidy(() =>
        Array.from(
          task
            .forward(
              config,
              model.params,
              tf.tensor(batch.inputs, batch.inputShape, batch.inputs instanceof Int32Array ? 'int32' : 'float32'),
            )
            .dataSync(),
        ),
      );
      const adapter: TrainedAdapter = {
        name: `${variant.name}-r${rank}`,
        rank,
        alpha: 8,
        rslora: false,
        variant,
        modules: adapterModules(model),
      };
      const adapterDir = join(dir, `${task.name}-${adapter.name}`);
      await writeTrainedAdapter(adapterDir, task.name, adapter);
      // deltarank's own merge of the adapter as written, for PEFT's merge_and_unload to match.
      const mergedAll = await applyAdapter(base, await readAdapter(adapterDir));
      const merged = Object.fromEntries(
        targets
          .flatMap((t) => [`${t}.weight`, `${t}.bias`])
          .filter((n) => mergedAll.has(n))
          .map((n) => [n, Array.from(mergedAll.get(n)!)]),
      );
      const init = variant.init === true ? true : variant.init;
      out.push({
        name: `${task.name} ${variant.name}`,
        base: baseDir,
        adapter: adapterDir,
        inputs: Array.from(batch.inputs),
        logits,
        rank,
        alpha: 8,
        targets,
        variant: { ...variant, init },
        residual,
        merged,
        ours: trainableNames(model),
      });
    } finally {
      disposeModel(model);
    }
  }
  return out;
}

test('PEFT loads every variant’s adapter (mnist MLP and charlm as LlamaForCausalLM) with no missing or unexpected keys, gives the tfjs outputs, and trains what the tfjs layer trains', {
  skip: NO_PYTHON,
}, async () => {
  await initBackend();
  const dir = await mkdtemp(join(tmpdir(), 'deltarank-peft-variants-'));
  try {
    const mnist = await cases(
      mnistTask,
      { hidden: [24], maxTrain: 64 },
      ['lora', 'dora', 'pissa', 'pissa_niter_4', 'olora', 'gaussian', 'dora+gaussian', 'lora+bias'],
      dir,
      4,
    );
    const lm = await cases(
      charlmTask,
      { ...charlmTask.defaultConfig(), hidden: 16, intermediate: 32, layers: 1, heads: 2, context: 8, maxTrain: 32 },
      ['lora', 'dora', 'pissa'],
      dir,
      2,
    );
    const all = [...mnist, ...lm];
    const file = join(dir, 'cases.json');
    await writeFile(file, JSON.stringify(all.map(({ ours: _o, ...c }) => c)));
    const results = await runPython<PyResult[]>(SCRIPT, [file]);
    assert.equal(results.length, all.length);
    for (const [i, r] of results.entries()) {
      const c = all[i]!;
      assert.deepEqual(r.missing, [], `${r.name}: missing adapter keys`);
      assert.deepEqual(r.unexpected, [], `${r.name}: unexpected keys`);
      // f32 forward passes in two engines: a few ulps of the logits' scale per layer.
      assert.ok(
        r.maxDiff <= 1e-5 * Math.max(1, r.scale),
        `${r.name}: PEFT logits differ from tfjs by ${r.maxDiff} (scale ${r.scale})`,
      );
      assert.equal(r.useDora, c.variant.useDora, `${r.name}: use_dora in the config`);
      assert.deepEqual(r.trainable, c.ours, `${r.name}: PEFT trains what the tfjs layer trains`);
      // PEFT's PiSSA (LAPACK SVD) and OLoRA (LAPACK QR) residual base W − s·B₀·A₀ against ours.
      // PEFT's merge_and_unload (DoRA's m/‖W + s·B·A‖ scaling, lora_bias into the bias) against deltarank's merge.
      assert.ok(
        r.mergeDiff < 1e-5,
        `${r.name}: PEFT's merged weights differ from deltarank's by ${r.mergeDiff} of their max |W|`,
      );
      // PiSSA: PEFT's SVD runs in f32 (1.3e-5 of max |W| from the f64 truth on an AMD EPYC), ours in
      // f64: ours is held to LAPACK's f64 residual at f32 rounding, PEFT's to ours at f32 SVD accuracy.
      if (r.residualTruthDiff !== null)
        assert.ok(
          r.residualTruthDiff < 1e-6,
          `${r.name}: residual base differs from LAPACK's f64 one by ${r.residualTruthDiff} of max |W|`,
        );
      if (c.residual)
        assert.ok(
          r.residualDiff! < (r.residualTruthDiff === null ? 1e-5 : 1e-4),
          `${r.name}: residual base differs from PEFT's by ${r.residualDiff} of max |W|`,
        );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
