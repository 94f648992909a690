import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { exactSvd } from '../../src/svd/exact-svd.js';
import { createRng } from '../../src/svd/random.js';
import { initBackend } from '../../src/train/backend.js';
import { exportFactors } from '../../src/train/lora-export.js';
import { parseLoraInit } from '../../src/train/lora-init.js';
import { LoraLinear } from '../../src/train/lora-linear.js';
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

function makeLayer(seed: number, out = OUT, inF = IN) {
  const w = randomData(out * inF, seed);
  const bias = randomData(out, seed + 1);
  const layer = new LoraLinear(
    'model.layers.0.fc',
    tf.variable(tf.tensor2d(w, [out, inF])),
    tf.variable(tf.tensor1d(bias)),
  );
  return { w, bias, layer };
}

/** [out, in] = W + s·B·A in f64. */
function merged64(
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  a: ArrayLike<number>,
  r: number,
  s: number,
  out = OUT,
  inF = IN,
): Float64Array {
  const m = Float64Array.from(w);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < inF; j++) for (let k = 0; k < r; k++) m[o * inF + j]! += s * b[o * r + k]! * a[k * inF + j]!;
  return m;
}

function rowNorms(w: ArrayLike<number>, out = OUT, inF = IN): Float64Array {
  const n = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let sq = 0;
    for (let j = 0; j < inF; j++) sq += w[o * inF + j]! ** 2;
    n[o] = Math.sqrt(sq);
  }
  return n;
}

/** y = x W'ᵀ + b for W' [out, in] in f64. */
function dense64(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number>,
  n = N,
  out = OUT,
  inF = IN,
): Float64Array {
  const y = new Float64Array(n * out);
  for (let i = 0; i < n; i++)
    for (let o = 0; o < out; o++) {
      let acc = bias[o]!;
      for (let j = 0; j < inF; j++) acc += x[i * inF + j]! * w[o * inF + j]!;
      y[i * out + o] = acc;
    }
  return y;
}

/** Give a fresh adapter non-trivial B, magnitude and bias, as training would. */
function perturb(layer: LoraLinear, seed: number): void {
  const ad = layer.active!;
  ad.b.assign(tf.add(ad.b, tf.tensor2d(randomData(OUT * ad.rank, seed, 0.3), [OUT, ad.rank])));
  if (ad.magnitude) ad.magnitude.assign(tf.add(ad.magnitude, tf.tensor1d(randomData(OUT, seed + 1, 0.2))));
  if (ad.bias) ad.bias.assign(tf.tensor1d(randomData(OUT, seed + 2, 0.5)));
}

test('DoRA: m starts at the row norms of W; the forward pass is m ⊙ (W + s·B·A)/‖W + s·B·A‖_row, equal to its merged form; unmerge restores W', () => {
  const { w, bias, layer } = makeLayer(1);
  const ad = layer.addAdapter('default', { rank: 3, alpha: 6, seed: 2, useDora: true });
  expectAllClose(ad.magnitude!.dataSync(), rowNorms(w), { rtol: 1e-6 }, 'm₀');
  perturb(layer, 3);
  const a = ad.a.dataSync();
  const b = ad.b.dataSync();
  const m = ad.magnitude!.dataSync();
  const v = merged64(w, b, a, 3, ad.scale);
  const n = rowNorms(v);
  const wPrime = v.map((x, idx) => (m[Math.floor(idx / IN)]! / n[Math.floor(idx / IN)]!) * x);
  const xData = randomData(N * IN, 4);
  const x = tf.tensor2d(xData, [N, IN]);
  const y = tf.tidy(() => layer.apply(x).dataSync());
  expectAllClose(y, dense64(xData, wPrime, bias), { rtol: 1e-5, atol: 1e-5 }, 'DoRA forward');
  layer.merge();
  expectAllClose(layer.weight.dataSync(), wPrime, { rtol: 1e-5, atol: 1e-6 }, 'merged W');
  expectAllClose(
    tf.tidy(() => layer.apply(x).dataSync()),
    y,
    { rtol: 1e-5, atol: 1e-5 },
    'merged forward',
  );
  layer.unmerge();
  expectAllClose(layer.weight.dataSync(), w, { rtol: 0, atol: 2e-6 }, 'unmerged W');
  x.dispose();
  layer.dispose();
});

