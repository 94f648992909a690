/**
 * What a task's model feeds its Linear modules, and what it predicts: the input statistics
 * G = XᵀX of chosen modules over given examples (for calibrated extraction), the order in which
 * the forward pass calls its modules, and the log-probabilities of every prediction (for
 * output fidelity against a reference model).
 */
import * as tf from '@tensorflow/tfjs';
import { type Matrix, matmul } from '../svd/index.js';
import { initBackend } from './backend.js';
import { createModel, disposeModel, type TfModel } from './model.js';
import type { Params, Split, SplitName, TaskName, TaskSpec } from './task.js';
import { type TaskConfig, withTask } from './tasks.js';

/** Examples per forward pass: bounds the activations held at once. */
const BATCH = 256;

/** One Linear call of a forward pass: the module, and which input it read (calls sharing `input` read the same tensor). */
export interface LinearCall {
  module: string;
  input: number;
}

/** Gram matrix of one module's inputs: Σ_rows x·xᵀ [in, in] f32 over `rows` input rows. */
export interface LinearInputStats {
  gram: Matrix;
  rows: number;
}

/** Log-probabilities of every prediction of a split: [predictions, classes] row-major. */
export interface Predictions {
  logProbs: Float32Array;
  predictions: number;
  classes: number;
}

/**
 * The Linear modules of a task's forward pass in the order it calls them, with the identity of
 * each one's input (q/k/v read one tensor, gate/up another). Read from one forward pass on a
 * single training example of the target task; `weights` only need the task's shapes.
 * @example (await linearCalls('mnist', weights, config)).map((c) => c.module) // fc0, fc1, classifier
 */
export async function linearCalls(
  task: TaskName,
  weights: Map<string, Float32Array>,
  config: TaskConfig,
): Promise<LinearCall[]> {
  await initBackend();
  return withTask(task, async <C extends TaskConfig>(spec: TaskSpec<C>) => {
    const data = await spec.data(config as C);
    const calls: LinearCall[] = [];
    const ids = new Map<tf.Tensor, number>();
    await forEachBatch(spec, config as C, weights, data.target.train, Int32Array.of(0), (params) => ({
      get: params.get,
      linear(module, x) {
        if (!ids.has(x)) ids.set(x, ids.size);
        calls.push({ module, input: ids.get(x)! });
        return params.linear(module, x);
      },
    }));
    return calls;
  });
}

/**
 * G = Σ x·xᵀ of the inputs x of each module in `modules`, over examples `indices` of the
 * target task's training split, with the model `weights`. The input rows are gathered
 * ([rows, in] f32, modules reading one tensor share them) and G = XᵀX is one product in the GEMM
 * engine (f32 with its blocked accumulation). Cost: one forward pass over the examples, plus
 * 2·rows·in² flops per distinct input.
 * @example const g = await inputGrams('mnist', full.weights, config, new Set(['classifier']), idx);
 */
export async function inputGrams(
  task: TaskName,
  weights: Map<string, Float32Array>,
  config: TaskConfig,
  modules: Set<string>,
  indices: Int32Array,
): Promise<Map<string, LinearInputStats>> {
  await initBackend();
  return withTask(task, async <C extends TaskConfig>(spec: TaskSpec<C>) => {
    const data = await spec.data(config as C);
    // Per module, the index of its input among the distinct inputs of a batch (the same in every batch).
    const inputOf = new Map<string, number>();
    const parts: Float32Array[][] = [];
    const widths: number[] = [];
    await forEachBatch(spec, config as C, weights, data.target.train, indices, (params) => {
      const seen = new Map<tf.Tensor, number>();
      return {
        get: params.get,
        linear(module, x) {
          if (modules.has(module)) {
            let k = seen.get(x);
            if (k === undefined) {
              k = seen.size;
              seen.set(x, k);
              (parts[k] ??= []).push(x.dataSync() as Float32Array);
              widths[k] = x.shape[1];
            }
            inputOf.set(module, k);
          }
          return params.linear(module, x);
        },
      };
    });
    const grams = await Promise.all(
      parts.map(async (chunks, k) => {
        const cols = widths[k]!;
        const x = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          x.set(c, at);
          at += c.length;
        }
        const rows = x.length / cols;
        return { gram: await matmul({ rows, cols, data: x }, { rows, cols, data: x }, { transA: true }), rows };
      }),
    );
    return new Map([...inputOf].map(([m, k]) => [m, grams[k]!]));
  });
}

/**
 * Log-softmax of every prediction `weights` make on the test examples of `split` (the split
 * `evaluate` scores). mnist: one per image; charlm: one per character position.
 * @example const p = await predictions('mnist', full.weights, config, 'target');
 */
export async function predictions(
  task: TaskName,
  weights: Map<string, Float32Array>,
  config: TaskConfig,
  split: SplitName,
): Promise<Predictions> {
  await initBackend();
  return withTask(task, async <C extends TaskConfig>(spec: TaskSpec<C>) => {
    const data = await spec.data(config as C);
    const test = data[split].test;
    const parts: Float32Array[] = [];
    let classes = 0;
    await forEachBatch(
      spec,
      config as C,
      weights,
      test,
      Int32Array.from({ length: test.size }, (_, i) => i),
      (p) => p,
      (logits) => {
        classes = logits.shape[1];
        parts.push(tf.tidy(() => tf.logSoftmax(logits).dataSync() as Float32Array));
      },
    );
    const n = parts.reduce((s, p) => s + p.length, 0);
    const logProbs = new Float32Array(n);
    let at = 0;
    for (const p of parts) {
      logProbs.set(p, at);
      at += p.length;
    }
    return { logProbs, predictions: classes > 0 ? n / classes : 0, classes };
  });
}

/** Forward passes over `indices` of `split` in batches, through `wrap(params)`; `onLogits` sees each batch's logits. */
async function forEachBatch<C>(
  spec: TaskSpec<C>,
  config: C,
  weights: Map<string, Float32Array>,
  split: Split,
  indices: Int32Array,
  wrap: (params: Params) => Params,
  onLogits?: (logits: tf.Tensor2D) => void,
): Promise<void> {
  const model: TfModel = createModel(spec.shapes(config), weights);
  try {
    for (let start = 0; start < indices.length; start += BATCH) {
      const batch = split.batch(indices.subarray(start, start + BATCH));
      tf.tidy(() => {
        const inputs = tf.tensor(
          batch.inputs,
          batch.inputShape,
          batch.inputs instanceof Int32Array ? 'int32' : 'float32',
        );
        const logits = spec.forward(config, wrap(model.params), inputs);
        onLogits?.(logits);
      });
    }
  } finally {
    disposeModel(model);
  }
}
