/**
 * The spectrum of one ΔW: which SVD path to take, and the metrics derived from it.
 * Shared by `analyze` (values only) and `extract` (which also needs the vectors).
 */
import type { Matrix } from '../svd/index.js';
import { adaptiveSvd, effectiveRank, energyCurve, exactIsCheaper, rankAt, relativeUpdate, singularValues, stableRank } from '../svd/index.js';
import type { SpectrumMethod, TensorSpectrum } from './types.js';

/** Energy thresholds reported as `rankAt` keys. */
export const DEFAULT_THRESHOLDS = [0.5, 0.9, 0.95, 0.99] as const;

/**
 * How many singular values per tensor at most, by default. A cap keeps a 7B model's
 * analysis in minutes: past it, `rankAt` is null and `complete` false, honestly.
 */
export const DEFAULT_TOP_K = 64;

/** Basis columns the adaptive SVD keeps beyond the cap (its own minimum oversampling). */
const ADAPTIVE_OVERSAMPLE = 8;
/** Widest block of the adaptive range finder: past this, growing in steps saves more than wide products gain. */
const MAX_BLOCK = 128;

export interface SpectrumOptions {
  /** Most singular values to compute on the randomized path. */
  topK: number;
  /** All singular values, whatever the cost. */
  exact: boolean;
  thresholds: readonly number[];
  seed: number;
}

export interface SpectrumSummary {
  singularValues: Float64Array;
  complete: boolean;
  energy: Float64Array;
  rankAt: Record<string, number | null>;
  stableRank: number;
  effectiveRank: number | null;
  method: SpectrumMethod;
}

/**
 * Spectrum of `delta` [m, n] whose ‖·‖_F² is `frobSquared` (exact, f64).
 * Takes the exact path when asked or when it is cheaper than a randomized top-k;
 * otherwise grows a randomized range adaptively (randQB_EI) until the largest
 * threshold's energy is reached or `topK` values are found.
 */
export async function computeSpectrum(delta: Matrix, frobSquared: number, opts: SpectrumOptions): Promise<SpectrumSummary> {
  const p = Math.min(delta.rows, delta.cols);
  if (frobSquared === 0) return summarize(new Float64Array(0), 0, true, 'exact', opts.thresholds);
  if (opts.exact || exactIsCheaper(delta.rows, delta.cols, Math.min(opts.topK, p))) {
    const { s, method } = await singularValues(delta);
    return summarize(s, frobSquared, true, method, opts.thresholds);
  }
  const target = Math.max(...opts.thresholds);
  const maxRank = Math.min(opts.topK, p);
  // Wide blocks: a block of 32 columns runs the products at half the speed of one of 72, so a
  // cap of 64 is best reached in one block (the cost of torch.svd_lowrank's q = 74); larger caps
  // still grow in blocks and stop early on a low-rank ΔW.
  const blockSize = Math.min(maxRank + ADAPTIVE_OVERSAMPLE, MAX_BLOCK);
  const r = await adaptiveSvd(delta, { energy: target, maxRank, blockSize, seed: opts.seed, frobSquared });
  return summarize(r.s, frobSquared, r.s.length >= p, 'adaptive', opts.thresholds);
}

/** Metrics of a spectrum `s` (descending) of a matrix with ‖·‖_F² = frobSquared. */
export function summarize(
  s: Float64Array,
  frobSquared: number,
  complete: boolean,
  method: SpectrumMethod,
  thresholds: readonly number[],
): SpectrumSummary {
  const energy = frobSquared > 0 ? energyCurve(s, frobSquared) : new Float64Array(0);
  const ranks: Record<string, number | null> = {};
  for (const t of thresholds) ranks[String(t)] = frobSquared > 0 ? rankAt(energy, t) : 0;
  return {
    singularValues: s,
    complete,
    energy,
    rankAt: ranks,
    stableRank: frobSquared > 0 ? stableRank(s, frobSquared) : 0,
    effectiveRank: complete && frobSquared > 0 ? effectiveRank(s) : null,
    method,
  };
}

/** One tensor's entry of the analyze document, from its summary; `t0` is when its SVD started. */
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
  return {
    name,
    shape,
    dtype,
    baseNorm,
    deltaNorm,
    relativeUpdate: relativeUpdate(deltaNorm, baseNorm),
    singularValues: Array.from(s.singularValues),
    complete: s.complete,
    energy: Array.from(s.energy),
    rankAt: s.rankAt,
    stableRank: s.stableRank,
    effectiveRank: s.effectiveRank,
    method: s.method,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** svd's relativeUpdate, the one definition, re-exported where analyze.ts has imported it from. */
export { relativeUpdate };
