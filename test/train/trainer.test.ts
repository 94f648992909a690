import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../src/svd/random.js';
import { initBackend } from '../../src/train/backend.js';
import { type CharLmConfig, charlmTask } from '../../src/train/charlm-task.js';
import { evaluate } from '../../src/train/evaluate.js';
import { type MnistConfig, mnistTask } from '../../src/train/mnist-task.js';
import { attachLora, createModel, disposeModel, readWeights, trainableVariables } from '../../src/train/model.js';
import type { TaskSpec } from '../../src/train/task.js';
import { trainStep } from '../../src/train/trainer.js';

before(async () => {
  await initBackend();
});

const MNIST_SMALL: MnistConfig = { hidden: [24, 16], maxTrain: 256 };
const CHARLM_SMALL: CharLmConfig = {
  ...charlmTask.defaultConfig(),
  hidden: 16,
  intermediate: 32,
  layers: 1,
  heads: 2,
  context: 8,
  maxTrain: 64,
};

async function leakCheck<C>(task: TaskSpec<C>, config: C, lora: boolean): Promise<void> {
  const data = await task.data(config);
  const model = createModel(task.shapes(config), task.init(config, createRng(1)));
  if (lora) attachLora(model, task.loraTargets(config), { rank: 2, alpha: 4, dropout: 0.1, seed: 1 });
  const optimizer = tf.train.adam(1e-3);
  const vars = trainableVariables(model);
  const batch = data.target.train.batch([0, 1, 2, 3, 4, 5, 6, 7]);
  // The first step creates Adam's moment variables; later steps must add nothing.
  trainStep(task, config, model, optimizer, vars, batch);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) trainStep(task, config, model, optimizer, vars, batch);
  assert.equal(tf.memory().numTensors, before, `${task.name}${lora ? ' LoRA' : ''}: tensors per step`);
  optimizer.dispose();
  disposeModel(model);
}

test('a training step leaves no tensor behind (mnist and charlm, full and LoRA)', async () => {
  const start = tf.memory().numTensors;
  await leakCheck(mnistTask, MNIST_SMALL, false);
  await leakCheck(mnistTask, MNIST_SMALL, true);
  await leakCheck(charlmTask, CHARLM_SMALL, false);
  await leakCheck(charlmTask, CHARLM_SMALL, true);
  assert.equal(tf.memory().numTensors, start, 'models and optimisers freed');
});

test('LoRA steps on a whole model change A and B only', async () => {
  const data = await mnistTask.data(MNIST_SMALL);
  const model = createModel(mnistTask.shapes(MNIST_SMALL), mnistTask.init(MNIST_SMALL, createRng(2)));
  const before = readWeights(model);
  attachLora(model, mnistTask.loraTargets(MNIST_SMALL), { rank: 3, alpha: 6, seed: 2 });
  const optimizer = tf.train.adam(1e-2);
  const vars = trainableVariables(model);
  assert.equal(vars.length, 2 * mnistTask.loraTargets(MNIST_SMALL).length);
  const batch = data.target.train.batch(Int32Array.from({ length: 32 }, (_, i) => i));
  const first = trainStep(mnistTask, MNIST_SMALL, model, optimizer, vars, batch);
  for (let i = 0; i < 20; i++) trainStep(mnistTask, MNIST_SMALL, model, optimizer, vars, batch);
  const last = trainStep(mnistTask, MNIST_SMALL, model, optimizer, vars, batch);
  assert.ok(last < first * 0.8, `LoRA learns: loss ${first} → ${last}`);
  for (const [name, data] of readWeights(model)) assert.deepEqual(data, before.get(name), name);
  optimizer.dispose();
  disposeModel(model);
});

test('a LoRA model merged gives the unmerged model’s outputs; unmerged, its weights return', async () => {
  const data = await mnistTask.data(MNIST_SMALL);
  const model = createModel(mnistTask.shapes(MNIST_SMALL), mnistTask.init(MNIST_SMALL, createRng(6)));
  const original = readWeights(model);
  attachLora(model, mnistTask.loraTargets(MNIST_SMALL), { rank: 4, alpha: 8, seed: 6 });
  const optimizer = tf.train.adam(1e-2);
  const vars = trainableVariables(model);
  const batch = data.target.train.batch(Int32Array.from({ length: 64 }, (_, i) => i));
  for (let i = 0; i < 10; i++) trainStep(mnistTask, MNIST_SMALL, model, optimizer, vars, batch);
  optimizer.dispose();
  const logits = () =>
    tf.tidy(() =>
      mnistTask
        .forward(MNIST_SMALL, model.params, tf.tensor2d(batch.inputs as Float32Array, [batch.count, 784]))
        .dataSync(),
    );
  const unmerged = logits();
  for (const layer of model.lora.values()) layer.merge();
  const merged = logits();
  for (let i = 0; i < merged.length; i++)
    assert.ok(Math.abs(merged[i]! - unmerged[i]!) <= 1e-4 * (1 + Math.abs(unmerged[i]!)), `logit ${i}`);
  const mergedWeights = readWeights(model);
  assert.ok(
    mergedWeights.get('classifier.weight')!.some((v, i) => v !== original.get('classifier.weight')![i]),
    'merge changed W',
  );
  for (const layer of model.lora.values()) layer.unmerge();
  for (const [name, w] of readWeights(model)) {
    const o = original.get(name)!;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i]! - o[i]!) <= 1e-6, `${name}[${i}]`);
  }
  disposeModel(model);
});

