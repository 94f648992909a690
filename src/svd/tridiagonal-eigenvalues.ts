/**
 * Eigenvalues of a symmetric tridiagonal matrix by the implicit QL method with Wilkinson
 * shifts (Bowdler, Martin, Reinsch & Wilkinson 1968, EISPACK tql1). O(n²): about two
 * sweeps per eigenvalue over its unreduced block.
 */
import { DeltarankError } from '../errors.js';
import { finishNow, turnDue } from '../yield.js';

/** QL iterations allowed per eigenvalue; 2–3 are typical, 30 is EISPACK's limit. */
const MAX_ITERATIONS = 30;
const EPS = 2 ** -52;

/**
 * All eigenvalues of the n×n symmetric tridiagonal T with diagonal `d` [n] and
 * sub-diagonal `e` [n − 1], in descending order (a new array; the inputs are not changed).
 * Absolute error ≈ ε₆₄·‖T‖. Cost ≈ 30·n² flops.
 * @example tridiagonalEigenvalues(Float64Array.of(2, 2), Float64Array.of(1)); // [3, 1]
 */
export function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): Float64Array {
  return finishNow(tridiagonalEigenvaluesSteps(d, e));
}

/** `tridiagonalEigenvalues` as a generator kernel that yields when a turn of the event loop is due (src/yield.ts). */
export function* tridiagonalEigenvaluesSteps(
  d: Float64Array,
  e: Float64Array,
): Generator<void, Float64Array, undefined> {
  const n = d.length;
  if (e.length < n - 1)
    throw new RangeError(
      `tridiagonalEigenvalues: ${n} diagonal entries need ${n - 1} off-diagonal ones, got ${e.length}`,
    );
  let norm = 0;
  for (let i = 0; i < n; i++) {
    const v = d[i]!;
    if (!Number.isFinite(v) || (i < n - 1 && !Number.isFinite(e[i]!)))
      throw new DeltarankError('tridiagonalEigenvalues: a non-finite entry');
    norm = Math.max(norm, Math.abs(v), i < n - 1 ? Math.abs(e[i]!) : 0);
  }
  if (norm === 0) return new Float64Array(n);
  // Scaled to unit size so that the squares below neither overflow nor underflow.
  const dd = new Float64Array(n);
  const ee = new Float64Array(n);
  for (let i = 0; i < n; i++) dd[i] = d[i]! / norm;
  for (let i = 0; i < n - 1; i++) ee[i] = e[i]! / norm;
  for (let l = 0; l < n; l++) {
    if (turnDue()) yield;
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        if (Math.abs(ee[m]!) <= EPS * (Math.abs(dd[m]!) + Math.abs(dd[m + 1]!))) break;
      }
      if (m === l) break;
      if (++iter > MAX_ITERATIONS)
        throw new DeltarankError(`tridiagonalEigenvalues: QL did not converge for eigenvalue ${l} of ${n}`);
      // Wilkinson shift from the leading 2×2 of the block.
      let g = (dd[l + 1]! - dd[l]!) / (2 * ee[l]!);
      let r = Math.sqrt(g * g + 1);
      g = dd[m]! - dd[l]! + ee[l]! / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * ee[i]!;
        const b = c * ee[i]!;
        r = Math.sqrt(f * f + g * g);
        ee[i + 1] = r;
        if (r === 0) {
          // Split: the rotation met an exact zero; deflate and restart.
          dd[i + 1]! -= p;
          ee[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = dd[i + 1]! - p;
        r = (dd[i]! - g) * s + 2 * c * b;
        p = s * r;
        dd[i + 1] = g + p;
        g = c * r - b;
      }
      if (underflow) continue;
      dd[l]! -= p;
      ee[l] = g;
      ee[m] = 0;
    }
  }
  for (let i = 0; i < n; i++) dd[i]! *= norm;
  return dd.sort().reverse();
}
