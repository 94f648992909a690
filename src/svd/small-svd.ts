/**
 * SVD of small dense f64 matrices (up to a few hundred on a side): the core that randomized and
 * adaptive SVD finish with. One-sided Jacobi (Hestenes 1958; Demmel & Veselić 1992): rotate pairs
 * of columns until all are orthogonal; their norms are the singular values, to high relative
 * accuracy, and the accumulated rotations are V.
 */
import { DeltarankError } from '../errors.js';
import { finishCooperatively, finishNow, turnDue } from '../yield.js';
import { bidiagonalSingularValues } from './bidiagonal-values.js';
import type { Matrix64 } from './matrix.js';

/** f64 unit roundoff. */
const EPS64 = 2 ** -53;
/** Sweeps before stopping; Jacobi converges quadratically, so well-scaled inputs need 6–10. */
const MAX_SWEEPS = 60;

/** A thin SVD in f64: a = u·diag(s)·vᵀ. */
export interface Svd64 {
  /** [m, p], p = min(m, n), orthonormal columns (empty [m, 0] data when vectors were not asked for). */
  u: Matrix64;
  /** p values, descending, ≥ 0. */
  s: Float64Array;
  /** [n, p], orthonormal columns (empty likewise). */
  v: Matrix64;
}

/**
 * Thin SVD of a [m, n] f64 matrix (a copy; `a` is untouched). Singular values are exact to a few
 * ulps relative to σ₁ and to high relative accuracy on well-scaled inputs. Cost per sweep
 * ≈ 3·m·p² flops (+ 2·n·p² with vectors), 6–10 sweeps. Columns of u for singular values below
 * σ₁·m·ε (zero up to rounding) are completed to an orthonormal set.
 * @example const { s } = smallSvd({ rows: 3, cols: 2, data: Float64Array.of(1, 0, 0, 2, 0, 0) }, { vectors: false }); // s = [2, 1]
 */
export function smallSvd(a: Matrix64, { vectors = true }: { vectors?: boolean } = {}): Svd64 {
  return finishNow(smallSvdSteps(a, vectors));
}

/**
 * `smallSvd` letting the event loop turn every YIELD_INTERVAL_MS (src/yield.ts), so that a signal
 * is served during the seconds a few-hundred-wide matrix takes: what the exact and randomized
 * routes call.
 * @example const { s, u, v } = await smallSvdCooperative(a, { vectors: true });
 */
export function smallSvdCooperative(a: Matrix64, { vectors = true }: { vectors?: boolean } = {}): Promise<Svd64> {
  return finishCooperatively(smallSvdSteps(a, vectors));
}

function* smallSvdSteps(a: Matrix64, vectors: boolean): Generator<void, Svd64, undefined> {
  const mode = vectors ? 'both' : 'none';
  if (a.rows < a.cols) {
    const t = yield* jacobi(transposed(a), mode);
    return { u: t.v, s: t.s, v: t.u };
  }
  return yield* jacobi(a, mode);
}

/**
 * Singular values and left vectors u [m, n] of a [m, n] f64 matrix with m ≥ n, without
 * accumulating the rotations (a rotation costs 8·m flops instead of 8·m + 6·n; on the 74×74
 * core of a top-64 SVD, with `rightVectors` for 64 columns: 9.3 ms CPU against 10.1 ms for
 * smallSvd with vectors). Pair it with `rightVectors` when only some right vectors are needed.
 * @example const { u, s } = smallSvdLeft(core); const v = rightVectors(core, u, s, 64);
 */
export async function smallSvdLeft(a: Matrix64): Promise<{ u: Matrix64; s: Float64Array }> {
  if (a.rows < a.cols) throw new RangeError(`smallSvdLeft: needs rows ≥ cols, got ${a.rows}×${a.cols}`);
  const { u, s } = await finishCooperatively(jacobi(a, 'left'));
  return { u, s };
}

/**
 * Singular values only of a small [m, n] f64 matrix, descending: Householder bidiagonalisation
 * (Golub & Kahan 1965) then the bidiagonal QR sweeps. ≈ 4·m·n² − 4/3·n³ flops (n ≤ m) instead of
 * Jacobi's ≈ 3·m·n² per sweep over 6–10 sweeps: a 72×72 core in ≈ 1 ms against ≈ 6. Backward
 * stable, so each value is within ≈ n·ε₆₄·σ₁ absolute (Jacobi's extra relative accuracy on tiny
 * values is not needed where the input came out of f32 products).
 * @example smallSingularValues({ rows: 2, cols: 2, data: Float64Array.of(3, 0, 0, 4) }) // [4, 3]
 */
