/**
 * Training throughput of the built-in tasks at their default sizes: examples per second
 * of optimiser steps (forward, backward, Adam update), full fine-tuning and LoRA r = 8,
 * on the backend `train` selects.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../src/svd/random.js';
import { initBackend } from '../src/train/backend.js';
import { charlmTask } from '../src/train/charlm-task.js';
import { mnistTask } from '../src/train/mnist-task.js';
import { attachLora, createModel, disposeModel, trainableVariables } from '../src/train/model.js';
import type { TaskSpec } from '../src/train/task.js';
import type { TaskConfig } from '../src/train/tasks.js';
import { trainStep } from '../src/train/trainer.js';
import type { BenchRow } from './types.js';

/** Untimed steps first: the wasm backend compiles and sizes its buffers on the first calls. */
const WARMUP_STEPS = 5;
/** Timed for at least this long, so a noisy shared machine averages out. */
const MIN_SECONDS = 3;

async function examplesPerSecond<C extends TaskConfig>(task: TaskSpec<C>, rank: number | null): Promise<number> {
  const config = task.defaultConfig();
  const data = await task.data(config);
  const model = createModel(task.shapes(config), task.init(config, createRng(1)));
  if (rank !== null) attachLora(model, task.loraTargets(config), { rank, alpha: task.defaults.alpha, seed: 1 });
  const optimizer = tf.train.adam(task.defaults.learningRate.full);
  const vars = trainableVariables(model);
  const size = task.defaults.batchSize;
  const order = createRng(2).shuffle(Int32Array.from({ length: data.target.train.size }, (_, i) => i));
  let next = 0;
  const batch = () => {
    if (next + size > order.length) next = 0;
    return data.target.train.batch(order.subarray(next, (next += size)));
  };
  for (let i = 0; i < WARMUP_STEPS; i++) trainStep(task, config, model, optimizer, vars, batch());
  let examples = 0;
  let seconds = 0;
  while (seconds < MIN_SECONDS) {
    const b = batch();
    const t0 = performance.now();
    trainStep(task, config, model, optimizer, vars, b);
    seconds += (performance.now() - t0) / 1000;
    examples += b.count;
  }
  optimizer.dispose();
  disposeModel(model);
  return examples / seconds;
}

export async function bench(): Promise<BenchRow[]> {
  const backend = await initBackend();
  const rows: BenchRow[] = [];
  const tasks: [TaskSpec<TaskConfig>, string][] = [
    [mnistTask as TaskSpec<TaskConfig>, 'mnist MLP 784-256-256-10, batch 64 digits'],
    [charlmTask as TaskSpec<TaskConfig>, 'charlm Llama 2×64, context 32, batch 32 windows'],
  ];
  for (const [task, what] of tasks) {
    for (const rank of [null, 8]) {
      const rate = await examplesPerSecond(task, rank);
      rows.push({
        area: 'train',
        name: `${rank === null ? 'full fine-tune' : `LoRA r=${rank}`} step, ${what}`,
        figure: `${rate.toFixed(0)} examples/s (${backend.detail})`,
      });
    }
  }
  return rows;
}
