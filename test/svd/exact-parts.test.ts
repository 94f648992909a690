import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { jacobiSvd } from '../../src/svd/exact-jacobi.js';
import { denseToBand } from '../../src/svd/symmetric-eigen-band.js';
import { symmetricEigenvalues } from '../../src/svd/symmetric-eigenvalues.js';
import { tridiagonalEigenvalues } from '../../src/svd/tridiagonal-eigenvalues.js';
import {
  bandToTridiagonal,
  bandToTridiagonalParallel,
  lowerBand,
  PARALLEL_MIN_N,
} from '../../src/svd/tridiagonal-from-band.js';
import { expectAllClose, gaussian, orthonormal } from './exact-helpers.js';

const EPS32 = 2 ** -24;

function oracleEigenvalues(full: MlMatrix): number[] {
  return new EigenvalueDecomposition(full, { assumeSymmetric: true }).realEigenvalues.sort((x, y) => y - x);
}

describe('tridiagonalEigenvalues', () => {
  it('Toeplitz tridiagonal: λ_k = a + 2b·cos(kπ/(n+1)) in closed form', () => {
    for (const [n, a, b] of [
      [1, 3, 0],
      [2, 1, -2],
      [50, 2, 1],
      [301, -1, 1e-3],
    ] as const) {
      const expected = Array.from({ length: n }, (_, k) => a + 2 * b * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort(
        (x, y) => y - x,
      );
      const got = tridiagonalEigenvalues(new Float64Array(n).fill(a), new Float64Array(Math.max(0, n - 1)).fill(b));
      expectAllClose(got, expected, { atol: 1e-13 * (Math.abs(a) + 2 * Math.abs(b)) });
    }
  });

  it('zero, split (exact zero off-diagonals) and huge-scale matrices', () => {
    assert.deepEqual([...tridiagonalEigenvalues(new Float64Array(4), new Float64Array(3))], [0, 0, 0, 0]);
    const split = tridiagonalEigenvalues(Float64Array.of(5, -1, 2, 2), Float64Array.of(0, 0, 1));
    expectAllClose(split, [5, 3, 1, -1], { atol: 1e-14 });
    const huge = tridiagonalEigenvalues(Float64Array.of(1e200, 1e200), Float64Array.of(1e200));
    expectAllClose(huge, [2e200, 0], { atol: 1e186 });
  });
});

describe('bandToTridiagonal (bulge chasing)', () => {
  it('keeps the eigenvalues of random band matrices (ml-matrix oracle), trace and Frobenius norm', () => {
    for (const [n, b, seed] of [
      [10, 3, 1],
      [41, 5, 2],
      [120, 16, 3],
      [6, 8, 4],
      [70, 2, 5],
    ] as const) {
      const next = gaussian(seed);
      const band = lowerBand(n, 2 * b);
      const full = MlMatrix.zeros(n, n);
      for (let i = 0; i < n; i++) {
        for (let c = Math.max(0, i - b); c <= i; c++) {
          const x = next();
          band.data[i * band.width + band.width + c] = x;
          full.set(i, c, x);
          full.set(c, i, x);
        }
      }
      const { d, e } = bandToTridiagonal(band, b);
      let trace = 0;
      let fro2 = 0;
      for (let i = 0; i < n; i++) {
        trace += d[i]!;
        fro2 += d[i]! ** 2 + (i < n - 1 ? 2 * e[i]! ** 2 : 0);
      }
      assert.ok(Math.abs(trace - full.trace()) < 1e-12 * n);
      assert.ok(Math.abs(fro2 - full.norm('frobenius') ** 2) < 1e-12 * fro2);
      expectAllClose(tridiagonalEigenvalues(d, e), oracleEigenvalues(full), { atol: 1e-13 * Math.sqrt(fro2) });
    }
  });
  it('pipelined over 2 and 3 worker threads: bit-for-bit the result of one thread', async () => {
    const n = PARALLEL_MIN_N + 37;
    const b = 5;
    const next = gaussian(99);
    const serial = lowerBand(n, 2 * b);
    for (let i = 0; i < n; i++)
      for (let c = Math.max(0, i - b); c <= i; c++) serial.data[i * serial.width + serial.width + c] = next();
    const original = serial.data.slice();
    const want = bandToTridiagonal(serial, b);
    let offDiagonal = 0;
    for (const x of want.e) offDiagonal += Math.abs(x);
    assert.ok(offDiagonal > 0);
    for (const threads of [2, 3]) {
      const shared = lowerBand(n, 2 * b, { shared: true });
      shared.data.set(original);
      const got = await bandToTridiagonalParallel(shared, b, { threads });
      assert.deepEqual(got.d, want.d);
      assert.deepEqual(got.e, want.e);
    }
  });
});

describe('denseToBand and symmetricEigenvalues', () => {
  it('planted symmetric Q·diag(λ)·Qᵀ: eigenvalues within f32 rounding, for several bandwidths', async () => {
    for (const [n, b] of [
      [90, 8],
      [130, 32],
      [45, 32],
      [20, 1],
    ] as const) {
      const lambda = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 10 * Math.cos(i))).sort((x, y) => y - x);
      const q = orthonormal(n, n, n);
      const full = q.clone().mulRowVector(lambda).mmul(q.transpose());
      const data = new Float32Array(n * n);
      let rounding = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          // Symmetric in f32 too: both triangles from the lower one.
          const x = full.get(Math.max(i, j), Math.min(i, j));
          data[i * n + j] = x;
          rounding += (data[i * n + j]! - x) ** 2;
        }
      }
      const got = await symmetricEigenvalues({ rows: n, cols: n, data }, { bandwidth: b });
      // Weyl: the rounding moves each eigenvalue by ≤ its norm; the f32 reduction by ≈ n^½·ε₃₂·‖G‖.
      expectAllClose(got, lambda, { atol: Math.sqrt(rounding) + 4 * Math.sqrt(n) * EPS32 * 10 });
    }
  });

  it('returns a band of the asked width, orthogonally similar (Frobenius norm kept)', async () => {
    const n = 100;
    const b = 12;
    const next = gaussian(77);
    const data = new Float32Array(n * n);
    let fro2 = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        const x = Math.fround(next());
        data[i * n + j] = x;
        data[j * n + i] = x;
        fro2 += (i === j ? 1 : 2) * x * x;
      }
    }
    const band = await denseToBand({ rows: n, cols: n, data }, b);
    assert.equal(band.width, 2 * b);
    let got = 0;
    for (let i = 0; i < n; i++) {
      for (let c = Math.max(0, i - band.width); c <= i; c++) {
        const x = band.data[i * band.width + band.width + c]!;
        if (i - c > b) assert.equal(x, 0, `entry (${i}, ${c}) outside the band`);
        got += (i === c ? 1 : 2) * x * x;
      }
    }
    assert.ok(Math.abs(got - fro2) < 1e-5 * fro2, `‖band‖² ${got} vs ‖G‖² ${fro2}`);
  });
});

describe('jacobiSvd', () => {
  it('with and without the QR preconditioner (tall and square) gives the same σ and valid vectors', async () => {
    for (const [p, len] of [
      [20, 20],
      [20, 80],
    ] as const) {
      const next = gaussian(p * len);
      const cols = Float64Array.from({ length: p * len }, next);
      const plain = await jacobiSvd(cols.slice(), p, len, { vectors: true });
      // The same matrix with its columns reversed: the same σ, a different path through the rotations.
      const reversed = new Float64Array(p * len);
      for (let j = 0; j < p; j++) reversed.set(cols.subarray(j * len, (j + 1) * len), (p - 1 - j) * len);
      expectAllClose((await jacobiSvd(reversed, p, len, { vectors: false })).s, plain.s, { atol: 1e-13 * plain.s[0]! });
      // X·r_j = s_j·l_j for every j, with X the original columns.
      for (let j = 0; j < p; j++) {
        for (let i = 0; i < len; i++) {
          let xr = 0;
          for (let k = 0; k < p; k++) xr += cols[k * len + i]! * plain.right![j * p + k]!;
          assert.ok(Math.abs(xr - plain.s[j]! * plain.left![j * len + i]!) < 1e-12 * plain.s[0]!);
        }
      }
    }
  });
});