export function smallSingularValues(a: Matrix64): Float64Array {
  const t = a.rows < a.cols ? transposed(a) : { rows: a.rows, cols: a.cols, data: a.data.slice() };
  const { rows: m, cols: n } = t;
  const x = t.data;
  let scale = 0;
  for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]!));
  if (!Number.isFinite(scale)) throw new DeltarankError('smallSingularValues: the matrix holds non-finite values');
  if (scale === 0) return new Float64Array(n);
  // Scaled to max |a| = 1, no sum of squares below can overflow or underflow to harm.
  for (let i = 0; i < x.length; i++) x[i]! /= scale;
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(n - 1, 0));
  const v = new Float64Array(Math.max(m, n));
  const w = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    // Left reflector: zero column j below the diagonal, applied to the columns right of it.
    for (let i = j; i < m; i++) v[i - j] = x[i * n + j]!;
    const [alphaL, betaL] = reflector(v, m - j);
    d[j] = alphaL;
    if (betaL !== 0) {
      w.fill(0, j + 1, n);
      for (let i = j; i < m; i++) {
        const vi = v[i - j]!;
        const off = i * n;
        for (let c = j + 1; c < n; c++) w[c]! += vi * x[off + c]!;
      }
      for (let i = j; i < m; i++) {
        const f = betaL * v[i - j]!;
        const off = i * n;
        for (let c = j + 1; c < n; c++) x[off + c]! -= f * w[c]!;
      }
    }
    if (j >= n - 1) continue;
    // Right reflector: zero row j right of the super-diagonal, applied to the rows below.
    const len = n - j - 1;
    for (let k = 0; k < len; k++) v[k] = x[j * n + j + 1 + k]!;
    const [alphaR, betaR] = reflector(v, len);
    e[j] = alphaR;
    if (betaR === 0) continue;
    for (let i = j + 1; i < m; i++) {
      const off = i * n + j + 1;
      let dot = 0;
      for (let k = 0; k < len; k++) dot += x[off + k]! * v[k]!;
      const f = betaR * dot;
      for (let k = 0; k < len; k++) x[off + k]! -= f * v[k]!;
    }
  }
  const s = bidiagonalSingularValues(d, e);
  for (let i = 0; i < s.length; i++) s[i]! *= scale;
  return s;
}

/**
 * The Householder reflector H = I − β·v·vᵀ taking the first `len` entries of `v` to α·e₁: turns
 * them into v in place and returns [α, β] (β = 0: H is the identity, the entries already α·e₁).
 */
function reflector(v: Float64Array, len: number): [alpha: number, beta: number] {
  const x0 = v[0]!;
  let tail2 = 0;
  for (let k = 1; k < len; k++) tail2 += v[k]! * v[k]!;
  if (tail2 === 0) return [x0, 0];
  const norm = Math.sqrt(x0 * x0 + tail2);
  const alpha = x0 >= 0 ? -norm : norm;
  v[0] = x0 - alpha;
  return [alpha, 2 / (v[0]! * v[0]! + tail2)];
}

/** Below this fraction of σ₁ a right vector aᵀuⱼ/σⱼ would carry a relative error above ≈ ε/1e-8 ≈ 1e-8: it is completed instead. */
const RIGHT_FROM_LEFT_FLOOR = 1e-8;

/**
 * The first `count` right singular vectors of a = u·diag(s)·vᵀ ([m, n], u [m, ≥ count]) from its
 * left ones: vⱼ = aᵀuⱼ/sⱼ, then Gram–Schmidt twice in f64. Accurate to ≈ ε·s₁/sⱼ, so vectors of
 * sⱼ ≤ 1e-8·s₁ (zero up to rounding, for what they add to the product) are completed to an
 * orthonormal set instead. Returns v [n, count]; cost 2·m·n·count + 4·n·count² flops.
 */
export function rightVectors(a: Matrix64, u: Matrix64, s: Float64Array, count: number): Matrix64 {
  return finishNow(rightVectorsSteps(a, u, s, count));
}

/** `rightVectors` letting the event loop turn every YIELD_INTERVAL_MS (src/yield.ts): a second at count in the hundreds. */
export function rightVectorsCooperative(a: Matrix64, u: Matrix64, s: Float64Array, count: number): Promise<Matrix64> {
  return finishCooperatively(rightVectorsSteps(a, u, s, count));
}

