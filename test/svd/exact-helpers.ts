/**
 * Planted test matrices for the exact SVD tests, built independently of src/svd: a seeded
 * Gaussian generator, orthonormal factors from ml-matrix's QR, products in f64.
 */
import { Matrix as MlMatrix, QrDecomposition, SingularValueDecomposition } from 'ml-matrix';
import type { Matrix } from '../../src/svd/matrix.js';

/** Seeded standard normals (mulberry32 + Box–Muller). */
export function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** rows×cols f64 with orthonormal columns (cols ≤ rows), from ml-matrix's QR of a Gaussian matrix. */
export function orthonormal(rows: number, cols: number, seed: number): MlMatrix {
  const next = gaussian(seed);
  const g = new MlMatrix(rows, cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) g.set(i, j, next());
  return new QrDecomposition(g).orthogonalMatrix.subMatrix(0, rows - 1, 0, cols - 1);
}

export interface Planted {
  /** The f32 matrix handed to the code under test. */
  a: Matrix;
  /** Its f64 original U·diag(σ)·Vᵀ. */
  exact: MlMatrix;
  /** ‖a − exact‖_F: by Weyl's theorem every σ_i(a) lies within this of the planted σ_i. */
  roundingNorm: number;
}

/** a = f32(U·diag(sigma)·Vᵀ), U [m, p], V [n, p] orthonormal, p = sigma.length ≤ min(m, n). */
export function planted(m: number, n: number, sigma: number[], seed: number): Planted {
  const p = sigma.length;
  const u = orthonormal(m, p, seed);
  const v = orthonormal(n, p, seed + 1);
  for (let j = 0; j < p; j++) for (let i = 0; i < m; i++) u.set(i, j, u.get(i, j) * sigma[j]!);
  const exact = u.mmul(v.transpose());
  return fromMl(exact);
}

/** The f32 rounding of an f64 ml-matrix, with the norm of the rounding error. */
export function fromMl(exact: MlMatrix): Planted {
  const m = exact.rows;
  const n = exact.columns;
  const data = new Float32Array(m * n);
  let err = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const x = exact.get(i, j);
      data[i * n + j] = x;
      err += (data[i * n + j]! - x) ** 2;
    }
  }
  return { a: { rows: m, cols: n, data }, exact, roundingNorm: Math.sqrt(err) };
}

/** An f32 matrix as an f64 ml-matrix (exactly). */
export function toMl(a: Matrix): MlMatrix {
  const out = new MlMatrix(a.rows, a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.set(i, j, a.data[i * a.cols + j]!);
  return out;
}

/** Singular values of the f32 matrix by ml-matrix's Golub–Kahan SVD (the oracle), descending. */
export function oracleSingularValues(a: Matrix): number[] {
  const svd = new SingularValueDecomposition(toMl(a), {
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
    autoTranspose: true,
  });
  return [...svd.diagonal].sort((x, y) => y - x).slice(0, Math.min(a.rows, a.cols));
}

/** max_i |actual_i − expected_i| ≤ atol + rtol·|expected_i|, with a message naming the worst index. */
export function expectAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 0, atol = 0 }: { rtol?: number; atol?: number },
): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length}, expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const excess = Math.abs(actual[i]! - expected[i]!) - (atol + rtol * Math.abs(expected[i]!));
    if (!(excess <= worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0)
    throw new Error(`index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
}
