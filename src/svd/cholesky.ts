/**
 * Cholesky factor of a symmetric positive definite matrix and solves with it, in f64, recursive
 * (Gustavson 1997; Elmroth–Gustavson 2004): each level halves the matrix, factors or solves the
 * two halves and joins them with one GEMM, so nearly all of the n³/3 (factor) and m·n² (solve)
 * flops run in the GEMM engine (`matmul64`); blocks of at most LEAF run in plain loops.
 */
import { DeltarankError } from '../errors.js';
import { subtractProduct64 } from './gemm.js';
import type { Matrix64 } from './matrix.js';

/** Blocks this small run in plain loops: below it a GEMM session call costs more than it saves. */
const LEAF = 64;

/** Rows r0..r1 and columns c0..c1 of a, a new matrix. */
function block(a: Matrix64, r0: number, r1: number, c0: number, c1: number): Matrix64 {
  const cols = c1 - c0;
  const data = new Float64Array((r1 - r0) * cols);
  for (let i = r0; i < r1; i++) data.set(a.data.subarray(i * a.cols + c0, i * a.cols + c1), (i - r0) * cols);
  return { rows: r1 - r0, cols, data };
}

/** Writes b into a at row r0, column c0. */
function put(a: Matrix64, b: Matrix64, r0: number, c0: number): void {
  for (let i = 0; i < b.rows; i++) a.data.set(b.data.subarray(i * b.cols, (i + 1) * b.cols), (r0 + i) * a.cols + c0);
}

/**
 * Lower-triangular L [n, n] with L·Lᵀ = a, a new matrix (a is not changed; only its lower
 * triangle is read). Throws DeltarankError when a is not positive definite to working precision.
 * Cost n³/3 flops.
 * @example const l = await choleskyLower(g); // g = XᵀX + δI
 */
export async function choleskyLower(a: Matrix64): Promise<Matrix64> {
  const n = a.rows;
  if (n <= LEAF) {
    const l = new Float64Array(n * n);
    for (let j = 0; j < n; j++) {
      let d = a.data[j * n + j]!;
      for (let k = 0; k < j; k++) d -= l[j * n + k]! ** 2;
      if (!(d > 0)) throw new DeltarankError(`choleskyLower: the matrix is not positive definite (pivot ${j}: ${d})`);
      const root = Math.sqrt(d);
      l[j * n + j] = root;
      for (let i = j + 1; i < n; i++) {
        let s = a.data[i * n + j]!;
        for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
        l[i * n + j] = s / root;
      }
    }
    return { rows: n, cols: n, data: l };
  }
  const h = n >> 1;
  const l11 = await choleskyLower(block(a, 0, h, 0, h));
  // L21 = A21·L11⁻ᵀ, then L22 = chol(A22 − L21·L21ᵀ).
  const l21 = await solveLowerTransposed(block(a, h, n, 0, h), l11);
  const l22 = await choleskyLower(await subtractProduct64(block(a, h, n, h, n), l21, l21, { transB: true }));
  const l: Matrix64 = { rows: n, cols: n, data: new Float64Array(n * n) };
  put(l, l11, 0, 0);
  put(l, l21, h, 0);
  put(l, l22, h, h);
  return l;
}

/** X with X·Lᵀ = B (B [m, n], L [n, n] lower), a new matrix. Cost m·n² flops. */
async function solveLowerTransposed(b: Matrix64, l: Matrix64): Promise<Matrix64> {
  const n = l.rows;
  const m = b.rows;
  if (n <= LEAF) {
    // Row by row: x_j = (b_j − Σ_{k<j} x_k·L[j, k]) / L[j, j].
    const x = new Float64Array(b.data);
    for (let i = 0; i < m; i++) {
      const o = i * n;
      for (let j = 0; j < n; j++) {
        let s = x[o + j]!;
        for (let k = 0; k < j; k++) s -= x[o + k]! * l.data[j * n + k]!;
        x[o + j] = s / l.data[j * n + j]!;
      }
    }
    return { rows: m, cols: n, data: x };
  }
  const h = n >> 1;
  // [X1 X2]·[L11 0; L21 L22]ᵀ = [X1·L11ᵀ, X1·L21ᵀ + X2·L22ᵀ].
  const x1 = await solveLowerTransposed(block(b, 0, m, 0, h), block(l, 0, h, 0, h));
  const rest = await subtractProduct64(block(b, 0, m, h, n), x1, block(l, h, n, 0, h), { transB: true });
  const x2 = await solveLowerTransposed(rest, block(l, h, n, h, n));
  const x: Matrix64 = { rows: m, cols: n, data: new Float64Array(m * n) };
  put(x, x1, 0, 0);
  put(x, x2, 0, h);
  return x;
}

/** X with X·L = B (B [m, n], L [n, n] lower), a new matrix. Cost m·n² flops. */
async function solveLower(b: Matrix64, l: Matrix64): Promise<Matrix64> {
  const n = l.rows;
  const m = b.rows;
  if (n <= LEAF) {
    // Backwards: x_j = (b_j − Σ_{k>j} x_k·L[k, j]) / L[j, j].
    const x = new Float64Array(b.data);
    for (let i = 0; i < m; i++) {
      const o = i * n;
      for (let j = n - 1; j >= 0; j--) {
        let s = x[o + j]!;
        for (let k = j + 1; k < n; k++) s -= x[o + k]! * l.data[k * n + j]!;
        x[o + j] = s / l.data[j * n + j]!;
      }
    }
    return { rows: m, cols: n, data: x };
  }
  const h = n >> 1;
  // [X1 X2]·[L11 0; L21 L22] = [X1·L11 + X2·L21, X2·L22].
  const x2 = await solveLower(block(b, 0, m, h, n), block(l, h, n, h, n));
  const rest = await subtractProduct64(block(b, 0, m, 0, h), x2, block(l, h, n, 0, h));
  const x1 = await solveLower(rest, block(l, 0, h, 0, h));
  const x: Matrix64 = { rows: m, cols: n, data: new Float64Array(m * n) };
  put(x, x1, 0, 0);
  put(x, x2, 0, h);
  return x;
}

/**
 * B·(L·Lᵀ)⁻¹ for B [m, n] and the Cholesky factor L [n, n] of choleskyLower, a new matrix: the
 * right-hand solve X·A = B with A = L·Lᵀ. Cost 2·m·n² flops.
 * @example const x = await solveCholesky(r, await choleskyLower(g)); // R·G⁻¹
 */
export async function solveCholesky(b: Matrix64, l: Matrix64): Promise<Matrix64> {
  // X·L·Lᵀ = B: Z = X·L solves Z·Lᵀ = B, then X·L = Z.
  return solveLower(await solveLowerTransposed(b, l), l);
}
