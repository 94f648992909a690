/**
 * Training throughput of each LoRA variant on mnist at r = 8: examples per second of optimiser
 * steps (forward, backward, Adam). The variants' steps are interleaved, one batch each in turn,
 * so that on a shared machine every variant sees the same load and the ratios to plain LoRA hold
 * even when the absolute figures drift: `npm run bench -- train-variants`.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../src/svd/random.js';
import { initBackend } from '../src/train/backend.js';
import { mnistTask } from '../src/train/mnist-task.js';
import { attachLora, createModel, disposeModel, trainableVariables } from '../src/train/model.js';
import { trainStep } from '../src/train/trainer.js';
import { parseVariant } from '../src/train/variants.js';
import type { BenchRow } from './types.js';

const VARIANTS = ['lora', 'dora', 'pissa', 'olora', 'lora+bias'];
const RANK = 8;
/** Untimed steps per variant first: the wasm backend compiles and sizes its buffers on the first calls. */
const WARMUP_STEPS = 5;
/** Timed steps per variant, interleaved. */
const STEPS = 60;

export async function bench(): Promise<BenchRow[]> {
  const backend = await initBackend();
  const task = mnistTask;
  const config = task.defaultConfig();
  const data = await task.data(config);
  const base = task.init(config, createRng(1));
  const runs = VARIANTS.map((name) => {
    const v = parseVariant(name);
    const model = createModel(task.shapes(config), base);
    attachLora(model, task.loraTargets(config), {
      rank: RANK,
      alpha: task.defaults.alpha,
      seed: 1,
      useDora: v.useDora,
      loraBias: v.loraBias,
      initLoraWeights: v.init,
    });
    return {
      name,
      model,
      optimizer: tf.train.adam(task.defaults.learningRate.lora),
      vars: trainableVariables(model),
      seconds: 0,
      examples: 0,
    };
  });
  const size = task.defaults.batchSize;
  const order = createRng(2).shuffle(Int32Array.from({ length: data.target.train.size }, (_, i) => i));
  let next = 0;
  const batch = () => {
    if (next + size > order.length) next = 0;
    return data.target.train.batch(order.subarray(next, (next += size)));
  };
  for (let i = 0; i < WARMUP_STEPS; i++)
    for (const r of runs) trainStep(task, config, r.model, r.optimizer, r.vars, batch());
  for (let i = 0; i < STEPS; i++) {
    const b = batch();
    for (const r of runs) {
      const t0 = performance.now();
      trainStep(task, config, r.model, r.optimizer, r.vars, b);
      r.seconds += (performance.now() - t0) / 1000;
      r.examples += b.count;
    }
  }
  for (const r of runs) {
    r.optimizer.dispose();
    disposeModel(r.model);
  }
  const rate = (r: (typeof runs)[number]) => r.examples / r.seconds;
  const lora = rate(runs[0]!);
  return runs.map((r) => ({
    area: 'train',
    name: `${r.name} r=${RANK} step, mnist MLP 784-256-256-10, batch 64 digits (variants interleaved)`,
    figure: `${rate(r).toFixed(0)} examples/s (${backend.detail})${r.name === 'lora' ? '' : `, ${(rate(r) / lora).toFixed(2)}× LoRA`}`,
  }));
}
