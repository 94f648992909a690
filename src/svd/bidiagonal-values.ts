/**
 * Singular values of an upper bidiagonal matrix by implicit-shift QR (Golub & Kahan 1965; Golub
 * & Reinsch 1970; the values-only sweep of LAPACK dbdsqr): each step chases a bulge down the
 * unreduced block with a Wilkinson shift from its trailing 2×2 of BᵀB; negligible super-diagonal
 * entries split the block, a zero diagonal entry is rotated out first. f64 on the scaled matrix;
 * absolute error ≈ n·ε₆₄·‖B‖ on every value (what the complete route needs: 2e-10 relative at
 * σ = 1e-6·σ₁ with n = 4096).
 */
import { DeltarankError } from './../errors.js';
import { finishNow, turnDue } from '../yield.js';

const EPS = 2 ** -52;
/** Below this a sum of squares may have lost digits to underflow (2^-900): such rotations take Math.hypot. */
const SAFE_MIN = 2 ** -900;
/** QR steps allowed per singular value; 2–3 are typical, dbdsqr allows 6 per value and more overall. */
const MAX_STEPS_PER_VALUE = 30;

/** c, s, r with [c s; −s c]·[f; g] = [r; 0]. */
function rotation(f: number, g: number): [number, number, number] {
  if (g === 0) return [1, 0, f];
  if (f === 0) return [0, 1, g];
  const r = Math.hypot(f, g);
  return [f / r, g / r, r];
}

/**
 * All n singular values of the upper bidiagonal B with diagonal `d` [n] and super-diagonal `e`
 * [n − 1], descending (a new array; the inputs are not changed). Cost ≈ 2–3 sweeps per value,
 * ≈ 25·n² flops in all. Throws DeltarankError on non-finite input or no convergence.
 * @example bidiagonalSingularValues(Float64Array.of(3, 1), Float64Array.of(0)); // [3, 1]
 */
export function bidiagonalSingularValues(d: Float64Array, e: Float64Array): Float64Array {
  return finishNow(bidiagonalSingularValuesSteps(d, e));
}

