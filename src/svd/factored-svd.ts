/**
 * SVD of a LoRA product s·B·A from its factors, without forming the [out, in] product:
 * B = Q_b R_b, Aᵀ = Q_a R_a (thin Householder QR in f64), then the SVD of the
 * r×r core s·R_b·R_aᵀ = U_c Σ V_cᵀ gives s·B·A = (Q_b U_c) Σ (Q_a V_c)ᵀ.
 * Cost O((out + in)·r²) instead of O(out·in·r).
 */
import { ShapeError } from '../errors.js';
import { leadingColumns, type Matrix, type Matrix64 } from './matrix.js';
import { smallSvd } from './small-svd.js';

export interface FactoredSvd {
  /** [out, k] f32, orthonormal columns, k = min(r, out, in). */
  u: Matrix;
  /** Descending, min(r, out, in) values (every other singular value of the product is zero). */
  s: Float64Array;
  /** [in, k] f32, orthonormal columns. */
  v: Matrix;
}

/**
 * @param b  lora_B [out, r] row-major
 * @param a  lora_A [r, in] row-major
 * @param scale  s = α/r (or α/√r)
 * @example const { s } = factoredSvd(b, a, 2); // spectrum of 2·B·A
 */
export function factoredSvd(b: Matrix, a: Matrix, scale: number): FactoredSvd {
  const r = b.cols;
  if (a.rows !== r)
    throw new ShapeError(`LoRA factors do not fit: B is [${b.rows}, ${b.cols}], A is [${a.rows}, ${a.cols}]`);
  const qb = thinQr(toColumns(b.data, b.rows, r, false));
  const qa = thinQr(toColumns(a.data, a.cols, r, true));
  // core = scale · R_b · R_aᵀ (both upper triangular r×r)
  const core = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++) {
      let sum = 0;
      for (let k = Math.max(i, j); k < r; k++) sum += qb.r[i * r + k]! * qa.r[j * r + k]!;
      core[i * r + j] = scale * sum;
    }
  const svd = smallSvd({ rows: r, cols: r, data: core }, { vectors: true });
  // The product has rank at most min(r, out, in): past that its singular values are zero and
  // its directions do not exist (B of 10 rows cannot hold 64 orthonormal columns).
  const k = Math.min(r, b.rows, a.cols);
  return { u: leadingColumns(times(qb, svd.u), k), s: svd.s.slice(0, k), v: leadingColumns(times(qa, svd.v), k) };
}

/** An n×r matrix kept as r columns of length n (f64), what Householder QR works on. */
interface Columns {
  n: number;
  r: number;
  /** column-major: column j at [j·n, (j+1)·n) */
  data: Float64Array;
}

/** Columns of `data` viewed as [rows, r] (transposed = the data is [r, rows] row-major). */
function toColumns(data: Float32Array, n: number, r: number, transposed: boolean): Columns {
  const out = new Float64Array(n * r);
  for (let j = 0; j < r; j++)
    for (let i = 0; i < n; i++) out[j * n + i] = transposed ? data[j * n + i]! : data[i * r + j]!;
  return { n, r, data: out };
}

interface Qr {
  /** Householder vectors, column-major (overwritten columns). */
  v: Columns;
  /** R, r×r row-major upper triangular. */
  r: Float64Array;
  /** Householder scalars τ_j. */
  tau: Float64Array;
}

/** Householder QR of an n×r matrix (n ≥ r is not required: columns past n give zero rows of R). */
function thinQr(c: Columns): Qr {
  const { n, r, data } = c;
  const R = new Float64Array(r * r);
  const tau = new Float64Array(r);
  for (let j = 0; j < Math.min(r, n); j++) {
    const col = j * n;
    let norm = 0;
    for (let i = j; i < n; i++) norm += data[col + i]! * data[col + i]!;
    norm = Math.sqrt(norm);
    const x0 = data[col + j]!;
    if (norm === 0) {
      tau[j] = 0;
      continue;
    }
    const alpha = x0 >= 0 ? -norm : norm;
    // v = x − alpha·e_j, stored in place with v_j; τ = 2 / ‖v‖²
    data[col + j] = x0 - alpha;
    let vnorm = 0;
    for (let i = j; i < n; i++) vnorm += data[col + i]! * data[col + i]!;
    tau[j] = 2 / vnorm;
    for (let k = j + 1; k < r; k++) {
      const ck = k * n;
      let dot = 0;
      for (let i = j; i < n; i++) dot += data[col + i]! * data[ck + i]!;
      const f = tau[j]! * dot;
      for (let i = j; i < n; i++) data[ck + i]! -= f * data[col + i]!;
    }
    R[j * r + j] = alpha;
    for (let k = j + 1; k < r; k++) R[j * r + k] = data[k * n + j]!;
  }
  return { v: c, r: R, tau };
}

/** Q·X for Q the n×r orthonormal factor of `qr` and X [r, r] row-major: [n, r] f32. */
function times(qr: Qr, x: Matrix64): Matrix {
  const { n, r, data } = qr.v;
  const k = Math.min(r, n);
  // Build Q·X by applying the reflectors to [X; 0] (n×r), last reflector first.
  const y = new Float64Array(n * r); // column-major
  for (let j = 0; j < r; j++) for (let i = 0; i < Math.min(r, n); i++) y[j * n + i] = x.data[i * x.cols + j]!;
  for (let h = k - 1; h >= 0; h--) {
    const t = qr.tau[h]!;
    if (t === 0) continue;
    const col = h * n;
    for (let j = 0; j < r; j++) {
      const yj = j * n;
      let dot = 0;
      for (let i = h; i < n; i++) dot += data[col + i]! * y[yj + i]!;
      const f = t * dot;
      for (let i = h; i < n; i++) y[yj + i]! -= f * data[col + i]!;
    }
  }
  const out = new Float32Array(n * r);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) out[i * r + j] = y[j * n + i]!;
  return { rows: n, cols: r, data: out };
}