function* rightVectorsSteps(
  a: Matrix64,
  u: Matrix64,
  s: Float64Array,
  count: number,
): Generator<void, Matrix64, undefined> {
  const { rows: m, cols: n } = a;
  // Columns kept contiguous (vc[c·n + i]) while they are built and projected; laid out at the end.
  const vc = new Float64Array(count * n);
  const missing: number[] = [];
  const filled: number[] = [];
  for (let c = 0; c < count; c++) {
    if (turnDue()) yield;
    const sc = s[c]!;
    if (!(sc > RIGHT_FROM_LEFT_FLOOR * s[0]!)) {
      missing.push(c);
      continue;
    }
    const col = vc.subarray(c * n, (c + 1) * n);
    for (let r = 0; r < m; r++) {
      const ur = u.data[r * u.cols + c]!;
      if (ur === 0) continue;
      const off = r * n;
      for (let i = 0; i < n; i++) col[i]! += a.data[off + i]! * ur;
    }
    for (let pass = 0; pass < 2; pass++) {
      for (const f of filled) {
        const other = vc.subarray(f * n, (f + 1) * n);
        let d = 0;
        for (let i = 0; i < n; i++) d += other[i]! * col[i]!;
        for (let i = 0; i < n; i++) col[i]! -= d * other[i]!;
      }
    }
    let norm2 = 0;
    for (let i = 0; i < n; i++) norm2 += col[i]! * col[i]!;
    const inv = 1 / Math.sqrt(norm2);
    for (let i = 0; i < n; i++) col[i]! *= inv;
    filled.push(c);
  }
  const v = new Float64Array(n * count);
  for (let c = 0; c < count; c++) for (let i = 0; i < n; i++) v[i * count + c] = vc[c * n + i]!;
  yield* completeColumns(v, n, count, missing);
  return { rows: n, cols: count, data: v };
}

function transposed(a: Matrix64): Matrix64 {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
}

/** m ≥ n. Works on the columns of a stored as rows (w = aᵀ) so every loop is sequential. */
function* jacobi(a: Matrix64, mode: 'none' | 'left' | 'both'): Generator<void, Svd64, undefined> {
  const vectors = mode === 'both';
  const { rows: m, cols: n } = a;
  const w = transposed(a).data;
  const vt = vectors ? new Float64Array(n * n) : new Float64Array(0);
  if (vectors) for (let i = 0; i < n; i++) vt[i * n + i] = 1;
  const norms2 = new Float64Array(n);
  const tol = Math.max(m, 2) * EPS64;
  let converged = false;
  for (let sweep = 0; sweep < MAX_SWEEPS && !converged; sweep++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += w[j * m + i]! * w[j * m + i]!;
      norms2[j] = s;
    }
    // Columns below ε²·‖a‖ (a dead unit's column, say) sink towards subnormal numbers, whose
    // rounding never lets the orthogonality test pass: they are left alone. Round-off columns
    // near ε·‖a‖ still rotate, so null-space vectors come out orthogonal.
    let largest = 0;
    for (let j = 0; j < n; j++) largest = Math.max(largest, norms2[j]!);
    const negligible = largest * EPS64 ** 4;
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      if (turnDue()) yield;
      // de Rijk (1989): bring the largest remaining column to p; sweeps drop on graded inputs.
      let best = p;
      for (let j = p + 1; j < n; j++) if (norms2[j]! > norms2[best]!) best = j;
      if (best !== p) swapRows(w, m, p, best, norms2, vectors ? vt : null, n);
      if (rotatePivot(w, m, n, p, norms2, vectors ? vt : null, negligible, tol)) rotated = true;
    }
    converged = !rotated;
  }
  // Quadratic convergence takes 6–14 sweeps; still rotating after MAX_SWEEPS is a fault, not an answer.
  if (!converged)
    throw new DeltarankError(`SVD: one-sided Jacobi did not converge in ${MAX_SWEEPS} sweeps (${m}×${n})`);
  const sv = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += w[j * m + i]! * w[j * m + i]!;
    sv[j] = Math.sqrt(s);
  }
  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => sv[y]! - sv[x]!);
  const s = Float64Array.from(order, (j) => sv[j]!);
  if (mode === 'none')
    return {
      u: { rows: m, cols: 0, data: new Float64Array(0) },
      s,
      v: { rows: n, cols: 0, data: new Float64Array(0) },
    };
  const u = new Float64Array(m * n);
  const v = new Float64Array(vectors ? n * n : 0);
  const missing: number[] = [];
  // Columns this far below σ₁ are rounding noise: their directions are not reliably orthogonal,
  // and dropping them changes the product by less than its own rounding.
  const negligible = s[0]! * tol;
  order.forEach((j, c) => {
    const sj = sv[j]!;
    if (sj > negligible) for (let i = 0; i < m; i++) u[i * n + c] = w[j * m + i]! / sj;
    else missing.push(c);
    if (vectors) for (let i = 0; i < n; i++) v[i * n + c] = vt[j * n + i]!;
  });
  yield* completeColumns(u, m, n, missing);
  return { u: { rows: m, cols: n, data: u }, s, v: { rows: n, cols: vectors ? n : 0, data: v } };
}