test('DoRA gradients: A, B and m only, with the row norm detached as PEFT does', () => {
  const { w, layer } = makeLayer(5);
  const ad = layer.addAdapter('default', { rank: 2, alpha: 4, seed: 6, useDora: true });
  perturb(layer, 7);
  const a = ad.a.dataSync();
  const b = ad.b.dataSync();
  const m = ad.magnitude!.dataSync();
  const xData = randomData(N * IN, 8);
  const gData = randomData(N * OUT, 9);
  const x = tf.tensor2d(xData, [N, IN]);
  const g = tf.tensor2d(gData, [N, OUT]);
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }), g)) as tf.Scalar);
  assert.deepEqual(Object.keys(grads).sort(), [ad.a.name, ad.b.name, ad.magnitude!.name].sort());
  // With n = ‖W + s·B·A‖ a constant: L = Σ G ⊙ (f ⊙ (x Vᵀ)) + …, f = m/n, V = W + s·B·A.
  const s = ad.scale;
  const v = merged64(w, b, a, 2, s);
  const n = rowNorms(v);
  const xv = dense64(xData, v, new Float64Array(OUT));
  const gm = new Float64Array(OUT);
  for (let i = 0; i < N; i++) for (let o = 0; o < OUT; o++) gm[o]! += (gData[i * OUT + o]! * xv[i * OUT + o]!) / n[o]!;
  const ga = new Float64Array(2 * IN);
  for (let k = 0; k < 2; k++)
    for (let j = 0; j < IN; j++) {
      let acc = 0;
      for (let i = 0; i < N; i++)
        for (let o = 0; o < OUT; o++) acc += gData[i * OUT + o]! * (m[o]! / n[o]!) * b[o * 2 + k]! * xData[i * IN + j]!;
      ga[k * IN + j] = s * acc;
    }
  expectAllClose(grads[ad.magnitude!.name]!.dataSync(), gm, { rtol: 1e-4, atol: 1e-5 }, '∂L/∂m');
  expectAllClose(grads[ad.a.name]!.dataSync(), ga, { rtol: 1e-4, atol: 1e-5 }, '∂L/∂A (norm detached)');
  tf.dispose(grads);
  tf.dispose([x, g]);
  layer.dispose();
});

test('DoRA with dropout follows PEFT: the base output stays undropped, the DoRA correction sees the dropped input', () => {
  const { w, bias, layer } = makeLayer(10);
  const ad = layer.addAdapter('default', { rank: 2, alpha: 2, seed: 11, useDora: true, dropout: 0.5 });
  perturb(layer, 12);
  const xData = randomData(N * IN, 13);
  const x = tf.tensor2d(xData, [N, IN]);
  // The mask is the adapter's next draws: replay them from a twin layer's stream.
  const twin = makeLayer(10).layer;
  twin.addAdapter('default', { rank: 2, alpha: 2, seed: 11, useDora: true, dropout: 0.5 });
  const mask = new Float32Array(N * IN).map(() => (twin.active!.rng.uniform() < 0.5 ? 0 : 2));
  twin.dispose();
  const y = tf.tidy(() => layer.apply(x, { training: true }).dataSync());
  const xd = xData.map((v, i) => v * mask[i]!);
  const a = ad.a.dataSync();
  const b = ad.b.dataSync();
  const m = ad.magnitude!.dataSync();
  const v = merged64(w, b, a, 2, ad.scale);
  const n = rowNorms(v);
  const base = dense64(xData, w, bias);
  const dropped = dense64(xd, v, new Float64Array(OUT));
  const wd = dense64(xd, w, new Float64Array(OUT));
  // PEFT: result + (f − 1)·x_d Wᵀ + f·s·x_d Aᵀ Bᵀ = result + f·x_d Vᵀ − x_d Wᵀ.
  const expected = base.map((val, idx) => {
    const f = m[idx % OUT]! / n[idx % OUT]!;
    return val + f * dropped[idx]! - wd[idx]!;
  });
  expectAllClose(y, expected, { rtol: 1e-5, atol: 1e-5 }, 'DoRA dropout forward');
  x.dispose();
  layer.dispose();
});

