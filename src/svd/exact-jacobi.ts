/**
 * One-sided (Hestenes) Jacobi SVD in f64, preceded by a Householder QR when the matrix
 * is clearly taller than wide (Drmač & Veselić 2008). Rotations orthogonalise the columns
 * of the working matrix until every pair is orthogonal to working precision; the singular
 * values are then the column norms. Relatively accurate (Demmel & Veselić 1992): for
 * A = B·D with D diagonal and B well conditioned, every σ, however small, is found to a
 * relative error of about ε₆₄·κ(B), which the Gram and bidiagonal routes cannot promise.
 */
import { DeltarankError } from '../errors.js';

/** Sweeps allowed before giving up; cyclic Jacobi converges quadratically and needs 6–12 in practice. */
const MAX_SWEEPS = 60;
/** f64 unit round-off. */
const EPS = 2 ** -53;
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
  if (p === 0) return vectors ? { s: new Float64Array(0), left: new Float64Array(0), right: new Float64Array(0) } : { s: new Float64Array(0) };
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
function applyHouseholdersBack(cols: Float64Array, tau: Float64Array, p: number, len: number, left: Float64Array): void {
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

/** Cyclic one-sided Jacobi on the p columns (rows of `x`, each of length len), then sort and normalise. */
function rotateToOrthogonal(x: Float64Array, p: number, len: number, vectors: boolean): JacobiResult {
  const norms = new Float64Array(p);
  const right = vectors ? identity(p) : undefined;
  // Orthogonal to working precision: |x_j·x_k| ≤ tol·‖x_j‖·‖x_k‖ (LAPACK dgesvj uses √len·ε too).
  const tol = Math.sqrt(len) * EPS;
  for (let j = 0; j < p; j++) norms[j] = squaredNorm(x, j * len, len);
  let converged = false;
  for (let sweep = 0; sweep < MAX_SWEEPS && !converged; sweep++) {
    converged = true;
    // Columns below ε²·‖X‖ (a dead unit's column, say) sink towards subnormal numbers, whose
    // rounding never lets the test below pass: they are left alone. Round-off columns near
    // ε·‖X‖ still rotate, so null-space vectors come out orthogonal.
    let largest = 0;
    for (let j = 0; j < p; j++) largest = Math.max(largest, norms[j]!);
    const negligible = largest * EPS ** 4;
    for (let j = 0; j < p - 1; j++) {
      const oj = j * len;
      for (let k = j + 1; k < p; k++) {
        const a = norms[j]!;
        const b = norms[k]!;
        if (a <= negligible || b <= negligible) continue;
        const ok = k * len;
        let g = 0;
        for (let i = 0; i < len; i++) g += x[oj + i]! * x[ok + i]!;
        if (Math.abs(g) <= tol * Math.sqrt(a) * Math.sqrt(b)) continue;
        converged = false;
        // The rotation that diagonalises [[a, g], [g, b]] (Rutishauser's formulas).
        const zeta = (b - a) / (2 * g);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        // New norms summed from the rotated values, not updated by formula, so a tiny column keeps its relative accuracy.
        let na = 0;
        let nb = 0;
        for (let i = 0; i < len; i++) {
          const xj = x[oj + i]!;
          const xk = x[ok + i]!;
          const yj = c * xj - s * xk;
          const yk = s * xj + c * xk;
          x[oj + i] = yj;
          x[ok + i] = yk;
          na += yj * yj;
          nb += yk * yk;
        }
        norms[j] = na;
        norms[k] = nb;
        if (right) {
          const vj = j * p;
          const vk = k * p;
          for (let i = 0; i < p; i++) {
            const rj = right[vj + i]!;
            const rk = right[vk + i]!;
            right[vj + i] = c * rj - s * rk;
            right[vk + i] = s * rj + c * rk;
          }
        }
      }
    }
  }
  if (!converged) throw new DeltarankError(`exact SVD: one-sided Jacobi did not converge in ${MAX_SWEEPS} sweeps (${len}×${p})`);
  const order = Array.from({ length: p }, (_, i) => i).sort((i, j) => norms[j]! - norms[i]!);
  const s = new Float64Array(p);
  for (let r = 0; r < p; r++) s[r] = Math.sqrt(norms[order[r]!]!);
  if (!right) return { s };
  const left = new Float64Array(p * len);
  const sortedRight = new Float64Array(p * p);
  for (let r = 0; r < p; r++) {
    const j = order[r]!;
    sortedRight.set(right.subarray(j * p, j * p + p), r * p);
    if (s[r]! > 0) {
      const inv = 1 / s[r]!;
      for (let i = 0; i < len; i++) left[r * len + i] = x[j * len + i]! * inv;
    }
  }
  completeOrthonormal(left, s, p, len);
  return { s, left, right: sortedRight };
}

/**
 * Left vectors of zero singular values are undetermined; fill them so that all p rows are
 * orthonormal (unit vectors e_i, Gram–Schmidt twice against the rows so far).
 */
function completeOrthonormal(left: Float64Array, s: Float64Array, p: number, len: number): void {
  let candidate = 0;
  for (let r = 0; r < p; r++) {
    if (s[r]! > 0) continue;
    const row = left.subarray(r * len, r * len + len);
    for (;;) {
      if (candidate >= len) throw new DeltarankError('exact SVD: could not complete an orthonormal basis (internal error)');
      row.fill(0);
      row[candidate++] = 1;
      for (let pass = 0; pass < 2; pass++) {
        // Rows of zero σ not yet filled are still zero and drop out of the projection by themselves.
        for (let q = 0; q < p; q++) {
          if (q === r) continue;
          const other = left.subarray(q * len, q * len + len);
          let d = 0;
          for (let i = 0; i < len; i++) d += other[i]! * row[i]!;
          for (let i = 0; i < len; i++) row[i]! -= d * other[i]!;
        }
      }
      const nrm = Math.sqrt(squaredNorm(row, 0, len));
      // Nearly inside the span already covered: try the next. The squared residuals of all e_i
      // sum to the dimension left (≥ 1), so some e_i not yet tried clears 1/(2·len).
      if (2 * len * nrm * nrm < 1) continue;
      for (let i = 0; i < len; i++) row[i]! /= nrm;
      break;
    }
  }
}

function squaredNorm(x: Float64Array, off: number, len: number): number {
  // Scaled so that columns of huge or tiny entries neither overflow nor underflow.
  let scale = 0;
  for (let i = 0; i < len; i++) scale = Math.max(scale, Math.abs(x[off + i]!));
  if (scale === 0) return 0;
  if (scale > 1e-150 && scale < 1e150) {
    let s = 0;
    for (let i = 0; i < len; i++) s += x[off + i]! * x[off + i]!;
    return s;
  }
  let s = 0;
  for (let i = 0; i < len; i++) {
    const v = x[off + i]! / scale;
    s += v * v;
  }
  return s * scale * scale;
}

function identity(p: number): Float64Array {
  const out = new Float64Array(p * p);
  for (let i = 0; i < p; i++) out[i * p + i] = 1;
  return out;
}
