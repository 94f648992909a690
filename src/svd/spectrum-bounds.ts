/**
 * Certified bounds on singular values, on energies E(r) = Σ_{i≤r} σᵢ² / ‖A‖_F², and on the rank
 * at an energy threshold, from what an SVD route computed: lower and upper bounds per value,
 * the exact ‖A‖_F² (f64 over every entry), and, for a randomized range, the energy it left out.
 *
 * The theorems (A is m×n, p = min(m, n), S_r = Σ_{i≤r} σᵢ² the Ky Fan sum, F = ‖A‖_F²):
 * - Ritz values are lower bounds. With Q orthonormal [m, K] and B = QᵀA, σᵢ(B) ≤ σᵢ(A) for every
 *   i ≤ K (Cauchy interlacing: B is a compression of [Q Q⊥]ᵀA). Hence S_r ≥ Σ_{i≤r} σᵢ(B)².
 * - Upper bounds from the left-out part C = (I − QQᵀ)A. AᵀA = BᵀB + CᵀC with both terms
 *   positive semidefinite, and ‖C‖_F² = F − ‖B‖_F² is the error indicator of randQB_EI, known
 *   exactly. Weyl: σᵢ(A)² ≤ σᵢ(B)² + ‖C‖₂² ≤ σᵢ(B)² + ‖C‖_F². Ky Fan's inequality for sums of
 *   Hermitian matrices: S_r(A) ≤ S_r(B) + S_r(C) ≤ S_r(B) + ‖C‖_F², a much tighter bound on
 *   energies than the sum of the per-value ones.
 * - Past the last value known (r > k): S_r ≥ S_k + (r − k)/(p − k)·(F − S_k) (the r − k largest
 *   of the p − k values left hold at least their share of what is left; increasing in S_k, so the
 *   lower bound of S_k may stand in for it), and S_r ≤ S_k + (r − k)·σ_k².
 * - Complete routes (all p values by a backward-stable reduction) carry |σ̃ᵢ − σᵢ| ≤ δ for one δ
 *   (Weyl on the backward error), given by the route.
 * Rounding of the routes' own f32 or f64 arithmetic is covered by allowances the callers state
 * (`roundingAllowance`): multiples of √(m + n)·ε·‖A‖_F, the size rounding errors reach in such
 * products in practice. They are not worst-case bounds (those grow like n·ε and would hide every
 * value below 1e-4·‖A‖_F); everything else is a theorem.
 */

/** Relative slack on energy thresholds, as `rankAt` (metrics.ts) uses: E(r) = 0.8999999999999999 counts for 0.9. */
const ENERGY_SLACK = 1e-12;
/** Rounding allowances are this many times √(m + n)·ε·‖A‖_F (f32 products: measured errors stay under a tenth of it). */
const ALLOWANCE_FACTOR = 4;
/** Unit roundoffs. */
export const EPS32 = 2 ** -24;
export const EPS64 = 2 ** -53;

/** Bounds on each computed singular value: lower[i] ≤ σ_{i+1}(A) ≤ upper[i], both descending. */
export interface ValueBounds {
  lower: Float64Array;
  upper: Float64Array;
}

/** What the energy bounds need beyond the per-value bounds. */
export interface EnergyEvidence extends ValueBounds {
  /** ‖A‖_F², exact (f64 over every entry). */
  frobSquared: number;
  /** min(m, n): how many singular values A has. */
  p: number;
  /**
   * For a randomized range: the Ritz values (raised by their rounding allowance) and the energy
   * the range left out plus its allowance, so that S_r ≤ Σ_{i≤r} ritzUpper[i]² + leftOut (Ky Fan).
   */
  kyFan?: { ritzUpper: Float64Array; leftOut: number };
}

/** The rank at a threshold: exact when lo = hi. */
export interface RankInterval {
  lo: number;
  hi: number;
}

/**
 * Rounding allowance √(m + n)·ε·scale·ALLOWANCE_FACTOR, for a route whose arithmetic has unit
 * roundoff ε and whose errors scale with `scale` (‖A‖_F for values, ‖A‖_F² for energies).
 * @example roundingAllowance(4096, 4096, EPS32, Math.sqrt(frob))
 */
export function roundingAllowance(m: number, n: number, eps: number, scale: number): number {
  return ALLOWANCE_FACTOR * Math.sqrt(m + n) * eps * scale;
}

/**
 * Bounds of values computed to within ±delta (a complete route): [max(0, s − δ), s + δ], made
 * monotone (σᵢ ≥ σⱼ for i < j lets a bound move across indices).
 * @example const b = boundsWithin(s, 1e-12);
 */
export function boundsWithin(s: ArrayLike<number>, delta: number): ValueBounds {
  const k = s.length;
  const lower = new Float64Array(k);
  const upper = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    lower[i] = Math.max(0, s[i]! - delta);
    upper[i] = s[i]! + delta;
  }
  return monotone({ lower, upper });
}

