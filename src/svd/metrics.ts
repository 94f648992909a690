/**
 * Spectrum metrics of a weight update ΔW and subspace comparisons between updates, as used by
 * `analyze`, `extract` and `compare`. Sums run in f64.
 */
import { ShapeError } from '../errors.js';
import { matmul } from './gemm.js';
import type { Matrix } from './matrix.js';

/** Tolerance on energy thresholds, so that E(r) computed as 0.8999999999999999 still counts for 0.9. */
const ENERGY_SLACK = 1e-12;

/**
 * Energy curve E(r) = Σ_{i≤r} σᵢ² / ‖A‖_F² for r = 1..k (index r − 1). With a truncated
 * spectrum the curve ends below 1 by the energy the missing values hold. All zeros when
 * ‖A‖_F² = 0.
 * @example energyCurve([3, 4], 25) // [0.36, 1]
 */
export function energyCurve(s: ArrayLike<number>, frobSquared: number): Float64Array {
  const out = new Float64Array(s.length);
  if (!(frobSquared > 0)) return out;
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc += s[i]! * s[i]!;
    out[i] = acc / frobSquared;
  }
  return out;
}

/**
 * The smallest rank r (1-based) with E(r) ≥ t (less 1e-12 of rounding slack), or null when the
 * curve never reaches t.
 * @example rankAt(energyCurve([3, 4], 25), 0.9) // 2
 */
export function rankAt(energy: ArrayLike<number>, t: number): number | null {
  for (let i = 0; i < energy.length; i++) if (energy[i]! >= t - ENERGY_SLACK) return i + 1;
  return null;
}

/**
 * Stable rank ‖A‖_F² / σ₁² (between 1 and rank(A); a robust stand-in for the rank). 0 for a
 * zero matrix.
 * @example stableRank([2, 1], 5) // 1.25
 */
export function stableRank(s: ArrayLike<number>, frobSquared: number): number {
  const s1 = s.length > 0 ? s[0]! : 0;
  return s1 > 0 ? frobSquared / (s1 * s1) : 0;
}

/**
 * Effective rank (Roy & Vetterli 2007): exp of the Shannon entropy of pᵢ = σᵢ / Σσ. Meaningful
 * for a complete spectrum only. 0 for an all-zero spectrum.
 * @example effectiveRank([1, 1, 1]) // 3
 */
export function effectiveRank(s: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < s.length; i++) total += s[i]!;
  if (!(total > 0)) return 0;
  let entropy = 0;
  for (let i = 0; i < s.length; i++) {
    const p = s[i]! / total;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return Math.exp(entropy);
}

/**
 * Nuclear norm Σσᵢ (of the values given).
 * @example nuclearNorm([3, 4]) // 7
 */
export function nuclearNorm(s: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < s.length; i++) total += s[i]!;
  return total;
}

/**
 * Relative update ‖ΔW‖_F / ‖W‖_F, from the two norms: the one definition of it (`analyze`'s
 * `relativeUpdate` field is this). null where it is no finite number: an unknown base (a ΔW
 * checkpoint, an adapter) or a zero base (a tensor that starts from zeros), where any change
 * is infinitely large relative to W, and 0/0 says nothing; JSON has no Infinity either.
 * @example relativeUpdate(0.71, 61.9) // 0.01147
 */
export function relativeUpdate(deltaNorm: number, baseNorm: number | null): number | null {
  return baseNorm === null || baseNorm === 0 ? null : deltaNorm / baseNorm;
}

/**
 * Subspace similarity of the LoRA paper (Hu et al. 2021, eq. 4):
 * φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖_F² / min(i, j), in [0, 1] for orthonormal columns;
 * 1 when one span contains the other. u1 [m, ≥ i], u2 [m, ≥ j]. Cost 2·m·i·j flops (f64, plain).
 * @example subspaceSimilarity(uFull, uLora, 8, 64)
 */
export function subspaceSimilarity(u1: Matrix, u2: Matrix, i: number, j: number): number {
  if (u1.rows !== u2.rows) throw new ShapeError(`subspaceSimilarity: row counts differ (${u1.rows} vs ${u2.rows})`);
  if (!Number.isInteger(i) || !Number.isInteger(j) || i < 1 || j < 1 || i > u1.cols || j > u2.cols) {
    throw new RangeError(`subspaceSimilarity: i = ${i}, j = ${j} must be in 1..${u1.cols} and 1..${u2.cols}`);
  }
  const m = u1.rows;
  const c = new Float64Array(i * j);
  const a = u1.data;
  const b = u2.data;
  for (let r = 0; r < m; r++) {
    const ao = r * u1.cols;
    const bo = r * u2.cols;
    for (let x = 0; x < i; x++) {
      const ax = a[ao + x]!;
      if (ax === 0) continue;
      const co = x * j;
      for (let y = 0; y < j; y++) c[co + y]! += ax * b[bo + y]!;
    }
  }
  let sum = 0;
  for (let t = 0; t < c.length; t++) sum += c[t]! * c[t]!;
  return sum / Math.min(i, j);
}

/**
 * ‖Uᵀ W V‖_F for u [m, r], w [m, n], v [n, r]: how much of W lies in the top-r directions of
 * another matrix (LoRA paper §7.3, Table 7). Cost 2·m·n·r + 2·m·r² flops through the GEMM engine.
 * @example const inW = await projectionNorm(uDelta, w, vDelta);
 */
export async function projectionNorm(u: Matrix, w: Matrix, v: Matrix): Promise<number> {
  if (u.rows !== w.rows || v.rows !== w.cols || u.cols !== v.cols) {
    throw new ShapeError(
      `projectionNorm: U ${u.rows}×${u.cols}, W ${w.rows}×${w.cols}, V ${v.rows}×${v.cols} do not fit Uᵀ·W·V`,
    );
  }
  const wv = await matmul(w, v);
  const utwv = await matmul(u, wv, { transA: true });
  let sum = 0;
  for (let t = 0; t < utwv.data.length; t++) sum += utwv.data[t]! * utwv.data[t]!;
  return Math.sqrt(sum);
}

/**
 * Amplification factor ‖ΔW‖_F / ‖Uᵀ W V‖_F (LoRA paper §7.3): how strongly the update amplifies
 * directions W itself barely uses. Infinity when the projection is zero.
 * @example amplificationFactor(Math.sqrt(deltaFrob2), await projectionNorm(u, w, v))
 */
export function amplificationFactor(deltaFrob: number, projection: number): number {
  return projection > 0 ? deltaFrob / projection : Infinity;
}
