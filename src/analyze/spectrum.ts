/**
 * The spectrum of one ΔW: which SVD path to take, how far to refine it, and the certified metrics
 * derived from it. Shared by `analyze` (values only) and `extract` (which also needs the vectors).
 *
 * Every value carries bounds (src/svd/spectrum-bounds.ts states the theorems): randomized values
 * are Ritz values, lower bounds, with upper bounds from the energy the range left out; complete
 * routes carry their rounding allowance. `rankAt` is a number only where the bounds prove it.
 */
import type { Matrix } from '../svd/index.js';
import {
  adaptiveSvd,
  bidiagonalRouteBytes,
  boundsWithin,
  completeCostSeconds,
  type EnergyEvidence,
  EPS32,
  EPS64,
  effectiveRank,
  energyCurve,
  exactIsCheaper,
  randomizedCostSeconds,
  rankInterval,
  relativeUpdate,
  ritzBounds,
  roundingAllowance,
  singularValues,
  stableRank,
  type ValueBounds,
} from '../svd/index.js';
import type { RankValue, SpectrumMethod, TensorSpectrum } from './types.js';

/** Energy thresholds reported as `rankAt` keys. */
export const DEFAULT_THRESHOLDS = [0.5, 0.9, 0.95, 0.99] as const;

/**
 * How many singular values per tensor the first randomized pass computes at most, by default.
 * Past it `analyze` refines (a larger basis, or the complete route) only where a threshold needs it.
 */
export const DEFAULT_TOP_K = 64;

/**
 * Most estimated seconds (this machine's cost model, `completeCostSeconds`) a tensor's refinement
 * may spend by default when what the first pass left out is structured (its largest Ritz value
 * left stands above the Marchenko–Pastur edge of that energy spread as noise): a high-rank update,
 * whose ranks are the question. A 4096² complete spectrum is ≈ 6 s of it.
 */
export const DEFAULT_REFINE_CAP_SECONDS = 60;
/**
 * The cap when what is left looks like a noise floor (Ritz values at the edge): the ranks past
 * it count noise directions, worth a cheap complete spectrum (up to 1024² or so) but not a costly one.
 */
const NOISE_FLOOR_CAP_SECONDS = 0.5;
/** A left-out part whose largest Ritz value is within this factor of its noise edge counts as a noise floor. */
const NOISE_EDGE_FACTOR = 1.5;
/**
 * Most bytes the bidiagonal route may hold (`bidiagonalRouteBytes`: an f64 copy of ΔW, reduced in
 * place, and the QR's panels when a QR comes first): analyze's memory stays bounded by a few f32
 * tensors of the largest shape, so a larger ΔW (a 32000×2048 embedding: 742 MB; 11008×4096 takes 462 MB) takes
 * the Gram route under `--exact` (f32, p×p, with its wider bounds) and is not refined to a complete spectrum.
 */
const BIDIAGONAL_MEMORY_LIMIT = 600e6;
/** Under refinement, the complete route is taken at once where it costs at most this many randomized first passes. */
const COMPLETE_FIRST_FACTOR = 4;
/** Largest basis a refinement grows before the complete route is the better buy. */
const MAX_REFINED_BASIS = 256;

/** Basis columns the adaptive SVD keeps beyond the cap (its own minimum oversampling). */
const ADAPTIVE_OVERSAMPLE = 8;
/** Widest block of the adaptive range finder: past this, growing in steps saves more than wide products gain. */
const MAX_BLOCK = 128;

export interface SpectrumOptions {
  /** Most singular values to compute on the first randomized pass. */
  topK: number;
  /** All singular values, whatever the cost. */
  exact: boolean;
  thresholds: readonly number[];
  seed: number;
  /**
   * Refine until every threshold's rank is certified exact, within the cap (default false: one
   * pass, as `extract` wants). `analyze` turns it on.
   */
  refine?: boolean;
  /** The cap on a refinement's estimated seconds (default DEFAULT_REFINE_CAP_SECONDS). */
  refineCapSeconds?: number;
}

