/**
 * Training and scoring on tfjs: mean cross-entropy, Adam (Kingma & Ba 2015) over the
 * model's trainable variables, one tidy scope per step so no tensor outlives it.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../svd/index.js';
import { type TfModel, trainableVariables } from './model.js';
import type { Batch, Evaluation, Split, TaskSpec } from './task.js';

/** One point of a learning curve, at the end of an epoch. */
export interface CurvePoint {
  epoch: number;
  /** Optimiser steps so far. */
  step: number;
  /** Mean training loss over the epoch, nats. */
  loss: number;
  /** The task metric on the run's evaluation split after the epoch. */
  metric: number;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seeds the example order. */
  seed: number;
  /** Scored after every epoch for the curve. */
  evalSplit: Split;
  /** Called after every step with the step's loss. */
  onStep?: (loss: number) => void;
  /** Called at the end of every epoch, after its curve point (checkpoint views such as DoRA's ΔM/ΔD). */
  onEpoch?: (epoch: number, step: number) => void;
}

export interface FitResult {
  curve: CurvePoint[];
  steps: number;
  examples: number;
  /** Seconds spent in optimiser steps alone (no curve evaluation). */
  trainSeconds: number;
}

/** Examples scored per forward pass when evaluating: bounds memory, not results. */
const EVAL_BATCH = 500;

/** Mean cross-entropy of `logits` [n, classes] against integer labels [n], as a scalar. */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1)));
  });
}

/** Steps in one epoch over `size` examples. */
export function stepsPerEpoch(size: number, batchSize: number): number {
  return Math.ceil(size / batchSize);
}

/**
 * Train `model`'s trainable variables (all of them, or LoRA's A and B once attached)
 * on `train` with Adam; the optimiser's state is freed before returning.
 */
export async function fit<C>(
  task: TaskSpec<C>,
  config: C,
  model: TfModel,
  train: Split,
  opts: FitOptions,
): Promise<FitResult> {
  const { epochs, batchSize, learningRate, seed, evalSplit, onStep, onEpoch } = opts;
  const optimizer = tf.train.adam(learningRate);
  const vars = trainableVariables(model);
  const rng = createRng(seed).fork('order');
  const order = Int32Array.from({ length: train.size }, (_, i) => i);
  const curve: CurvePoint[] = [];
  let steps = 0;
  let examples = 0;
  let trainMs = 0;
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      rng.shuffle(order);
      let lossSum = 0;
      let batches = 0;
      for (let start = 0; start < order.length; start += batchSize) {
        const batch = train.batch(order.subarray(start, start + batchSize));
        const t0 = performance.now();
        const loss = trainStep(task, config, model, optimizer, vars, batch);
        trainMs += performance.now() - t0;
        lossSum += loss;
        batches++;
        steps++;
        examples += batch.count;
        onStep?.(loss);
        // Let signal handlers (Ctrl-C cleanup of a half-written output) run between steps.
        await new Promise((resolve) => setImmediate(resolve));
      }
      curve.push({
        epoch,
        step: steps,
        loss: lossSum / batches,
        metric: evaluateModel(task, config, model, evalSplit).metric,
      });
      onEpoch?.(epoch, steps);
    }
  } finally {
    optimizer.dispose();
  }
  return { curve, steps, examples, trainSeconds: trainMs / 1000 };
}

/** One Adam step on one batch; returns the batch's loss before the update. Leaves no tensors behind. */
export function trainStep<C>(
  task: TaskSpec<C>,
  config: C,
  model: TfModel,
  optimizer: tf.Optimizer,
  vars: tf.Variable[],
  batch: Batch,
): number {
  model.training = true;
  try {
    const cost = tf.tidy(
      () =>
        optimizer.minimize(
          () => {
            const inputs = tf.tensor(
              batch.inputs,
              batch.inputShape,
              batch.inputs instanceof Int32Array ? 'int32' : 'float32',
            );
            return crossEntropy(task.forward(config, model.params, inputs), batch.labels);
          },
          true,
          vars,
        )!,
    );
    const value = cost.dataSync()[0]!;
    cost.dispose();
    return value;
  } finally {
    model.training = false;
  }
}

/** Mean loss and the task metric of `model` on every example of `split`. */
export function evaluateModel<C>(task: TaskSpec<C>, config: C, model: TfModel, split: Split): Evaluation {
  let lossSum = 0;
  let correct = 0;
  let predictions = 0;
  for (let start = 0; start < split.size; start += EVAL_BATCH) {
    const idx = Int32Array.from({ length: Math.min(EVAL_BATCH, split.size - start) }, (_, i) => start + i);
    const batch = split.batch(idx);
    const [l, c] = tf.tidy(() => {
      const inputs = tf.tensor(
        batch.inputs,
        batch.inputShape,
        batch.inputs instanceof Int32Array ? 'int32' : 'float32',
      );
      const logits = task.forward(config, model.params, inputs);
      const labels = tf.tensor1d(batch.labels, 'int32');
      const logp = tf.logSoftmax(logits);
      const loss = tf.neg(tf.sum(tf.mul(tf.oneHot(labels, logits.shape[1]), logp)));
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
      return [loss.dataSync()[0]!, hits.dataSync()[0]!];
    });
    lossSum += l;
    correct += c;
    predictions += batch.labels.length;
  }
  return task.summarize(lossSum, correct, predictions);
}
