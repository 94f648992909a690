import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../src/svd/random.js';
import { initBackend } from '../../src/train/backend.js';
import { LoraLinear, loraScaleOf } from '../../src/train/lora-linear.js';
import { expectAllClose } from '../helpers/close.js';

before(async () => {
  await initBackend();
});

const OUT = 12;
const IN = 20;
const N = 7;

function randomData(n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** y = x Wᵀ + b + s · x Aᵀ Bᵀ in f64 plain loops: the definition, independent of tfjs. */
function referenceForward(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array,
  a: Float32Array,
  b: Float32Array,
  r: number,
  s: number,
): Float64Array {
  const y = new Float64Array(N * OUT);
  for (let i = 0; i < N; i++) {
    const low = new Float64Array(r);
    for (let k = 0; k < r; k++) for (let j = 0; j < IN; j++) low[k]! += x[i * IN + j]! * a[k * IN + j]!;
    for (let o = 0; o < OUT; o++) {
      let acc = bias[o]!;
      for (let j = 0; j < IN; j++) acc += x[i * IN + j]! * w[o * IN + j]!;
      for (let k = 0; k < r; k++) acc += s * low[k]! * b[o * r + k]!;
      y[i * OUT + o] = acc;
    }
  }
  return y;
}

function makeLayer(seed: number) {
  const w = randomData(OUT * IN, seed);
  const bias = randomData(OUT, seed + 1);
  const layer = new LoraLinear(
    'model.layers.0.fc',
    tf.variable(tf.tensor2d(w, [OUT, IN])),
    tf.variable(tf.tensor1d(bias)),
  );
  return { w, bias, layer };
}

function setB(layer: LoraLinear, seed: number): Float32Array {
  const adapter = layer.active!;
  const b = randomData(OUT * adapter.rank, seed, 0.3);
  adapter.b.assign(tf.tensor2d(b, [OUT, adapter.rank]));
  return b;
}

test('a fresh adapter: A is Kaiming-uniform within ±1/√in, B is zero, the output is the frozen layer’s', () => {
  const { w, bias, layer } = makeLayer(1);
  layer.addAdapter('default', { rank: 4, alpha: 8, seed: 3 });
  const a = layer.active!.a.dataSync();
  const bound = 1 / Math.sqrt(IN);
  assert.ok(a.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...a.map(Math.abs)) > 0.8 * bound, 'A spans its range');
  assert.ok(layer.active!.b.dataSync().every((v) => v === 0));
  const x = randomData(N * IN, 5);
  const y = tf.tidy(() => layer.apply(tf.tensor2d(x, [N, IN])).dataSync());
  expectAllClose(y, referenceForward(x, w, bias, new Float32Array(4 * IN), new Float32Array(OUT * 4), 4, 0), {
    rtol: 1e-5,
    atol: 1e-5,
  });
  layer.dispose();
});

test('forward matches x Wᵀ + b + s·x Aᵀ Bᵀ with s = α/r, and α/√r under rsLoRA', () => {
  for (const rslora of [false, true]) {
    const { w, bias, layer } = makeLayer(2);
    const adapter = layer.addAdapter('default', { rank: 4, alpha: 6, rslora, seed: 9 });
    assert.equal(adapter.scale, rslora ? 6 / 2 : 6 / 4);
    assert.equal(loraScaleOf(4, 6, rslora), adapter.scale);
    const b = setB(layer, 11);
    const a = new Float32Array(adapter.a.dataSync());
    const x = randomData(N * IN, 12);
    const y = tf.tidy(() => layer.apply(tf.tensor2d(x, [N, IN])).dataSync());
    expectAllClose(y, referenceForward(x, w, bias, a, b, 4, adapter.scale), { rtol: 1e-5, atol: 1e-5 });
    layer.dispose();
  }
});

test('gradients reach only A and B: W and the bias stay bit-identical through optimiser steps', () => {
  const { w, bias, layer } = makeLayer(3);
  layer.addAdapter('default', { rank: 2, alpha: 4, seed: 1 });
  const a0 = new Float32Array(layer.active!.a.dataSync());
  const opt = tf.train.adam(0.05);
  const x = tf.tensor2d(randomData(N * IN, 4), [N, IN]);
  const target = tf.tensor2d(randomData(N * OUT, 5), [N, OUT]);
  const loss = () => tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }), target))) as tf.Scalar;
  // Ask for the gradient of every variable: tfjs must find none for the frozen ones.
  const { grads } = tf.variableGrads(loss);
  assert.deepEqual(Object.keys(grads).sort(), [layer.active!.a.name, layer.active!.b.name].sort());
  tf.dispose(grads);
  for (let i = 0; i < 5; i++)
    tf.tidy(() => {
      opt.minimize(loss, false, layer.trainableVariables());
    });
  assert.deepEqual(layer.weight.dataSync(), w);
  assert.deepEqual(layer.bias!.dataSync(), bias);
  assert.ok(
    layer.active!.b.dataSync().some((v) => v !== 0),
    'B moved',
  );
  assert.ok(
    layer.active!.a.dataSync().some((v, i) => v !== a0[i]),
    'A moved',
  );
  opt.dispose();
  tf.dispose([x, target]);
  layer.dispose();
});