/** What the route computed that the bounds need: see `certify`. */
export interface SpectrumEvidence {
  /** Rows and columns of ΔW. */
  m: number;
  n: number;
  /** For randomized routes: the energy the range left out, ‖A − QQᵀA‖_F² (else derived from the values). */
  leftOutEnergy?: number;
}

export interface SpectrumSummary {
  singularValues: Float64Array;
  complete: boolean;
  energy: Float64Array;
  stableRank: number;
  effectiveRank: number | null;
  method: SpectrumMethod;
  /** Thresholds `rankAt` is certified for. */
  thresholds: readonly number[];
  evidence?: SpectrumEvidence;
  /** What refinement did, or why it stopped short; null when the first pass sufficed. */
  refinement: string | null;
}

/**
 * Spectrum of `delta` [m, n] whose ‖·‖_F² is `frobSquared` (exact, f64).
 * Takes the complete route when asked or when it is cheaper than a randomized top-k; otherwise
 * grows a randomized range adaptively (randQB_EI) until the largest threshold's energy is
 * reached or `topK` values are found. With `refine`, a threshold whose rank the bounds leave
 * open gets a larger basis (when its rank is within reach) or the complete route (when that
 * costs at most the cap), in that order.
 */
export async function computeSpectrum(
  delta: Matrix,
  frobSquared: number,
  opts: SpectrumOptions,
): Promise<SpectrumSummary> {
  const { rows: m, cols: n } = delta;
  const p = Math.min(m, n);
  const evidence: SpectrumEvidence = { m, n };
  if (frobSquared === 0) return summarize(new Float64Array(0), 0, true, 'exact', opts.thresholds, evidence);
  const routeBytes = bidiagonalRouteBytes(m, n);
  const fitsBidiagonal = routeBytes <= BIDIAGONAL_MEMORY_LIMIT;
  const complete = async (refinement: string | null) => {
    const { s, method } = await singularValues(delta, { route: fitsBidiagonal ? 'auto' : 'gram' });
    const note = fitsBidiagonal
      ? refinement
      : `Gram route: the bidiagonal route's ${(routeBytes / 1e6).toFixed(0)} MB exceed the ${BIDIAGONAL_MEMORY_LIMIT / 1e6} MB allowed`;
    return { ...summarize(s, frobSquared, true, method, opts.thresholds, evidence), refinement: note };
  };
  const atOnce = completeAtOnce(m, n, opts);
  if (atOnce) return complete(atOnce.refinement);
  const target = Math.max(...opts.thresholds);
  const maxRank = Math.min(opts.topK, p);
  const blockSize = firstBlockSize(maxRank);
  const cap = opts.refineCapSeconds ?? DEFAULT_REFINE_CAP_SECONDS;
  const completeCost = fitsBidiagonal ? completeCostSeconds(m, n) : Infinity;
  const first = await adaptiveSvd(delta, {
    energy: target,
    maxRank,
    blockSize,
    seed: opts.seed,
    frobSquared,
    vectors: false,
  });
  const randomized = (r: typeof first, refinement: string | null) => ({
    ...summarize(r.ritz, frobSquared, r.ritz.length >= p, 'adaptive', opts.thresholds, {
      m,
      n,
      leftOutEnergy: r.leftOutEnergy,
    }),
    refinement,
  });
  let current = randomized(first, null);
  if (!opts.refine) return current;
  let open = openThresholds(current, frobSquared);
  if (open.length === 0) return current;

  const steps: string[] = [];
  // What the first basis left out: a noise floor (its last Ritz value at the Marchenko–Pastur edge
  // of that energy spread as noise), or structure a larger basis or the complete route would resolve.
  const floorOf = (c: SpectrumSummary) => {
    const v = c.singularValues;
    return (v.length > 0 ? v[v.length - 1]! : 0) <= NOISE_EDGE_FACTOR * noiseEdge(m, n, c.evidence?.leftOutEnergy ?? 0);
  };
  let noiseFloor = floorOf(current);
  // A larger basis, while the ranks asked for are within its reach and it costs less than the
  // complete route; not into a noise floor, whose energy a few more columns cannot take up.
  const needed = Math.max(...open.map((o) => o.hi));
  const basis = Math.min(p, Math.ceil(1.5 * needed) + 2 * ADAPTIVE_OVERSAMPLE);
  if (
    !noiseFloor &&
    basis <= MAX_REFINED_BASIS &&
    basis < p / 2 &&
    basis > first.ritz.length &&
    randomizedCostSeconds(m, n, basis, 3) < Math.min(completeCost, cap)
  ) {
    const grown = await adaptiveSvd(delta, {
      energy: 1,
      maxRank: basis - ADAPTIVE_OVERSAMPLE,
      blockSize: Math.min(basis, MAX_BLOCK),
      powerIters: 3,
      seed: opts.seed + 1,
      frobSquared,
      vectors: false,
    });
    steps.push(`basis ${first.ritz.length} → ${grown.ritz.length} columns, 3 power iterations`);
    current = randomized(grown, steps.join('; '));
    open = openThresholds(current, frobSquared);
    if (open.length === 0) return current;
    noiseFloor = floorOf(current);
  }
  const allowed = noiseFloor ? Math.min(cap, NOISE_FLOOR_CAP_SECONDS) : cap;
  const which = open.map((o) => o.key).join(', ');
  if (completeCost <= allowed) {
    steps.push(
      `complete spectrum (est. ${completeCost.toPrecision(2)} s, ${noiseFloor ? 'noise floor' : 'structured tail'}): rankAt ${which} not separated by the randomized bounds`,
    );
    return complete(steps.join('; '));
  }
  const why = !fitsBidiagonal
    ? `a complete spectrum at full accuracy needs ${(routeBytes / 1e6).toFixed(0)} MB, over the ${BIDIAGONAL_MEMORY_LIMIT / 1e6} MB allowed`
    : noiseFloor
      ? `what the basis left out looks like a noise floor, and its complete spectrum (est. ${completeCost.toPrecision(2)} s) exceeds the ${allowed} s allowed there`
      : `the complete spectrum (est. ${completeCost.toPrecision(2)} s) exceeds the refinement cap of ${allowed} s`;
  steps.push(`rankAt ${which} left as intervals: ${why}`);
  return { ...current, refinement: steps.join('; ') };
}

