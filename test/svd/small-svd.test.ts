import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Matrix as MlMatrix, SingularValueDecomposition } from 'ml-matrix';
import type { Matrix64 } from '../../src/svd/matrix.js';
import { createRng } from '../../src/svd/random.js';
import { rightVectors, smallSingularValues, smallSvd, smallSvdLeft } from '../../src/svd/small-svd.js';
import { expectAllClose } from '../helpers/close.js';
import { orthogonalityError } from './planted.js';

function oracle(a: Matrix64): number[] {
  const rows: number[][] = [];
  for (let i = 0; i < a.rows; i++) rows.push(Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols)));
  return new SingularValueDecomposition(new MlMatrix(rows), { autoTranspose: true }).diagonal;
}

function gaussian(rows: number, cols: number, seed: number): Matrix64 {
  const rng = createRng(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => rng.normal()) };
}

/** max |a − u·diag(s)·vᵀ| */
function residual(a: Matrix64, u: Matrix64, s: Float64Array, v: Matrix64): number {
  const p = s.length;
  let worst = 0;
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) {
      let x = a.data[i * a.cols + j]!;
      for (let t = 0; t < p; t++) x -= u.data[i * p + t]! * s[t]! * v.data[j * p + t]!;
      worst = Math.max(worst, Math.abs(x));
    }
  }
  return worst;
}

describe('smallSvd (one-sided Jacobi, f64)', () => {
  for (const [rows, cols] of [
    [30, 30],
    [60, 25],
    [25, 60],
    [1, 5],
    [5, 1],
  ] as const) {
    it(`${rows}×${cols} Gaussian: matches ml-matrix to 1e-12 and factors the matrix`, () => {
      const a = gaussian(rows, cols, rows * 100 + cols);
      const { u, s, v } = smallSvd(a);
      const p = Math.min(rows, cols);
      assert.deepEqual([u.rows, u.cols, v.rows, v.cols, s.length], [rows, p, cols, p, p]);
      expectAllClose(s, oracle(a), { rtol: 1e-12, atol: 1e-12 }, 'σ');
      assert.ok(orthogonalityError(u) < 1e-13 && orthogonalityError(v) < 1e-13);
      assert.ok(residual(a, u, s, v) < 1e-12);
    });
  }

  it('keeps high relative accuracy on a graded matrix (σ from 1 to 1e-12)', () => {
    // D·G with D = diag(10^(-12 i / 19)): Jacobi keeps every σ to a few ulps relative; the
    // exact values are those of the same product formed by ml-matrix in f64.
    const n = 20;
    const g = gaussian(n, n, 5);
    const a = { rows: n, cols: n, data: g.data.map((x, idx) => x * 10 ** ((-12 * Math.floor(idx / n)) / (n - 1))) };
    const { s } = smallSvd(a, { vectors: false });
    const ref = oracle(a);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(s[i]! - ref[i]!) <= 1e-13 * ref[0]!, `σ${i + 1}`);
    assert.ok(s[n - 1]! > 0 && s[n - 1]! < 1e-10);
  });

  it('completes U for a rank-deficient matrix', () => {
    // rank 2: rows are combinations of two vectors
    const rng = createRng(2);
    const x = Array.from({ length: 6 }, () => rng.normal());
    const y = Array.from({ length: 6 }, () => rng.normal());
    const data = new Float64Array(10 * 6);
    for (let i = 0; i < 10; i++) for (let j = 0; j < 6; j++) data[i * 6 + j] = (i % 3) * x[j]! + (i % 2) * y[j]!;
    const a = { rows: 10, cols: 6, data };
    const { u, s, v } = smallSvd(a);
    assert.ok(s[2]! < 1e-14 * s[0]!);
    assert.ok(orthogonalityError(u) < 1e-12 && orthogonalityError(v) < 1e-12);
    assert.ok(residual(a, u, s, v) < 1e-12);
    const zero = smallSvd({ rows: 4, cols: 3, data: new Float64Array(12) });
    assert.deepEqual(Array.from(zero.s), [0, 0, 0]);
    assert.ok(orthogonalityError(zero.u) < 1e-15);
  });

  it('smallSvdLeft + rightVectors factor the matrix like smallSvd, also when rank-deficient', async () => {
    const full = gaussian(40, 40, 3);
    // rank 25: the last 15 columns repeat combinations of the first ones
    const deficient = gaussian(40, 40, 4);
    for (let i = 0; i < 40; i++)
      for (let j = 25; j < 40; j++)
        deficient.data[i * 40 + j] = deficient.data[i * 40 + j - 25]! - 0.5 * deficient.data[i * 40 + j - 20]!;
    for (const a of [full, deficient]) {
      const { u, s } = await smallSvdLeft(a);
      expectAllClose(s, oracle(a), { rtol: 1e-12, atol: 1e-12 }, 'σ');
      const v = rightVectors(a, u, s, 40);
      assert.ok(orthogonalityError(u) < 1e-12 && orthogonalityError(v) < 1e-12);
      assert.ok(residual(a, u, s, v) < 1e-12, `residual ${residual(a, u, s, v)}`);
      const top = rightVectors(a, u, s, 10);
      assert.deepEqual([top.rows, top.cols], [40, 10]);
      for (let i = 0; i < 40; i++)
        for (let j = 0; j < 10; j++) assert.ok(Math.abs(top.data[i * 10 + j]! - v.data[i * 40 + j]!) < 1e-12);
    }
    await assert.rejects(smallSvdLeft(gaussian(3, 4, 1)), RangeError);
  });

  it('without vectors returns values only and leaves the input alone', () => {
    const a = gaussian(8, 5, 1);
    const copy = a.data.slice();
    const { u, s, v } = smallSvd(a, { vectors: false });
    assert.equal(s.length, 5);
    assert.deepEqual([u.cols, v.cols], [0, 0]);
    assert.deepEqual(a.data, copy);
  });
});

