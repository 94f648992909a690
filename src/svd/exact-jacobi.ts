/**
 * One-sided (Hestenes) Jacobi SVD in f64, preceded by a Householder QR when the matrix
 * is clearly taller than wide (Drmač & Veselić 2008); the rotations are `smallSvd`'s, the one
 * Jacobi kernel of this layer. Rotations orthogonalise the columns
 * of the working matrix until every pair is orthogonal to working precision; the singular
 * values are then the column norms. Relatively accurate (Demmel & Veselić 1992): for
 * A = B·D with D diagonal and B well conditioned, every σ, however small, is found to a
 * relative error of about ε₆₄·κ(B), which the Gram and bidiagonal routes cannot promise.
 */
import { smallSvd } from './small-svd.js';

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
 * @example const { s } = jacobiSvd(colsOfA, n, m, { vectors: false });
 */
export function jacobiSvd(cols: Float64Array, p: number, len: number, { vectors }: { vectors: boolean }): JacobiResult {
  if (p > len) throw new RangeError(`jacobiSvd: needs p ≤ len, got p = ${p}, len = ${len}`);
  if (p === 0)
    return vectors
      ? { s: new Float64Array(0), left: new Float64Array(0), right: new Float64Array(0) }
      : { s: new Float64Array(0) };
  if (len >= QR_RATIO * p && p > 1) {
    // X = Q·R; the SVD of R (p×p) gives that of X with L = Q·L_R, R unchanged.
    const tau = householderQrColumns(cols, p, len);
    const r = new Float64Array(p * p);
    // Column k of R is the first k+1 entries of row k of the reduced `cols`.
    for (let k = 0; k < p; k++) for (let i = 0; i <= k; i++) r[k * p + i] = cols[k * len + i]!;
    const small = rotateToOrthogonal(r, p, p, vectors);
    if (!vectors) return { s: small.s };
    const left = new Float64Array(p * len);
    for (let j = 0; j < p; j++) left.set(small.left!.subarray(j * p, j * p + p), j * len);
    applyHouseholdersBack(cols, tau, p, len, left);
    return { s: small.s, left, right: small.right! };
  }
  return rotateToOrthogonal(cols, p, len, vectors);
}

/**
 * Householder QR of the len×p matrix X whose columns are the rows of `cols` ([p, len]), in
 * place: afterwards row k holds R's column k in entries 0..k and reflector k's tail (its
 * head is 1) in entries k+1..len. Returns the p reflector scalars τ (H_k = I − τ_k·v_k·v_kᵀ).
 * Column-wise backward stable, which keeps the relative accuracy of a Jacobi step that
 * follows. Cost 2·len·p² − ⅔·p³ flops.
 */
export function householderQrColumns(cols: Float64Array, p: number, len: number): Float64Array {
  const reflectors = Math.min(p, len);
  const tau = new Float64Array(reflectors);
  for (let k = 0; k < reflectors; k++) {
    const row = k * len;
    let scale = 0;
    for (let i = k; i < len; i++) scale = Math.max(scale, Math.abs(cols[row + i]!));
    if (scale === 0) continue;
    let norm2 = 0;
    for (let i = k; i < len; i++) {
      const x = cols[row + i]! / scale;
      norm2 += x * x;
    }
    const alpha = cols[row + k]!;
    const beta = -Math.sign(alpha || 1) * scale * Math.sqrt(norm2);
    // v = [1, x_{k+1..}/(α − β)], τ = (β − α)/β: H·x = β·e_k.
    const inv = 1 / (alpha - beta);
    for (let i = k + 1; i < len; i++) cols[row + i]! *= inv;
    const t = (beta - alpha) / beta;
    tau[k] = t;
    cols[row + k] = beta;
    // Two columns per pass over the reflector: half its loads (this loop is the panel QR's cost).
    let j = k + 1;
    for (; j + 1 < p; j += 2) {
      const r1 = j * len;
      const r2 = r1 + len;
      let d1 = cols[r1 + k]!;
      let d2 = cols[r2 + k]!;
      for (let i = k + 1; i < len; i++) {
        const h = cols[row + i]!;
        d1 += h * cols[r1 + i]!;
        d2 += h * cols[r2 + i]!;
      }
      d1 *= t;
      d2 *= t;
      cols[r1 + k]! -= d1;
      cols[r2 + k]! -= d2;
      for (let i = k + 1; i < len; i++) {
        const h = cols[row + i]!;
        cols[r1 + i]! -= d1 * h;
        cols[r2 + i]! -= d2 * h;
      }
    }
    if (j < p) {
      const rj = j * len;
      let dot = cols[rj + k]!;
      for (let i = k + 1; i < len; i++) dot += cols[row + i]! * cols[rj + i]!;
      dot *= t;
      cols[rj + k]! -= dot;
      for (let i = k + 1; i < len; i++) cols[rj + i]! -= dot * cols[row + i]!;
    }
  }
  return tau;
}

/** left (rows of length len, each a vector) ← Q·left, with Q = H₀·H₁·…·H_{p−1} as left by `householderQrColumns`. */
function applyHouseholdersBack(
  cols: Float64Array,
  tau: Float64Array,
  p: number,
  len: number,
  left: Float64Array,
): void {
  for (let k = p - 1; k >= 0; k--) {
    const t = tau[k]!;
    if (t === 0) continue;
    const row = k * len;
    for (let j = 0; j < p; j++) {
      const rj = j * len;
      let dot = left[rj + k]!;
      for (let i = k + 1; i < len; i++) dot += cols[row + i]! * left[rj + i]!;
      dot *= t;
      left[rj + k]! -= dot;
      for (let i = k + 1; i < len; i++) left[rj + i]! -= dot * cols[row + i]!;
    }
  }
}

/**
 * One-sided Jacobi on the p columns (rows of `x`, each of length len), by the same kernel that
 * finishes every randomized SVD (`smallSvd`), laid out as this module's callers want it.
 */
function rotateToOrthogonal(x: Float64Array, p: number, len: number, vectors: boolean): JacobiResult {
  const a = new Float64Array(len * p);
  for (let j = 0; j < p; j++) for (let i = 0; i < len; i++) a[i * p + j] = x[j * len + i]!;
  const svd = smallSvd({ rows: len, cols: p, data: a }, { vectors });
  if (!vectors) return { s: svd.s };
  const left = new Float64Array(p * len);
  const right = new Float64Array(p * p);
  for (let r = 0; r < p; r++) {
    for (let i = 0; i < len; i++) left[r * len + i] = svd.u.data[i * p + r]!;
    for (let i = 0; i < p; i++) right[r * p + i] = svd.v.data[i * p + r]!;
  }
  return { s: svd.s, left, right };
}