/**
 * Whether `computeSpectrum` of a nonzero m×n ΔW takes the complete route before any randomized
 * pass, decided by shape and options alone: asked for, cheaper than the randomized top-k, or
 * (refining) cheap enough to buy at once. Then the refinement note it records; else null.
 */
function completeAtOnce(m: number, n: number, opts: SpectrumOptions): { refinement: string | null } | null {
  const p = Math.min(m, n);
  if (opts.exact || exactIsCheaper(m, n, Math.min(opts.topK, p))) return { refinement: null };
  if (!opts.refine || bidiagonalRouteBytes(m, n) > BIDIAGONAL_MEMORY_LIMIT) return null;
  // Refining, a complete spectrum that costs at most a few first passes is bought at once: it
  // certifies every threshold, where a first pass that leaves one open pays for both (the
  // 256×2048 k/v projections of a Llama: est. 0.058 s against 0.015 s, and all 44 of a 1.1B
  // model's went on to the complete route).
  const cap = opts.refineCapSeconds ?? DEFAULT_REFINE_CAP_SECONDS;
  const completeCost = completeCostSeconds(m, n);
  const firstCost = randomizedCostSeconds(m, n, firstBlockSize(Math.min(opts.topK, p)), 2);
  if (completeCost > Math.min(NOISE_FLOOR_CAP_SECONDS, cap) || completeCost > COMPLETE_FIRST_FACTOR * firstCost)
    return null;
  return {
    refinement: `complete spectrum at once (est. ${completeCost.toPrecision(2)} s, within ${COMPLETE_FIRST_FACTOR}× the ${firstCost.toPrecision(2)} s of a randomized pass)`,
  };
}

