/**
 * What a built-in task supplies to the trainers: its model (shapes, initial weights,
 * forward pass, LoRA targets, config.json) and its data (a source distribution for
 * the base model and a shifted target distribution for the fine-tunes).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../svd/index.js';

export type TaskName = 'mnist' | 'charlm';
export type SplitName = 'source' | 'target';

/** A batch ready for tensors: inputs [n, …] and one integer label per prediction. */
export interface Batch {
  inputs: Float32Array | Int32Array;
  inputShape: number[];
  /** One per prediction: n for mnist, n·context for charlm. */
  labels: Int32Array;
  /** Examples in the batch (images, text windows). */
  count: number;
}

/** Examples addressable by index, gathered into batches on demand. */
export interface Split {
  size: number;
  batch(indices: ArrayLike<number>): Batch;
}

export interface TaskData {
  source: { train: Split; test: Split };
  target: { train: Split; test: Split };
}

/** Read access to a model's tensors inside a forward pass. */
export interface Params {
  /** A tensor by full name, PyTorch layout. */
  get(name: string): tf.Tensor;
  /** A Linear module: x [n, in] → [n, out], with its bias if any and its active LoRA adapter. */
  linear(module: string, x: tf.Tensor2D): tf.Tensor2D;
}

/** Training defaults of a task; every CLI flag overrides one of these. */
export interface TaskDefaults {
  epochs: number;
  batchSize: number;
  learningRate: { base: number; full: number; lora: number };
  alpha: number;
  ranks: number[];
}

export interface TaskSpec<C> {
  name: TaskName;
  /** What `Evaluation.metric` holds, and which way is better. */
  metric: { name: 'accuracy' | 'bitsPerChar'; higherIsBetter: boolean };
  defaults: TaskDefaults;
  defaultConfig(): C;
  /** Every tensor, in checkpoint order: [name, shape]. */
  shapes(config: C): [string, number[]][];
  /** Initial weights, PyTorch layout, drawn from `rng`. */
  init(config: C, rng: Rng): Map<string, Float32Array>;
  /** Module paths (no ".weight") that LoRA adapts. */
  loraTargets(config: C): string[];
  /** inputs → logits [predictions, classes]. */
  forward(config: C, params: Params, inputs: tf.Tensor): tf.Tensor2D;
  /** The task's datasets; fixed, independent of the training seed, so every run is scored on the same examples. */
  data(config: C): Promise<TaskData>;
  /** config.json written beside the weights (Hugging Face fields plus "deltarank_task"). */
  configJson(config: C): Record<string, unknown>;
  /** Inverse of configJson; FormatError on a config of another task or missing fields. */
  configFromJson(json: Record<string, unknown>, file: string): C;
  /** The config whose shapes match `weights` (for maps that come without a config.json). */
  inferConfig(weights: Map<string, Float32Array>): C;
  /** Turn summed loss and correct count over `predictions` into the task's figures. */
  summarize(lossSum: number, correct: number, predictions: number): Evaluation;
}

/** A model scored on one split. */
export interface Evaluation {
  /** Mean cross-entropy per prediction, nats. */
  loss: number;
  /** The task metric: accuracy (mnist) or bits per character (charlm). */
  metric: number;
  accuracy?: number;
  bitsPerChar?: number;
  perplexity?: number;
}
