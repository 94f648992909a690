/**
 * Result shapes of `analyze` (the `--json` document of docs/ARCHITECTURE.md). Plain data:
 * the report layer imports these types and nothing else of the pipeline.
 */

/** `{ name, version }` of the tool that wrote a document. */
export interface ToolInfo {
  name: string;
  version: string;
}

/** How a spectrum was computed. */
export type SpectrumMethod = 'exact' | 'randomized' | 'adaptive' | 'gram' | 'factored';

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
  /** Descending, the top k computed. */
  singularValues: number[];
  /** True when all min(m, n) singular values are present. */
  complete: boolean;
  /** E(1)..E(k): cumulative σ_i² / ‖ΔW‖_F². */
  energy: number[];
  /** Smallest r with E(r) ≥ t, null when the values computed do not reach t. Keys "0.5", "0.9", "0.95", "0.99". */
  rankAt: Record<string, number | null>;
  /** ‖ΔW‖_F² / σ₁². */
  stableRank: number;
  /** Roy–Vetterli effective rank; only for complete spectra. */
  effectiveRank: number | null;
  method: SpectrumMethod;
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
  schemaVersion: 1;
  tool: ToolInfo;
  base: string | null;
  tuned: string | null;
  /** Set with `--delta` / `--adapter`: what was analyzed instead of base/tuned. */
  delta?: string | null;
  adapter?: string | null;
  /** Energy thresholds used for `rankAt` keys. */
  thresholds: number[];
  tensors: TensorSpectrum[];
  others: OtherTensor[];
  skipped: SkippedTensor[];
  seconds: number;
}