/**
 * Whether `computeSpectrum` of a nonzero m×n ΔW goes straight to the bidiagonal route: a complete
 * route at once (`completeAtOnce`) whose workspace fits BIDIAGONAL_MEMORY_LIMIT. Those spectra spend
 * long stretches on one core (see spectrum-pool.ts); the Gram route taken past the limit is products.
 * @example straightToBidiagonal(2048, 2048, { ...opts, exact: true }) // true
 */
export function straightToBidiagonal(m: number, n: number, opts: SpectrumOptions): boolean {
  return completeAtOnce(m, n, opts) !== null && bidiagonalRouteBytes(m, n) <= BIDIAGONAL_MEMORY_LIMIT;
}

/**
 * The first randomized pass's block for a cap of `maxRank` values. Wide blocks: a block of 32
 * columns runs the products at half the speed of one of 72, so a cap of 64 is best reached in one
 * block (the cost of torch.svd_lowrank's q = 74); larger caps still grow in blocks and stop early
 * on a low-rank ΔW.
 */
function firstBlockSize(maxRank: number): number {
  return Math.min(maxRank + ADAPTIVE_OVERSAMPLE, MAX_BLOCK);
}

/**
 * Largest singular value of an m×n Gaussian matrix holding `energy` as ‖·‖_F² (Marchenko–Pastur
 * edge: entries of variance energy/(m·n), σ_max ≈ σ_entry·(√m + √n)).
 */
function noiseEdge(m: number, n: number, energy: number): number {
  return Math.sqrt(energy / (m * n)) * (Math.sqrt(m) + Math.sqrt(n));
}

/** Thresholds whose rank the summary's bounds leave open, with their intervals. */
function openThresholds(s: SpectrumSummary, frobSquared: number): { key: string; lo: number; hi: number }[] {
  const { evidence: e } = s;
  if (!e) return [];
  const ev = energyEvidence(s, frobSquared, e);
  const out: { key: string; lo: number; hi: number }[] = [];
  for (const t of s.thresholds) {
    const r = rankInterval(ev, t);
    if (r.lo !== r.hi) out.push({ key: String(t), ...r });
  }
  return out;
}

/** Metrics of a spectrum `s` (descending) of a matrix with ‖·‖_F² = frobSquared; `evidence` is what the bounds need. */
export function summarize(
  s: Float64Array,
  frobSquared: number,
  complete: boolean,
  method: SpectrumMethod,
  thresholds: readonly number[],
  evidence?: SpectrumEvidence,
): SpectrumSummary {
  return {
    singularValues: s,
    complete,
    energy: frobSquared > 0 ? energyCurve(s, frobSquared) : new Float64Array(0),
    stableRank: frobSquared > 0 ? stableRank(s, frobSquared) : 0,
    effectiveRank: complete && frobSquared > 0 ? effectiveRank(s) : null,
    method,
    thresholds,
    ...(evidence ? { evidence } : {}),
    refinement: null,
  };
}

/**
 * Certified bounds of each value of a summary, by its route: ±δ for complete f64 routes
 * (Weyl on their backward error), squared values ±δ² for the f32 Gram route, Ritz bounds for
 * randomized ones (lower: the value; upper: from the energy left out).
 */