/** `bidiagonalSingularValues` as a generator kernel that yields when a turn of the event loop is due (src/yield.ts). */
export function* bidiagonalSingularValuesSteps(
  d: Float64Array,
  e: Float64Array,
): Generator<void, Float64Array, undefined> {
  const n = d.length;
  if (n === 0) return new Float64Array(0);
  if (e.length < n - 1)
    throw new RangeError(
      `bidiagonalSingularValues: ${n} diagonal entries need ${n - 1} super-diagonal ones, got ${e.length}`,
    );
  let norm = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(d[i]!) || (i < n - 1 && !Number.isFinite(e[i]!)))
      throw new DeltarankError('bidiagonalSingularValues: a non-finite entry');
    norm = Math.max(norm, Math.abs(d[i]!), i < n - 1 ? Math.abs(e[i]!) : 0);
  }
  if (norm === 0) return new Float64Array(n);
  // Scaled to unit size: the squares in the shift neither overflow nor underflow.
  const dd = Float64Array.from(d.subarray(0, n), (x) => x / norm);
  const ee = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) ee[i] = e[i]! / norm;
  const tiny = n * EPS;
  let q = n - 1;
  let steps = 0;
  const maxSteps = MAX_STEPS_PER_VALUE * n;
  while (q > 0) {
    if (turnDue()) yield;
    // Deflate: the trailing entries whose super-diagonal is negligible are converged.
    if (Math.abs(ee[q - 1]!) <= EPS * (Math.abs(dd[q - 1]!) + Math.abs(dd[q]!)) || Math.abs(ee[q - 1]!) <= tiny * EPS) {
      ee[q - 1] = 0;
      q--;
      continue;
    }
    // The unreduced block [p, q].
    let p = q - 1;
    while (
      p > 0 &&
      !(Math.abs(ee[p - 1]!) <= EPS * (Math.abs(dd[p - 1]!) + Math.abs(dd[p]!)) || Math.abs(ee[p - 1]!) <= tiny * EPS)
    )
      p--;
    if (p > 0) ee[p - 1] = 0;
    if (++steps > maxSteps)
      throw new DeltarankError(`bidiagonalSingularValues: QR did not converge (${n}×${n}, block ${p}…${q})`);
    // A (numerically) zero diagonal entry: rotate its row's super-diagonal out, which splits the block.
    let zero = -1;
    for (let i = p; i <= q; i++) {
      if (Math.abs(dd[i]!) <= tiny * EPS) {
        zero = i;
        break;
      }
    }
    if (zero >= 0) {
      dd[zero] = 0;
      if (zero < q) {
        // Rows zero and j (j = zero + 1 … q): zero B[zero, j] against d_j.
        let f = ee[zero]!;
        ee[zero] = 0;
        for (let j = zero + 1; j <= q && f !== 0; j++) {
          const [c, s, r] = rotation(dd[j]!, f);
          dd[j] = r;
          if (j < q) {
            f = -s * ee[j]!;
            ee[j] = c * ee[j]!;
          }
        }
      } else {
        // The last diagonal entry is zero: columns j and q, j = q − 1 … p, zero B[j, q].
        let f = ee[q - 1]!;
        ee[q - 1] = 0;
        for (let j = q - 1; j >= p && f !== 0; j--) {
          const [c, s, r] = rotation(dd[j]!, f);
          dd[j] = r;
          if (j > p) {
            f = -s * ee[j - 1]!;
            ee[j - 1] = c * ee[j - 1]!;
          }
        }
      }
      continue;
    }
    // Wilkinson shift: the eigenvalue of BᵀB's trailing 2×2 nearer its last entry.
    const dq1 = dd[q - 1]!;
    const eq1 = ee[q - 1]!;
    const dq = dd[q]!;
    const t11 = dq1 * dq1 + (q - 1 > p ? ee[q - 2]! ** 2 : 0);
    const t12 = dq1 * eq1;
    const t22 = dq * dq + eq1 * eq1;
    const delta = (t11 - t22) / 2;
    const mu = t22 - (t12 * t12) / (delta + (delta >= 0 ? 1 : -1) * Math.hypot(delta, t12));
    let y = dd[p]! * dd[p]! - (Number.isFinite(mu) ? mu : t22);
    let z = dd[p]! * ee[p]!;
    for (let k = p; k < q; k++) {
      // Columns k, k + 1: zero z (the bulge of row k − 1, or the shift's first column). Rotations
      // inline (no tuple per call): this loop is the stage's whole cost.
      let r = Math.sqrt(y * y + z * z);
      if (!(r > SAFE_MIN)) r = Math.hypot(y, z);
      let c = r === 0 ? 1 : y / r;
      let s = r === 0 ? 0 : z / r;
      if (k > p) ee[k - 1] = r;
      const dk = dd[k]!;
      const ek = ee[k]!;
      const dk1 = dd[k + 1]!;
      const a = c * dk + s * ek;
      const b = c * ek - s * dk;
      const bulge = s * dk1;
      const dk1c = c * dk1;
      // Rows k, k + 1: zero the bulge below the diagonal.
      r = Math.sqrt(a * a + bulge * bulge);
      if (!(r > SAFE_MIN)) r = Math.hypot(a, bulge);
      c = r === 0 ? 1 : a / r;
      s = r === 0 ? 0 : bulge / r;
      dd[k] = r;
      ee[k] = c * b + s * dk1c;
      dd[k + 1] = c * dk1c - s * b;
      if (k < q - 1) {
        z = s * ee[k + 1]!;
        ee[k + 1] = c * ee[k + 1]!;
      }
      y = ee[k]!;
    }
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.abs(dd[i]!) * norm;
  return out.sort().reverse();
}
