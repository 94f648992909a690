import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../src/svd/random.js';
import { initBackend } from '../../src/train/backend.js';
import { matMulNN, matMulNT } from '../../src/train/ops.js';
import { expectAllClose } from '../helpers/close.js';

before(async () => {
  await initBackend();
});

function random(shape: number[], seed: number): tf.Tensor {
  const rng = createRng(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    shape,
  );
}

test('matMulNN and matMulNT: values and gradients equal tfjs’s own matMul, 2-D and batched', () => {
  for (const [aShape, bShape, bTShape] of [
    [
      [5, 7],
      [7, 3],
      [3, 7],
    ],
    [
      [2, 3, 4, 6],
      [2, 3, 6, 5],
      [2, 3, 5, 6],
    ],
  ] as const) {
    const a = random([...aShape], 1);
    const b = random([...bShape], 2);
    const bT = random([...bTShape], 3);
    const w = random([...aShape.slice(0, -1), bShape.at(-1)!], 4);
    const wT = random([...aShape.slice(0, -1), bTShape.at(-2)!], 5);
    const loss = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor, weight: tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(f(x, y), weight));
    const check = (
      ours: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor,
      theirs: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor,
      y: tf.Tensor,
      weight: tf.Tensor,
    ) => {
      expectAllClose(ours(a, y).dataSync(), theirs(a, y).dataSync(), { rtol: 1e-5, atol: 1e-5 }, 'value');
      const [ga, gb] = tf.grads(loss(ours, weight))([a, y]);
      const [ea, eb] = tf.grads(loss(theirs, weight))([a, y]);
      expectAllClose(ga!.dataSync(), ea!.dataSync(), { rtol: 1e-5, atol: 1e-5 }, 'dA');
      expectAllClose(gb!.dataSync(), eb!.dataSync(), { rtol: 1e-5, atol: 1e-5 }, 'dB');
    };
    check(
      (x, y) => matMulNN(x, y),
      (x, y) => tf.matMul(x, y),
      b,
      w,
    );
    check(
      (x, y) => matMulNT(x, y),
      (x, y) => tf.matMul(x, y, false, true),
      bT,
      wT,
    );
  }
});

test('an operand marked constant gets a zero gradient, the other the full one', () => {
  const a = random([4, 6], 6);
  const b = random([3, 6], 7);
  const f = (constA: boolean, constB: boolean) =>
    tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(matMulNT(x, y, { constA, constB })))([a, b]);
  const [fa, fb] = f(false, false);
  const [za, gb] = f(true, false);
  const [ga, zb] = f(false, true);
  expectAllClose(za!.dataSync(), new Float32Array(24));
  expectAllClose(zb!.dataSync(), new Float32Array(18));
  expectAllClose(ga!.dataSync(), fa!.dataSync());
  expectAllClose(gb!.dataSync(), fb!.dataSync());
});
