import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { type TrainMetrics, trainTask } from '../../src/train/train-task.js';

/** metrics.json without the timings, which are the only part allowed to differ between runs. */
function withoutTimings(m: TrainMetrics) {
  return {
    ...m,
    seconds: 0,
    runs: m.runs.map((r) => ({ ...r, seconds: 0, examplesPerSecond: 0 })),
  };
}

test('the same seed gives the same metrics and weights; another seed does not', async () => {
  const opts = { task: 'mnist' as const, epochs: 2, ranks: [2], model: { hidden: [16], maxTrain: 96 } };
  const a = await trainTask({ ...opts, seed: 7 });
  const tensors = tf.memory().numTensors;
  const b = await trainTask({ ...opts, seed: 7 });
  assert.equal(tf.memory().numTensors, tensors, 'a whole training run frees every tensor it made');
  const c = await trainTask({ ...opts, seed: 8 });
  assert.deepEqual(withoutTimings(a.metrics), withoutTimings(b.metrics));
  assert.deepEqual(a.full, b.full);
  assert.deepEqual(a.adapters, b.adapters);
  assert.notDeepEqual(withoutTimings(a.metrics).runs, withoutTimings(c.metrics).runs);

  const lm = {
    task: 'charlm' as const,
    epochs: 1,
    ranks: [1],
    model: { hidden: 8, intermediate: 16, layers: 1, heads: 2, context: 8, maxTrain: 32 },
  };
  const x = await trainTask({ ...lm, seed: 3 });
  const y = await trainTask({ ...lm, seed: 3 });
  assert.deepEqual(withoutTimings(x.metrics), withoutTimings(y.metrics));
});

test('mnist: the full fine-tune gains clearly over the base on turned digits; LoRA approaches it as r grows', async () => {
  const ranks = [1, 32];
  const { metrics, base, full, adapters } = await trainTask({
    task: 'mnist',
    epochs: 3,
    ranks,
    seed: 1,
    model: { maxTrain: 2000 },
  });
  const run = (name: string) => metrics.runs.find((r) => r.name === name)!;
  const acc = (name: string) => run(name).final.target.metric;
  assert.deepEqual(
    metrics.runs.map((r) => r.name),
    ['base', 'full', 'lora-r1', 'lora-r32'],
  );
  assert.ok(run('base').final.source.metric > 0.85, `base on upright digits: ${run('base').final.source.metric}`);
  assert.ok(acc('base') < 0.4, `base on turned digits: ${acc('base')}`);
  assert.ok(acc('full') > acc('base') + 0.4, `full ${acc('full')} vs base ${acc('base')}`);
  assert.ok(acc('lora-r1') > acc('base') + 0.2, `LoRA r=1 learns: ${acc('lora-r1')}`);
  assert.ok(acc('lora-r32') > acc('lora-r1'), `r=32 ${acc('lora-r32')} vs r=1 ${acc('lora-r1')}`);
  assert.ok(
    acc('full') - acc('lora-r32') < (acc('full') - acc('lora-r1')) / 2,
    'the gap to full at least halves from r=1 to r=32',
  );

  // Parameters: every weight for base and full; r·(in + out) per adapted layer for LoRA.
  const total = [...base.values()].reduce((s, w) => s + w.length, 0);
  assert.equal(total, 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);
  assert.equal(run('full').trainableParams, total);
  for (const r of ranks) assert.equal(run(`lora-r${r}`).trainableParams, r * (784 + 256 + 256 + 256 + 256 + 10));
  assert.equal(run('lora-r32').rank, 32);
  assert.equal(run('lora-r32').alpha, 16);

  for (const r of metrics.runs) {
    assert.equal(r.curve.length, 3);
    assert.deepEqual(
      r.curve.map((p) => p.epoch),
      [1, 2, 3],
    );
    assert.equal(r.curveSplit, r.kind === 'base' ? 'source' : 'target');
    assert.equal(r.curve.at(-1)!.metric, r.final[r.curveSplit].metric);
    assert.ok(r.examplesPerSecond > 0 && r.seconds > 0);
  }
  assert.ok(run('full').curve[0]!.loss > run('full').curve[2]!.loss, 'training loss falls');
  assert.equal(metrics.backend, 'wasm');
  assert.equal(metrics.config.trainExamples.target, 2000);
  // Full fine-tuning moved the weights; LoRA factors have PEFT's shapes.
  assert.ok(full.get('model.layers.0.fc.weight')!.some((v, i) => v !== base.get('model.layers.0.fc.weight')![i]));
  const a32 = adapters.find((a) => a.rank === 32)!;
  const first = a32.modules.find((m) => m.module === 'model.layers.0.fc')!;
  assert.equal(first.a.length, 32 * 784);
  assert.equal(first.b.length, 256 * 32);
});

test('bad options are usage errors', async () => {
  await assert.rejects(trainTask({ task: 'mnist', epochs: 0 }), { name: 'UsageError' });
  await assert.rejects(trainTask({ task: 'mnist', ranks: [2, 2] }), /repeat/);
  await assert.rejects(trainTask({ task: 'mnist', ranks: [0] }), /positive integers/);
  await assert.rejects(trainTask({ task: 'nope' as 'mnist' }), /unknown task/);
});