/**
 * Rotate column p of w against every later one (one pivot of a sweep); whether any rotation was
 * needed. A plain function, apart from the generator that calls it: V8 runs these inner loops
 * about 8 % slower inside a generator body.
 */
function rotatePivot(
  w: Float64Array,
  m: number,
  n: number,
  p: number,
  norms2: Float64Array,
  vt: Float64Array | null,
  negligible: number,
  tol: number,
): boolean {
  let rotated = false;
  const op = p * m;
  for (let q = p + 1; q < n; q++) {
    const alpha = norms2[p]!;
    const beta = norms2[q]!;
    if (alpha <= negligible || beta <= negligible) continue;
    const oq = q * m;
    let gamma = 0;
    for (let i = 0; i < m; i++) gamma += w[op + i]! * w[oq + i]!;
    if (Math.abs(gamma) <= tol * Math.sqrt(alpha) * Math.sqrt(beta)) continue;
    rotated = true;
    const zeta = (beta - alpha) / (2 * gamma);
    const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
    const c = 1 / Math.sqrt(1 + t * t);
    const s = c * t;
    for (let i = 0; i < m; i++) {
      const x = w[op + i]!;
      const y = w[oq + i]!;
      w[op + i] = c * x - s * y;
      w[oq + i] = s * x + c * y;
    }
    norms2[p] = alpha - t * gamma;
    norms2[q] = beta + t * gamma;
    if (vt !== null) {
      const vp = p * n;
      const vq = q * n;
      for (let i = 0; i < n; i++) {
        const x = vt[vp + i]!;
        const y = vt[vq + i]!;
        vt[vp + i] = c * x - s * y;
        vt[vq + i] = s * x + c * y;
      }
    }
  }
  return rotated;
}

function swapRows(
  w: Float64Array,
  m: number,
  p: number,
  q: number,
  norms2: Float64Array,
  vt: Float64Array | null,
  n: number,
): void {
  for (let i = 0; i < m; i++) {
    const t = w[p * m + i]!;
    w[p * m + i] = w[q * m + i]!;
    w[q * m + i] = t;
  }
  const t = norms2[p]!;
  norms2[p] = norms2[q]!;
  norms2[q] = t;
  if (vt === null) return;
  for (let i = 0; i < n; i++) {
    const x = vt[p * n + i]!;
    vt[p * n + i] = vt[q * n + i]!;
    vt[q * n + i] = x;
  }
}

/**
 * Fill the listed columns of the orthonormal-column matrix u [m, n] with unit vectors orthogonal
 * to all other columns: Gram–Schmidt twice on the coordinate vector that keeps the most of itself
 * (at least 1/m of its square norm survives for the best one, so the result stays accurate).
 */
function* completeColumns(u: Float64Array, m: number, n: number, missing: number[]): Generator<void, void, undefined> {
  if (missing.length === 0) return;
  const filled: number[] = [];
  for (let c = 0; c < n; c++) if (!missing.includes(c)) filled.push(c);
  const x = new Float64Array(m);
  const best = new Float64Array(m);
  for (const c of missing) {
    if (turnDue()) yield;
    let bestNorm2 = -1;
    for (let candidate = 0; candidate < m && bestNorm2 < 0.5; candidate++) {
      x.fill(0);
      x[candidate] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (const f of filled) {
          let d = 0;
          for (let i = 0; i < m; i++) d += u[i * n + f]! * x[i]!;
          for (let i = 0; i < m; i++) x[i]! -= d * u[i * n + f]!;
        }
      }
      let norm2 = 0;
      for (let i = 0; i < m; i++) norm2 += x[i]! * x[i]!;
      if (norm2 > bestNorm2) {
        bestNorm2 = norm2;
        best.set(x);
      }
    }
    const inv = 1 / Math.sqrt(bestNorm2);
    for (let i = 0; i < m; i++) u[i * n + c] = best[i]! * inv;
    filled.push(c);
  }
}
