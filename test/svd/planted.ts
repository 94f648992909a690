/** Test matrices with a known spectrum, and f64 reference checks that share no code with src/svd's solvers. */
import { Matrix as MlMatrix, SingularValueDecomposition } from 'ml-matrix';
import type { Matrix } from '../../src/svd/matrix.js';
import { randomOrthonormal64 } from '../../src/svd/random.js';

/** A = U·diag(σ)·Vᵀ rounded to f32, U [m, p] and V [n, p] Haar-random (p = σ.length). */
export function planted(m: number, n: number, sigma: ArrayLike<number>, seed: number): Matrix {
  const p = sigma.length;
  const u = randomOrthonormal64(m, p, seed);
  const v = randomOrthonormal64(n, p, seed + 1000);
  const data = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let t = 0; t < p; t++) {
      const c = u.data[i * p + t]! * sigma[t]!;
      if (c === 0) continue;
      for (let j = 0; j < n; j++) row[j]! += c * v.data[j * p + t]!;
    }
    data.set(row, i * n);
  }
  return { rows: m, cols: n, data };
}

/** All singular values of the f32 matrix, in f64, by ml-matrix (the independent oracle). */
export function oracleSingularValues(a: Matrix): number[] {
  const rows: number[][] = [];
  for (let i = 0; i < a.rows; i++) rows.push(Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols)));
  const svd = new SingularValueDecomposition(new MlMatrix(rows), {
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
    autoTranspose: true,
  });
  return svd.diagonal;
}

/** max |XᵀX − I| over the entries, in f64. */
export function orthogonalityError(x: { rows: number; cols: number; data: ArrayLike<number> }): number {
  const { rows, cols, data } = x;
  let worst = 0;
  for (let a = 0; a < cols; a++) {
    for (let b = a; b < cols; b++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += data[i * cols + a]! * data[i * cols + b]!;
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

/** ‖A − U·diag(s)·Vᵀ‖_F in f64. */
export function residualNorm(a: Matrix, u: Matrix, s: ArrayLike<number>, v: Matrix): number {
  const r = s.length;
  let sum = 0;
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) {
      let x = a.data[i * a.cols + j]!;
      for (let t = 0; t < r; t++) x -= u.data[i * r + t]! * s[t]! * v.data[j * r + t]!;
      sum += x * x;
    }
  }
  return Math.sqrt(sum);
}

/** (Σ_{i≥r} σᵢ²)^{1/2}: the Eckart–Young optimum of a rank-r approximation. */
export function tailNorm(sigma: ArrayLike<number>, r: number): number {
  let sum = 0;
  for (let i = r; i < sigma.length; i++) sum += sigma[i]! * sigma[i]!;
  return Math.sqrt(sum);
}