/** The MLP in f64 plain loops: logits for one image. */
function mlpLogits(weights: Map<string, Float32Array>, hidden: number[], x: Float32Array): number[] {
  let h = Array.from(x);
  const layer = (w: Float32Array, b: Float32Array, relu: boolean) => {
    const out = b.length;
    const inF = h.length;
    h = Array.from({ length: out }, (_, o) => {
      let acc = b[o]!;
      for (let j = 0; j < inF; j++) acc += w[o * inF + j]! * h[j]!;
      return relu ? Math.max(0, acc) : acc;
    });
  };
  hidden.forEach((_, i) =>
    layer(weights.get(`model.layers.${i}.fc.weight`)!, weights.get(`model.layers.${i}.fc.bias`)!, true),
  );
  layer(weights.get('classifier.weight')!, weights.get('classifier.bias')!, false);
  return h;
}

test('evaluate(mnist, weights) equals cross-entropy and accuracy computed by hand', async () => {
  const weights = mnistTask.init(MNIST_SMALL, createRng(3));
  const data = await mnistTask.data(MNIST_SMALL);
  for (const split of ['source', 'target'] as const) {
    const test = data[split].test;
    const batch = test.batch(Int32Array.from({ length: test.size }, (_, i) => i));
    let loss = 0;
    let correct = 0;
    for (let k = 0; k < batch.count; k++) {
      const logits = mlpLogits(
        weights,
        MNIST_SMALL.hidden,
        batch.inputs.subarray(k * 784, (k + 1) * 784) as Float32Array,
      );
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
      loss += lse - logits[batch.labels[k]!]!;
      if (logits.indexOf(max) === batch.labels[k]) correct++;
    }
    const got = await evaluate('mnist', weights, split);
    assert.ok(Math.abs(got.loss - loss / batch.count) < 1e-4, `${split} loss ${got.loss} vs ${loss / batch.count}`);
    assert.equal(got.accuracy, correct / batch.count);
    assert.equal(got.metric, got.accuracy);
  }
  // Models of one task may live side by side.
  const one = createModel(mnistTask.shapes(MNIST_SMALL), weights);
  const two = createModel(mnistTask.shapes(MNIST_SMALL), weights);
  assert.deepEqual(readWeights(one), readWeights(two));
  disposeModel(one);
  disposeModel(two);
});

test('charlm: a prediction never depends on later characters', async () => {
  const config = CHARLM_SMALL;
  const model = createModel(charlmTask.shapes(config), charlmTask.init(config, createRng(4)));
  const t = config.context;
  const ids = Int32Array.from({ length: t }, (_, i) => (i * 7) % config.vocab.length);
  const changed = Int32Array.from(ids);
  changed[5] = (changed[5]! + 1) % config.vocab.length;
  const logits = (x: Int32Array) =>
    tf.tidy(() => charlmTask.forward(config, model.params, tf.tensor2d(x, [1, t], 'int32')).arraySync());
  const a = logits(ids);
  const b = logits(changed);
  for (let pos = 0; pos < t; pos++) {
    const same = a[pos]!.every((v, i) => v === b[pos]![i]);
    assert.equal(same, pos < 5, `position ${pos}`);
  }
  disposeModel(model);
});

test('charlm: bits per character = loss / ln 2 and perplexity = e^loss; an untrained model is near uniform', async () => {
  const weights = charlmTask.init(CHARLM_SMALL, createRng(5));
  const got = await evaluate('charlm', weights, 'target', { config: CHARLM_SMALL });
  assert.ok(Math.abs(got.bitsPerChar! - got.loss / Math.LN2) < 1e-12);
  assert.ok(Math.abs(got.perplexity! - Math.exp(got.loss)) < 1e-9 * got.perplexity!);
  assert.equal(got.metric, got.bitsPerChar);
  // Weights of std 0.02 give nearly flat logits: log₂(vocab) bits.
  assert.ok(Math.abs(got.bitsPerChar! - Math.log2(CHARLM_SMALL.vocab.length)) < 0.05, `${got.bitsPerChar}`);
});