describe('smallSingularValues (Householder bidiagonalisation, values only)', () => {
  for (const [rows, cols] of [
    [72, 72],
    [60, 25],
    [25, 60],
    [1, 5],
    [5, 1],
  ] as const) {
    it(`${rows}×${cols} Gaussian: every σ within 1e-13·σ₁ of ml-matrix`, () => {
      const a = gaussian(rows, cols, rows * 7 + cols);
      const s = smallSingularValues(a);
      const ref = oracle(a);
      assert.equal(s.length, Math.min(rows, cols));
      for (let i = 0; i < s.length; i++) assert.ok(Math.abs(s[i]! - ref[i]!) <= 1e-13 * ref[0]!, `σ${i + 1}`);
    });
  }

  it('an upper-triangular core with a graded and a rank-deficient part, scaled to 1e-30', () => {
    // The R of a randomized SVD: σ from 1 down to 1e-9, the last four exactly zero, all times 1e-30.
    const n = 24;
    const g = gaussian(n, n, 9);
    const data = new Float64Array(n * n);
    for (let i = 0; i < n - 4; i++)
      for (let j = i; j < n; j++) data[i * n + j] = 1e-30 * g.data[i * n + j]! * 10 ** ((-9 * i) / (n - 5));
    const a = { rows: n, cols: n, data };
    const s = smallSingularValues(a);
    const ref = oracle(a);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(s[i]! - ref[i]!) <= 1e-13 * ref[0]!, `σ${i + 1}`);
    for (let i = n - 4; i < n; i++) assert.ok(s[i]! <= 1e-14 * s[0]!, `σ${i + 1} = ${s[i]} is zero up to rounding`);
    assert.ok(
      s.every((x, i) => i === 0 || x <= s[i - 1]!),
      'descending',
    );
  });

  it('zero and non-finite matrices', () => {
    assert.deepEqual(Array.from(smallSingularValues({ rows: 3, cols: 2, data: new Float64Array(6) })), [0, 0]);
    assert.throws(() => smallSingularValues({ rows: 1, cols: 2, data: Float64Array.of(1, Number.NaN) }), /non-finite/);
  });
});
