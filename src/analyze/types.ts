/**
 * Result shapes of `analyze` (the `--json` document of docs/ARCHITECTURE.md). Plain data:
 * the report layer imports these types and nothing else of the pipeline.
 */

/** `{ name, version }` of the tool that wrote a document. */
export interface ToolInfo {
  name: string;
  version: string;
}

/**
 * How a spectrum was computed: `exact` one-sided Jacobi (f64); `bidiagonal` two-stage
 * bidiagonalisation and bidiagonal QR (f64); `gram` eigenvalues of the f32 Gram matrix;
 * `adaptive` / `randomized` a randomized range (values are Ritz values: lower bounds);
 * `factored` from LoRA factors.
 */
export type SpectrumMethod = 'exact' | 'bidiagonal' | 'randomized' | 'adaptive' | 'gram' | 'factored';

/** Version of the `analyze --json` document. 2: certified `bounds`, `rankAt` values or `{ lo, hi }` intervals, `leftOutEnergy`, `refinement`. */
export const ANALYZE_SCHEMA_VERSION = 2 as const;

/** A rank known to lie in lo..hi (lo < hi: the bounds computed do not separate the threshold). */
export interface RankInterval {
  lo: number;
  hi: number;
}

/** The rank at a threshold: a number when certified exact, else the interval it is certified to lie in. */
export type RankValue = number | RankInterval;

/** Spectrum of one 2-D ΔW. */
export interface TensorSpectrum {
  name: string;
  /** [out, in] as stored (PyTorch layout). */
  shape: number[];
  dtype: string;
  /** ‖W_base‖_F (null with `--delta` or `--adapter`, where no base is read). */
  baseNorm: number | null;
  /** ‖ΔW‖_F, exact (accumulated in f64 over every element). */
  deltaNorm: number;
  /** ‖ΔW‖_F / ‖W_base‖_F (null when the base is unknown or zero). */
  relativeUpdate: number | null;
  /** Descending, the top k computed (randomized: Ritz values, each a lower bound on the true σ). */
  singularValues: number[];
  /** Certified bounds: bounds.lower[i] ≤ σ_{i+1} ≤ bounds.upper[i] (see src/svd/spectrum-bounds.ts for the theorems). */
  bounds: { lower: number[]; upper: number[] };
  /** ‖ΔW‖_F² − Σ singularValues²: energy of the values not computed, plus what the randomized values miss (≥ 0). */
  leftOutEnergy: number;
  /** True when all min(m, n) singular values are present. */
  complete: boolean;
  /** E(1)..E(k): cumulative σ_i² / ‖ΔW‖_F² of the values computed (randomized: lower bounds). */
  energy: number[];
  /**
   * Smallest r with E(r) ≥ t: a number when the bounds prove it, else `{ lo, hi }`, the interval they
   * prove it lies in. Keys "0.5", "0.9", "0.95", "0.99". (null only in schema-1 documents: past the values computed.)
   */
  rankAt: Record<string, RankValue | null>;
  /** ‖ΔW‖_F² / σ₁². */
  stableRank: number;
  /** Roy–Vetterli effective rank; only for complete spectra. */
  effectiveRank: number | null;
  method: SpectrumMethod;
  /** What was done beyond the first pass and why (a larger basis, the complete route), or why a rank was left an interval; null when the first pass sufficed. */
  refinement: string | null;
  seconds: number;
}

/** A tensor that is not a 2-D weight (norm, bias), reported by its change alone. */
export interface OtherTensor {
  name: string;
  shape: number[];
  deltaNorm: number;
  relativeUpdate: number | null;
}

export interface SkippedTensor {
  name: string;
  reason: string;
}

/** The whole `analyze --json` document. */
export interface AnalyzeResult {
  schemaVersion: typeof ANALYZE_SCHEMA_VERSION;
  tool: ToolInfo;
  base: string | null;
  tuned: string | null;
  /** Set with `--delta` / `--adapter`: what was analyzed instead of base/tuned. */
  delta?: string | null;
  adapter?: string | null;
  /** Energy thresholds used for `rankAt` keys. */
  thresholds: number[];
  /** Most estimated seconds a tensor's refinement may spend (see `refinement` per tensor); null without refinement. */
  refineCapSeconds?: number | null;
  tensors: TensorSpectrum[];
  others: OtherTensor[];
  skipped: SkippedTensor[];
  seconds: number;
}