test('lora_bias: y gains s·bias, the bias trains, merge adds s·bias to the base bias; PEFT refuses it with DoRA or SVD inits', () => {
  const { w, bias, layer } = makeLayer(20);
  const ad = layer.addAdapter('default', { rank: 2, alpha: 3, seed: 21, loraBias: true });
  assert.deepEqual(Array.from(ad.bias!.dataSync()), new Array(OUT).fill(0));
  perturb(layer, 22);
  const lb = ad.bias!.dataSync();
  const xData = randomData(N * IN, 23);
  const x = tf.tensor2d(xData, [N, IN]);
  const v = merged64(w, ad.b.dataSync(), ad.a.dataSync(), 2, ad.scale);
  const b2 = Float64Array.from(bias, (val, o) => val + ad.scale * lb[o]!);
  const y = tf.tidy(() => layer.apply(x).dataSync());
  expectAllClose(y, dense64(xData, v, b2), { rtol: 1e-5, atol: 1e-5 }, 'forward with lora_bias');
  const { grads } = tf.variableGrads(() => tf.sum(layer.apply(x, { training: true })) as tf.Scalar);
  assert.deepEqual(Object.keys(grads).sort(), [ad.a.name, ad.b.name, ad.bias!.name].sort());
  // ∂Σy/∂bias = s·N per entry.
  expectAllClose(
    grads[ad.bias!.name]!.dataSync(),
    new Float64Array(OUT).fill(ad.scale * N),
    { rtol: 1e-6 },
    '∂L/∂bias',
  );
  tf.dispose(grads);
  layer.merge();
  expectAllClose(layer.bias!.dataSync(), b2, { rtol: 1e-6, atol: 1e-6 }, 'merged bias');
  expectAllClose(
    tf.tidy(() => layer.apply(x).dataSync()),
    y,
    { rtol: 1e-5, atol: 1e-5 },
    'merged forward',
  );
  layer.unmerge();
  expectAllClose(layer.bias!.dataSync(), bias, { rtol: 0, atol: 1e-6 }, 'unmerged bias');
  assert.throws(() => layer.addAdapter('d', { rank: 2, alpha: 2, seed: 0, loraBias: true, useDora: true }), /DoRA/);
  assert.throws(
    () => layer.addAdapter('p', { rank: 2, alpha: 2, seed: 0, loraBias: true, initLoraWeights: 'pissa' }),
    /default init/,
  );
  x.dispose();
  layer.dispose();
});

test('gaussian init: A ~ N(0, 1/r²), B zero', () => {
  const { layer } = makeLayer(30, 64, 400);
  const ad = layer.addAdapter('default', { rank: 4, alpha: 4, seed: 31, initLoraWeights: 'gaussian' });
  const a = ad.a.dataSync();
  let sq = 0;
  for (const v of a) sq += v * v;
  const std = Math.sqrt(sq / a.length);
  // 1,600 draws: the sample std is within 5 % of 1/4 with overwhelming probability.
  assert.ok(Math.abs(std - 0.25) < 0.0125, `std ${std}`);
  assert.ok(ad.b.dataSync().every((v) => v === 0));
  layer.dispose();
});