export function certify(
  s: SpectrumSummary,
  frobSquared: number,
  e: SpectrumEvidence,
): ValueBounds & { kyFan?: EnergyEvidence['kyFan'] } {
  const { m, n } = e;
  const norm = Math.sqrt(frobSquared);
  const v = s.singularValues;
  switch (s.method) {
    case 'exact':
    case 'bidiagonal':
      return boundsWithin(v, roundingAllowance(m, n, EPS64, norm));
    case 'gram': {
      // Eigenvalues of an f32 Gram matrix: errors on σ², of the f32 product and reduction.
      const d2 = roundingAllowance(m, n, EPS32, frobSquared);
      const lower = Float64Array.from(v, (x) => Math.sqrt(Math.max(0, x * x - d2)));
      const upper = Float64Array.from(v, (x) => Math.sqrt(x * x + d2));
      return { lower, upper };
    }
    case 'factored':
      // SVD of the factors' small core: f32 factors, f64 arithmetic.
      return boundsWithin(v, roundingAllowance(m, n, EPS32, norm));
    default: {
      let captured = 0;
      for (const x of v) captured += x * x;
      // Left-out energy as the range measured it, else all that the values do not hold (no less than ‖C‖_F²).
      const leftOut =
        (e.leftOutEnergy ?? Math.max(0, frobSquared - captured)) + roundingAllowance(m, n, EPS32, frobSquared);
      const b = ritzBounds(v, roundingAllowance(m, n, EPS32, norm), leftOut);
      return { lower: b.lower, upper: b.upper, kyFan: { ritzUpper: b.ritzUpper, leftOut } };
    }
  }
}

function energyEvidence(s: SpectrumSummary, frobSquared: number, e: SpectrumEvidence): EnergyEvidence {
  const b = certify(s, frobSquared, e);
  return { lower: b.lower, upper: b.upper, frobSquared, p: Math.min(e.m, e.n), ...(b.kyFan ? { kyFan: b.kyFan } : {}) };
}

/**
 * One tensor's entry of the analyze document, from its summary; `t0` is when its SVD started.
 * Bounds and `rankAt` are certified here, with the shape as the evidence when the summary has none.
 */
export function tensorSpectrum(
  name: string,
  shape: number[],
  dtype: string,
  baseNorm: number | null,
  frobSquared: number,
  s: SpectrumSummary,
  t0: number,
): TensorSpectrum {
  const deltaNorm = Math.sqrt(frobSquared);
  const evidence = s.evidence ?? { m: shape[0] ?? 1, n: shape.slice(1).reduce((a, b) => a * b, 1) };
  const ev = energyEvidence(s, frobSquared, evidence);
  const rankAt: Record<string, RankValue> = {};
  for (const t of s.thresholds) {
    const r = rankInterval(ev, t);
    rankAt[String(t)] = r.lo === r.hi ? r.lo : r;
  }
  let captured = 0;
  for (const x of s.singularValues) captured += x * x;
  return {
    name,
    shape,
    dtype,
    baseNorm,
    deltaNorm,
    relativeUpdate: relativeUpdate(deltaNorm, baseNorm),
    singularValues: Array.from(s.singularValues),
    bounds: { lower: Array.from(ev.lower), upper: Array.from(ev.upper) },
    leftOutEnergy: Math.max(0, frobSquared - captured),
    complete: s.complete,
    energy: Array.from(s.energy),
    rankAt,
    stableRank: s.stableRank,
    effectiveRank: s.effectiveRank,
    method: s.method,
    refinement: s.refinement,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** svd's relativeUpdate, the one definition, re-exported where analyze.ts has imported it from. */
export { relativeUpdate };

/**
 * The exact rank of a `rankAt` value, or null when it is an interval.
 * @example exactRank(t.rankAt['0.9']) // 30, or null for { lo: 30, hi: 32 }
 */
export function exactRank(r: RankValue | null | undefined): number | null {
  return typeof r === 'number' ? r : null;
}

/**
 * A `rankAt` value as text: "30", or "30–32" for an interval.
 * @example formatRankValue({ lo: 30, hi: 32 }) // "30–32"
 */
export function formatRankValue(r: RankValue | null | undefined): string {
  if (r === null || r === undefined) return '-';
  return typeof r === 'number' ? String(r) : `${r.lo}–${r.hi}`;
}
