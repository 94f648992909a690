/**
 * What a task's model feeds its Linear modules, and what it predicts: the input statistics
 * G = XᵀX of chosen modules over given examples (for calibrated extraction), the order in which
 * the forward pass calls its modules, and the log-probabilities of every prediction (for
 * output fidelity against a reference model).
 */
import * as tf from '@tensorflow/tfjs';
import type { Matrix } from '../svd/index.js';
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

/** Gram matrix of one module's inputs: Σ_rows x·xᵀ [in, in] (summed in f64, stored f32) over `rows` input rows. */
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
 * target task's training split, with the model `weights`. Cost: one forward pass over the
 * examples, plus 2·rows·in² flops per distinct input read (modules reading one tensor share it).
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
    const sums = new Map<string, { sum: Float64Array; cols: number; rows: number }>();
    await forEachBatch(spec, config as C, weights, data.target.train, indices, (params) => {
      const seen = new Map<tf.Tensor, Float32Array>();
      return {
        get: params.get,
        linear(module, x) {
          if (modules.has(module)) {
            let g = seen.get(x);
            if (!g) seen.set(x, (g = tf.tidy(() => tf.matMul(x, x, true, false).dataSync() as Float32Array)));
            const cols = x.shape[1];
            let acc = sums.get(module);
            if (!acc) sums.set(module, (acc = { sum: new Float64Array(cols * cols), cols, rows: 0 }));
            for (let i = 0; i < g.length; i++) acc.sum[i]! += g[i]!;
            acc.rows += x.shape[0];
          }
          return params.linear(module, x);
        },
      };
    });
    return new Map(
      [...sums].map(([m, s]) => [
        m,
        { gram: { rows: s.cols, cols: s.cols, data: Float32Array.from(s.sum) }, rows: s.rows },
      ]),
    );
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