test('merge folds s·B·A into W (outputs unchanged) and unmerge restores W to f32 rounding', () => {
  const { w, layer } = makeLayer(4);
  const adapter = layer.addAdapter('default', { rank: 3, alpha: 5, seed: 2 });
  const b = setB(layer, 7);
  const a = new Float32Array(adapter.a.dataSync());
  const x = tf.tensor2d(randomData(N * IN, 8), [N, IN]);
  const before = tf.tidy(() => layer.apply(x).dataSync());
  layer.merge();
  assert.equal(layer.merged, 'default');
  // W after merge = W + s·B·A, computed here in f64.
  const expected = Float64Array.from(w, (v, idx) => {
    const o = Math.floor(idx / IN);
    const j = idx % IN;
    let acc = 0;
    for (let k = 0; k < 3; k++) acc += b[o * 3 + k]! * a[k * IN + j]!;
    return v + adapter.scale * acc;
  });
  expectAllClose(layer.weight.dataSync(), expected, { rtol: 1e-6, atol: 1e-6 }, 'merged W');
  const after = tf.tidy(() => layer.apply(x).dataSync());
  expectAllClose(after, before, { rtol: 1e-5, atol: 1e-5 }, 'merged output');
  assert.throws(() => layer.merge(), /merged already/);
  layer.unmerge();
  assert.equal(layer.merged, null);
  // Two roundings of |W| + |s·B·A| ≲ 4 in f32: 2·4·2⁻²⁴ ≈ 5e-7.
  expectAllClose(layer.weight.dataSync(), w, { rtol: 0, atol: 1e-6 }, 'unmerged W');
  assert.ok(
    layer.weight.dataSync().some((v, i) => v !== expected[i]),
    'unmerge changed W back',
  );
  x.dispose();
  layer.dispose();
});

test('several named adapters on one layer, one active at a time', () => {
  const { w, bias, layer } = makeLayer(5);
  layer.addAdapter('one', { rank: 2, alpha: 2, seed: 1 });
  const b1 = setB(layer, 21);
  const a1 = new Float32Array(layer.active!.a.dataSync());
  layer.addAdapter('two', { rank: 5, alpha: 10, seed: 2 });
  assert.equal(layer.active!.name, 'two', 'a new adapter becomes active');
  const b2 = setB(layer, 22);
  const a2 = new Float32Array(layer.active!.a.dataSync());
  assert.ok(
    a1.some((v, i) => v !== a2[i]),
    'adapters draw different A',
  );
  const xData = randomData(N * IN, 23);
  const x = tf.tensor2d(xData, [N, IN]);
  const out = () => tf.tidy(() => layer.apply(x).dataSync());
  expectAllClose(out(), referenceForward(xData, w, bias, a2, b2, 5, 2), { rtol: 1e-5, atol: 1e-5 }, 'two');
  layer.setActive('one');
  expectAllClose(out(), referenceForward(xData, w, bias, a1, b1, 2, 1), { rtol: 1e-5, atol: 1e-5 }, 'one');
  assert.deepEqual(layer.trainableVariables(), [layer.adapters.get('one')!.a, layer.adapters.get('one')!.b]);
  layer.merge();
  assert.throws(() => layer.setActive('two'), /unmerge/);
  layer.unmerge();
  layer.setActive(null);
  expectAllClose(
    out(),
    referenceForward(xData, w, bias, a1, new Float32Array(OUT * 2), 2, 0),
    { rtol: 1e-5, atol: 1e-5 },
    'none',
  );
  assert.throws(() => layer.addAdapter('one', { rank: 1, alpha: 1, seed: 0 }), /exists/);
  assert.throws(() => layer.addAdapter('zero', { rank: 0, alpha: 1, seed: 0 }), /positive integer/);
  layer.deleteAdapter('two');
  assert.deepEqual([...layer.adapters.keys()], ['one']);
  x.dispose();
  layer.dispose();
});

test('LoRA dropout masks only during training, from a seeded stream', () => {
  const run = () => {
    const { layer } = makeLayer(6);
    layer.addAdapter('default', { rank: 2, alpha: 2, dropout: 0.5, seed: 4 });
    setB(layer, 31);
    const x = tf.tensor2d(randomData(N * IN, 32), [N, IN]);
    const evalOut = tf.tidy(() => layer.apply(x).dataSync());
    const evalAgain = tf.tidy(() => layer.apply(x).dataSync());
    const trainOut = tf.tidy(() => layer.apply(x, { training: true }).dataSync());
    x.dispose();
    layer.dispose();
    return { evalOut, evalAgain, trainOut };
  };
  const first = run();
  assert.deepEqual(first.evalOut, first.evalAgain);
  assert.ok(
    first.trainOut.some((v, i) => Math.abs(v - first.evalOut[i]!) > 1e-4),
    'dropout changed the training output',
  );
  assert.deepEqual(run().trainOut, first.trainOut, 'same seed, same mask');
});