/**
 * Bounds of Ritz values σ̃ = σ(QᵀA) of a randomized range that left out ‖C‖_F² = `leftOut` of
 * the energy (already including its allowance): lower σ̃ᵢ − δ, upper √((σ̃ᵢ + δ)² + leftOut),
 * δ the allowance for the f32 products σ̃ came from. See the module comment for the theorems.
 */
export function ritzBounds(
  ritz: ArrayLike<number>,
  delta: number,
  leftOut: number,
): ValueBounds & { ritzUpper: Float64Array } {
  const k = ritz.length;
  const lower = new Float64Array(k);
  const upper = new Float64Array(k);
  const ritzUpper = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    lower[i] = Math.max(0, ritz[i]! - delta);
    ritzUpper[i] = ritz[i]! + delta;
    upper[i] = Math.sqrt(ritzUpper[i]! ** 2 + Math.max(0, leftOut));
  }
  return { ...monotone({ lower, upper }), ritzUpper };
}

/** lowerᵢ ← max_{j≥i} lowerⱼ, upperᵢ ← min_{j≤i} upperⱼ (in place): both stay valid since σ is descending. */
function monotone(b: ValueBounds): ValueBounds {
  const { lower, upper } = b;
  for (let i = lower.length - 2; i >= 0; i--) lower[i] = Math.max(lower[i]!, lower[i + 1]!);
  for (let i = 1; i < upper.length; i++) upper[i] = Math.min(upper[i]!, upper[i - 1]!);
  return b;
}

/**
 * Certified bounds on S_r = Σ_{i≤r} σᵢ² for r = 1..p, evaluated lazily: `lower(r)`, `upper(r)`.
 * Cost O(k) once, O(1) per call.
 */
export function headEnergyBounds(e: EnergyEvidence): { lower: (r: number) => number; upper: (r: number) => number } {
  const { lower: lo, upper: up, frobSquared: F, p } = e;
  const k = lo.length;
  const cumLo = new Float64Array(k + 1);
  const cumUp = new Float64Array(k + 1);
  for (let i = 0; i < k; i++) {
    cumLo[i + 1] = cumLo[i]! + lo[i]! ** 2;
    cumUp[i + 1] = cumUp[i]! + up[i]! ** 2;
  }
  if (e.kyFan) {
    let acc = 0;
    for (let i = 0; i < k; i++) {
      acc += e.kyFan.ritzUpper[i]! ** 2;
      cumUp[i + 1] = Math.min(cumUp[i + 1]!, acc + e.kyFan.leftOut);
    }
  }
  // Each prefix bound also bounds every longer prefix from below (S is increasing).
  for (let i = 1; i <= k; i++) cumUp[i] = Math.max(cumUp[i]!, cumUp[i - 1]!);
  const lastUp = k > 0 ? up[k - 1]! : Math.sqrt(F);
  return {
    lower: (r) => {
      if (r >= p) return F;
      if (r <= k) return Math.min(F, cumLo[r]!);
      const base = Math.min(F, cumLo[k]!);
      return base + ((r - k) / (p - k)) * (F - base);
    },
    upper: (r) => {
      if (r >= p) return F;
      if (r <= k) return Math.min(F, cumUp[r]!);
      return Math.min(F, cumUp[k]! + (r - k) * lastUp * lastUp);
    },
  };
}

/**
 * Certified interval for the rank at threshold t: the smallest r with S_r ≥ t·F (less ENERGY_SLACK)
 * lies in [lo, hi]; lo = hi means it is exact. A zero matrix has rank 0 everywhere. Cost O(p) at most.
 * @example rankInterval(evidence, 0.9) // { lo: 30, hi: 30 }
 */
export function rankInterval(e: EnergyEvidence, t: number): RankInterval {
  if (!(e.frobSquared > 0)) return { lo: 0, hi: 0 };
  const target = (t - ENERGY_SLACK) * e.frobSquared;
  const head = headEnergyBounds(e);
  // Both bounds increase with r: bisection would do, but the k known values are few and the scan is cheap.
  let lo = 1;
  while (lo < e.p && head.upper(lo) < target) lo++;
  let hi = lo;
  while (hi < e.p && head.lower(hi) < target)
    hi = hi < e.lower.length ? hi + 1 : firstPast(head.lower, hi, e.p, target);
  return { lo, hi };
}

/** Smallest r in (from, p] with f(r) ≥ target, f increasing; by bisection. */
function firstPast(f: (r: number) => number, from: number, p: number, target: number): number {
  let a = from;
  let b = p;
  while (b - a > 1) {
    const mid = (a + b) >>> 1;
    if (f(mid) >= target) b = mid;
    else a = mid;
  }
  return b;
}