for (const init of ['pissa', 'pissa_niter_4', 'olora'] as const) {
  test(`${init}: the initial model is the base, the residual is frozen, only A and B train, and the exported rank-2r LoRA merges onto the original base to the trained model`, async () => {
    const { w, bias, layer } = makeLayer(40);
    const r = 3;
    const ad = layer.addAdapter('default', { rank: r, alpha: 6, seed: 41, initLoraWeights: parseLoraInit(init) });
    assert.equal(ad.rank, r);
    const residual = new Float32Array(layer.weight.dataSync());
    // The initial model is the base exactly up to one rounding: each stored residual weight is the f32
    // nearest to W − s·B₀·A₀ (the product summed in f64), so W_res + s·B₀·A₀ − W is at most half an ulp of W_res.
    const lowRank0 = merged64(new Float32Array(OUT * IN), ad.b.dataSync(), ad.a.dataSync(), r, ad.scale);
    for (let i = 0; i < w.length; i++) {
      const exact = w[i]! - lowRank0[i]!;
      assert.ok(
        Math.abs(residual[i]! - exact) <= 2 ** -24 * Math.abs(residual[i]!) + 1e-45,
        `W_res[${i}] = ${residual[i]} is not the rounding of ${exact}`,
      );
    }
    const xData = randomData(N * IN, 42);
    const x = tf.tensor2d(xData, [N, IN]);
    expectAllClose(
      tf.tidy(() => layer.apply(x).dataSync()),
      dense64(xData, w, bias),
      { rtol: 1e-5, atol: 1e-5 },
      'initial model = base',
    );
    if (init === 'olora') {
      // B₀ = Q[:, :r] has orthonormal columns.
      const b0 = ad.b.dataSync();
      for (let c = 0; c < r; c++)
        for (let d = 0; d < r; d++) {
          let dot = 0;
          for (let o = 0; o < OUT; o++) dot += b0[o * r + c]! * b0[o * r + d]!;
          assert.ok(Math.abs(dot - (c === d ? 1 : 0)) < 1e-5, `QᵀQ[${c},${d}] = ${dot}`);
        }
    } else {
      // s·B₀·A₀ is W's best rank-r part: its singular values are W's top r (randomized: to 1e-3 with 4 iterations on this small matrix).
      const sw = (await exactSvd({ rows: OUT, cols: IN, data: w })).s;
      const lowRank = merged64(new Float32Array(OUT * IN), ad.b.dataSync(), ad.a.dataSync(), r, ad.scale);
      const sl = (await exactSvd({ rows: OUT, cols: IN, data: Float32Array.from(lowRank) })).s;
      expectAllClose(sl.subarray(0, r), sw.subarray(0, r), { rtol: init === 'pissa' ? 1e-5 : 1e-2 }, 'σ of s·B₀·A₀');
    }
    const opt = tf.train.adam(0.05);
    const target = tf.tensor2d(randomData(N * OUT, 43), [N, OUT]);
    const loss = () => tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }), target))) as tf.Scalar;
    const { grads } = tf.variableGrads(loss);
    assert.deepEqual(
      Object.keys(grads).sort(),
      [ad.a.name, ad.b.name].sort(),
      'PEFT trains A and B of a PiSSA/OLoRA adapter',
    );
    tf.dispose(grads);
    for (let i = 0; i < 5; i++) tf.tidy(() => void opt.minimize(loss, false, layer.trainableVariables()));
    assert.deepEqual(layer.weight.dataSync(), residual, 'the residual stays frozen');
    const trained = tf.tidy(() => layer.apply(x).dataSync());
    const exp = exportFactors(layer);
    assert.equal(exp.rank, 2 * r);
    assert.equal(exp.alpha, 12, 'α doubles with the rank, so s stays α/r');
    assert.equal(exp.bias, undefined);
    const onOriginal = merged64(w, exp.b, exp.a, exp.rank, exp.alpha / exp.rank);
    layer.merge();
    expectAllClose(
      onOriginal,
      layer.weight.dataSync(),
      { rtol: 0, atol: 2e-6 },
      'exported LoRA on the original W = trained W',
    );
    expectAllClose(dense64(xData, onOriginal, bias), trained, { rtol: 1e-5, atol: 1e-5 }, 'outputs');
    layer.unmerge();
    layer.deleteAdapter('default');
    assert.deepEqual(layer.weight.dataSync(), w, 'the original W comes back with the adapter gone');
    opt.dispose();
    tf.dispose([x, target]);
    layer.dispose();
  });
}

test('SVD/QR inits on a matrix of lower rank than r take min(r, out, in) directions and keep s = α/r', () => {
  const { w, layer } = makeLayer(50, 4, IN);
  const ad = layer.addAdapter('default', { rank: 8, alpha: 16, seed: 51, initLoraWeights: 'pissa' });
  assert.equal(ad.rank, 4);
  assert.equal(ad.scale, 2);
  const exp = exportFactors(layer);
  assert.equal(exp.rank, 8);
  assert.equal(exp.alpha / exp.rank, 2);
  assert.equal(merged64(layer.weight.dataSync(), ad.b.dataSync(), ad.a.dataSync(), 4, 2, 4, IN).length, w.length);
  layer.dispose();
});

test('no tensor leaks: a DoRA step and a PiSSA adapter’s life leave the tensor count where it was', () => {
  const { layer } = makeLayer(60);
  const before = tf.memory().numTensors;
  layer.addAdapter('default', { rank: 2, alpha: 2, seed: 61, useDora: true });
  const x = tf.tensor2d(randomData(N * IN, 62), [N, IN]);
  const opt = tf.train.sgd(0.1);
  const step = () =>
    tf.tidy(
      () =>
        void opt.minimize(
          () => tf.sum(layer.apply(x, { training: true })) as tf.Scalar,
          false,
          layer.trainableVariables(),
        ),
    );
  step(); // the optimiser keeps its learning rate as a tensor from its first step on
  const mid = tf.memory().numTensors;
  step();
  assert.equal(tf.memory().numTensors, mid);
  layer.merge();
  layer.unmerge();
  layer.deleteAdapter('default');
  layer.addAdapter('p', { rank: 2, alpha: 2, seed: 63, initLoraWeights: 'pissa' });
  layer.dispose();
  x.dispose();
  opt.dispose();
  assert.equal(tf.memory().numTensors, before);
});
