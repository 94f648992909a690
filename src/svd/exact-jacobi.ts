/**
 * One-sided (Hestenes) Jacobi SVD in f64, preceded by a Householder QR when the matrix
 * is clearly taller than wide (Drmač & Veselić 2008); the rotations are `smallSvd`'s, the one
 * Jacobi kernel of this layer. Rotations orthogonalise the columns
 * of the working matrix until every pair is orthogonal to working precision; the singular
 * values are then the column norms. Relatively accurate (Demmel & Veselić 1992): for
 * A = B·D with D diagonal and B well conditioned, every σ, however small, is found to a
 * relative error of about ε₆₄·κ(B), which the Gram and bidiagonal routes cannot promise.
 */
import { finishCooperatively } from '../yield.js';
import { applyHouseholdersBackSteps, householderQrColumnsSteps } from './qr.js';
import { smallSvdCooperative } from './small-svd.js';

/** Take the QR first when the long side is at least this many times the short one: the QR costs 2·len·p², one Jacobi sweep 5·len·p². */
const QR_RATIO = 1.25;

export interface JacobiResult {
  /** p singular values, descending. */
  s: Float64Array;
  /** Left vectors of the working matrix, p rows of length `len` (row j is the j-th vector); with `vectors` only. */
  left?: Float64Array;
  /** Right vectors, p rows of length p (row j is the j-th vector); with `vectors` only. */
  right?: Float64Array;
}

/**
 * SVD of the len×p matrix X whose p columns are given as the p rows of `cols` (row-major
 * [p, len], p ≤ len): X = L·diag(s)·Rᵀ. `cols` is overwritten. Cost ≈ 2·len·p² for the QR
 * plus 5·p³ per sweep (5·len·p² per sweep without the QR), 6–12 sweeps; vectors add
 * about as much again.
 * Lets the event loop turn every YIELD_INTERVAL_MS (src/yield.ts): this runs for seconds at p in the hundreds.
 * @example const { s } = await jacobiSvd(colsOfA, n, m, { vectors: false });
 */
export async function jacobiSvd(
  cols: Float64Array,
  p: number,
  len: number,
  { vectors }: { vectors: boolean },
): Promise<JacobiResult> {
  if (p > len) throw new RangeError(`jacobiSvd: needs p ≤ len, got p = ${p}, len = ${len}`);
  if (p === 0)
    return vectors
      ? { s: new Float64Array(0), left: new Float64Array(0), right: new Float64Array(0) }
      : { s: new Float64Array(0) };
  if (len >= QR_RATIO * p && p > 1) {
    // X = Q·R; the SVD of R (p×p) gives that of X with L = Q·L_R, R unchanged.
    const tau = await finishCooperatively(householderQrColumnsSteps(cols, p, len));
    const r = new Float64Array(p * p);
    // Column k of R is the first k+1 entries of row k of the reduced `cols`.
    for (let k = 0; k < p; k++) for (let i = 0; i <= k; i++) r[k * p + i] = cols[k * len + i]!;
    const small = await rotateToOrthogonal(r, p, p, vectors);
    if (!vectors) return { s: small.s };
    const left = new Float64Array(p * len);
    for (let j = 0; j < p; j++) left.set(small.left!.subarray(j * p, j * p + p), j * len);
    await finishCooperatively(applyHouseholdersBackSteps(cols, tau, p, len, left));
    return { s: small.s, left, right: small.right! };
  }
  return rotateToOrthogonal(cols, p, len, vectors);
}

/**
 * One-sided Jacobi on the p columns (rows of `x`, each of length len), by the same kernel that
 * finishes every randomized SVD (`smallSvd`), laid out as this module's callers want it.
 */
async function rotateToOrthogonal(x: Float64Array, p: number, len: number, vectors: boolean): Promise<JacobiResult> {
  const a = new Float64Array(len * p);
  for (let j = 0; j < p; j++) for (let i = 0; i < len; i++) a[i * p + j] = x[j * len + i]!;
  const svd = await smallSvdCooperative({ rows: len, cols: p, data: a }, { vectors });
  if (!vectors) return { s: svd.s };
  const left = new Float64Array(p * len);
  const right = new Float64Array(p * p);
  for (let r = 0; r < p; r++) {
    for (let i = 0; i < len; i++) left[r * len + i] = svd.u.data[i * p + r]!;
    for (let i = 0; i < p; i++) right[r * p + i] = svd.v.data[i * p + r]!;
  }
  return { s: svd.s, left, right };
}
