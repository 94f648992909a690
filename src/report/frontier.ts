/**
 * What extracting a LoRA would cost for the whole model: the relative error
 * ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F summed over tensors against the adapter's parameter count, from the
 * spectra alone (Eckart–Young: the best rank-r error of a tensor is √(1 − E(r))·‖ΔW‖_F).
 */
import { pick, thinIndices } from './thin.js';

/** The fields of a spectrum the frontier reads (a TensorSpectrum fits). */
export interface SpectrumLike {
  /** [out, in] */
  shape: number[];
  deltaNorm: number;
  /** descending, the top k */
  singularValues: ArrayLike<number>;
  /** E(1)..E(k) */
  energy: ArrayLike<number>;
  complete: boolean;
}

/** One rank for every tensor (what `extract --rank r` would write). */
export interface FixedRankPoint {
  rank: number;
  /** Σ min(r, min(m, n))·(m + n) */
  params: number;
  /** √(Σ‖ΔW‖²(1 − E(r)) / Σ‖ΔW‖²) */
  error: number;
  /** True when some spectrum stops before `rank`: its last computed E stands in for E(r), so the true error is at most `error`. */
  bound: boolean;
}

export interface FrontierPoint {
  params: number;
  error: number;
}

/** Best error for each budget: singular values picked across tensors by σ²/(m + n), largest first. */
export interface GreedyFrontier {
  points: FrontierPoint[];
  /**
   * Up to this many parameters the frontier is optimal. Past it, a truncated spectrum's
   * values beyond its top k (unknown, each ≤ its σ_k) might have been better picks, so the
   * frontier is then an achievable error, not the least. Null when every pick is optimal.
   */
  exactUntil: number | null;
}

/**
 * [m, n] of the matrix a weight is factored as: its first dimension against the product of
 * the rest (a conv kernel [out, in, kh, kw] is [out, in·kh·kw], as LoRA flattens it).
 */
export function matrixDims(shape: readonly number[]): [number, number] {
  return [shape[0] ?? 1, shape.slice(1).reduce((a, b) => a * b, 1)];
}

/** Adapter parameters of one rank-1 term of a [m, n] tensor: a column of B and a row of A. */
function termParams(shape: number[]): number {
  const [m, n] = matrixDims(shape);
  return m + n;
}

/** 1, 2, 4, … up to maxRank, maxRank included. */
export function rankGrid(maxRank: number): number[] {
  const out: number[] = [];
  for (let r = 1; r < maxRank; r *= 2) out.push(r);
  if (maxRank >= 1) out.push(maxRank);
  return out;
}

/**
 * Model-level error and parameter count of a rank-r adapter on every tensor, for each r.
 * A tensor smaller than r is taken at full rank (error 0 from it); an unchanged one (ΔW = 0) costs nothing.
 * Cost O(tensors × ranks).
 *
 * @example fixedRankFrontier(result.tensors, rankGrid(256))
 */
export function fixedRankFrontier(tensors: readonly SpectrumLike[], ranks: readonly number[]): FixedRankPoint[] {
  let total = 0;
  for (const t of tensors) total += t.deltaNorm ** 2;
  return ranks.map((rank) => {
    let params = 0;
    let residual = 0;
    let bound = false;
    for (const t of tensors) {
      if (t.deltaNorm === 0) continue; // nothing to extract: rank-0 modules are left out of the adapter (docs/ARCHITECTURE.md)
      const full = Math.min(...matrixDims(t.shape));
      const r = Math.min(rank, full);
      params += r * termParams(t.shape);
      const k = t.energy.length;
      let e: number;
      if (r === full && t.complete) e = 1;
      else if (k === 0) e = 0;
      else e = t.energy[Math.min(r, k) - 1]!;
      if (r > k && !t.complete) bound = true;
      residual += t.deltaNorm ** 2 * Math.max(0, 1 - e);
    }
    return { rank, params, error: total > 0 ? Math.sqrt(residual / total) : 0, bound };
  });
}

/** Frontier points kept one by one before thinning, and log-spaced ones after (the curve is smooth there). */
const GREEDY_HEAD = 64;
const GREEDY_TAIL = 256;

/**
 * Greedy-optimal allocation across tensors: a rank-1 term of tensor t adds σ_i² to the
 * captured energy for m + n parameters, and within a tensor the gain per parameter falls
 * with i, so taking terms by σ_i²/(m + n) in descending order gives the least error for
 * every budget met exactly (the lower convex hull of all per-tensor rank choices).
 * Points are thinned to ≈ GREEDY_HEAD + GREEDY_TAIL. Cost O(K log K), K = Σ k.
 */
export function greedyFrontier(tensors: readonly SpectrumLike[]): GreedyFrontier {
  let total = 0;
  for (const t of tensors) total += t.deltaNorm ** 2;
  const gains: { ratio: number; gain: number; cost: number }[] = [];
  let hidden = -Infinity;
  for (const t of tensors) {
    const cost = termParams(t.shape);
    const s = t.singularValues;
    for (let i = 0; i < s.length; i++) gains.push({ ratio: s[i]! ** 2 / cost, gain: s[i]! ** 2, cost });
    if (!t.complete && s.length > 0) hidden = Math.max(hidden, s[s.length - 1]! ** 2 / cost);
    if (!t.complete && s.length === 0) hidden = Infinity;
  }
  gains.sort((x, y) => y.ratio - x.ratio);
  const params = new Float64Array(gains.length);
  const errors = new Float64Array(gains.length);
  let p = 0;
  let captured = 0;
  let exactUntil: number | null = hidden === -Infinity ? null : 0;
  for (let j = 0; j < gains.length; j++) {
    const g = gains[j]!;
    p += g.cost;
    captured += g.gain;
    params[j] = p;
    errors[j] = total > 0 ? Math.sqrt(Math.max(0, 1 - captured / total)) : 0;
    if (exactUntil !== null && g.ratio >= hidden) exactUntil = p;
  }
  const keep = thinIndices(gains.length, { keepAll: GREEDY_HEAD, tail: GREEDY_TAIL });
  const ps = pick(params, keep);
  const es = pick(errors, keep);
  return { points: ps.map((params, i) => ({ params, error: es[i]! })), exactUntil };
}
