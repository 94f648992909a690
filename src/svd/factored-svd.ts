/**
 * SVD of a LoRA product s·B·A from its factors, without forming the [out, in] product:
 * B = Q_b R_b, Aᵀ = Q_a R_a (thin Householder QR in f64, qr.ts's), then the SVD of the
 * r×r core s·R_b·R_aᵀ = U_c Σ V_cᵀ gives s·B·A = (Q_b U_c) Σ (Q_a V_c)ᵀ.
 * Cost O((out + in)·r²) instead of O(out·in·r).
 */
import { ShapeError } from '../errors.js';
import { leadingColumns, type Matrix, type Matrix64 } from './matrix.js';
import { applyHouseholdersBack, householderQrColumns } from './qr.js';
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
  const qb = qrOf(b.data, b.rows, r, false);
  const qa = qrOf(a.data, a.cols, r, true);
  // core = scale · R_b · R_aᵀ (both upper triangular r×r)
  const core = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++) {
      let sum = 0;
      for (let k = Math.max(i, j); k < r; k++) sum += qb.R[i * r + k]! * qa.R[j * r + k]!;
      core[i * r + j] = scale * sum;
    }
  const svd = smallSvd({ rows: r, cols: r, data: core }, { vectors: true });
  // The product has rank at most min(r, out, in): past that its singular values are zero and
  // its directions do not exist (B of 10 rows cannot hold 64 orthonormal columns).
  const k = Math.min(r, b.rows, a.cols);
  return { u: leadingColumns(times(qb, svd.u), k), s: svd.s.slice(0, k), v: leadingColumns(times(qa, svd.v), k) };
}

/** Householder QR of an n×r matrix (n ≥ r is not required: columns past n give zero rows of R). */
interface Qr {
  n: number;
  r: number;
  /** The r columns of length n (row j = column j), overwritten by `householderQrColumns`'s reflectors. */
  cols: Float64Array;
  tau: Float64Array;
  /** R, r×r row-major upper triangular. */
  R: Float64Array;
}

/** QR of the columns of `data` viewed as [n, r] (transposed: the data is [r, n] row-major). */
function qrOf(data: Float32Array, n: number, r: number, transposed: boolean): Qr {
  const cols = new Float64Array(r * n);
  for (let j = 0; j < r; j++)
    for (let i = 0; i < n; i++) cols[j * n + i] = transposed ? data[j * n + i]! : data[i * r + j]!;
  const tau = householderQrColumns(cols, r, n);
  // Row k of `cols` holds R's column k in its entries 0..k.
  const R = new Float64Array(r * r);
  for (let k = 0; k < r; k++) for (let i = 0; i <= Math.min(k, n - 1); i++) R[i * r + k] = cols[k * n + i]!;
  return { n, r, cols, tau, R };
}

/** Q·X for Q the n×r orthonormal factor of `qr` and X [r, r] row-major: [n, r] f32. */
function times(qr: Qr, x: Matrix64): Matrix {
  const { n, r } = qr;
  // Column j of [X; 0] as row j of `left`, then the reflectors applied last first.
  const left = new Float64Array(r * n);
  for (let j = 0; j < r; j++) for (let i = 0; i < Math.min(r, n); i++) left[j * n + i] = x.data[i * x.cols + j]!;
  applyHouseholdersBack(qr.cols, qr.tau, r, n, left);
  const out = new Float32Array(n * r);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) out[i * r + j] = left[j * n + i]!;
  return { rows: n, cols: r, data: out };
}
