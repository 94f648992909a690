/** Result shapes of `extract` (extraction.json) and `resize`. */
import type { ToolInfo, TensorSpectrum, SkippedTensor } from '../analyze/types.js';
import type { RankPolicy } from './policy.js';

export interface ExtractedModule {
  /** Full module path: "model.layers.0.self_attn.q_proj". */
  module: string;
  kind: 'linear' | 'embedding';
  /** [out, in] of ΔW as stored. */
  shape: number[];
  rank: number;
  /** E(r): share of ‖ΔW‖_F² the rank keeps. */
  energy: number;
  /** ‖ΔW − s·B·A‖_F / ‖ΔW‖_F measured from the factors as written (after the dtype cast). */
  relativeError: number;
  /** The Eckart–Young optimum √(1 − E(r)) for this rank. */
  optimalError: number;
  /** ‖ΔW‖_F. */
  deltaNorm: number;
  /** r·(m + n). */
  params: number;
  /**
   * With --calibrate: ‖(ΔW − B·A)·X‖_F / ‖ΔW·X‖_F of these factors on the calibration inputs, beside the
   * plain truncated SVD's output and weight errors at the same rank; ‖ΔW·X‖_F² for model-level sums.
   */
  calibrated?: { outputError: number; svdOutputError: number; svdWeightError: number; outputNormSq: number };
}

export interface ExtractionSummary {
  modules: number;
  /** Σ r·(m + n) over LoRA modules. */
  loraParams: number;
  /** Parameters of the replacement weights (modules_to_save). */
  fullParams: number;
  /** Σ m·n of the modules extracted: what a full ΔW of them would hold. */
  denseParams: number;
  /** √(Σ‖ΔW − s·B·A‖² / Σ‖ΔW‖²) over every LoRA module, measured. */
  relativeError: number;
  /** The same for the Eckart–Young optimum at the chosen ranks. */
  optimalError: number;
}

export interface ExtractionResult {
  schemaVersion: 1;
  tool: ToolInfo;
  base: string;
  tuned: string;
  out: string;
  dtype: string;
  policy: RankPolicy & { maxRank?: number; minRank?: number };
  modules: ExtractedModule[];
  /** Module paths saved whole (modules_to_save). */
  modulesToSave: string[];
  totalParams: number;
  summary: ExtractionSummary;
  skipped: SkippedTensor[];
  warnings: string[];
  /** With --calibrate: where the inputs came from, and model-level output errors (calibrated, plain SVD at the same ranks). */
  calibration?: { inputs: string; tokens: number; sequences: number; damping: number; modules: number; outputError: number; svdOutputError: number };
  seconds: number;
}

/** What `extract` computed of each spectrum, for the report (not written to extraction.json). */
export interface ExtractionSpectra {
  tensors: TensorSpectrum[];
}
