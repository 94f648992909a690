/** Result shapes of `extract` (extraction.json) and `resize`. */
import type { SkippedTensor, TensorSpectrum, ToolInfo } from '../analyze/types.js';
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
  /** r·(m + n) (+ out for a lora_B.bias). */
  params: number;
  /** ΔW as stored is (B·A)ᵀ: embeddings [vocab, dim], Conv1D weights [in, out]. */
  transposed?: boolean;
  /**
   * Set where the SVD was randomized: its σ_i are lower bounds of ΔW's (the Ritz values of a subspace
   * interlace), so `energy` is a lower bound of E(r) and `optimalError` an upper bound of the optimum.
   */
  bound?: true;
  /** The module's bias change carried as lora_B.bias: ‖Δb‖ and ‖Δb − s·lora_B.bias‖ / ‖Δb‖ as written. */
  bias?: { deltaNorm: number; relativeError: number };
  /**
   * With --calibrate: ‖Y − B·A·X‖_F / ‖Y‖_F of these factors on the calibration inputs X, Y the module's
   * target (W_t·X_t − W_b·X with extracted inputs, ΔW·X with tuned ones), beside the plain truncated
   * SVD's output and weight errors at the same rank on the same inputs; ‖Y‖_F² for model-level sums.
   */
  calibrated?: { outputError: number; svdOutputError: number; svdWeightError: number; outputNormSq: number };
}

/** A changed tensor the adapter does not carry, with its share of Σ‖ΔW‖² over every changed parameter. */
export interface LeftOutTensor {
  name: string;
  reason: string;
  share: number;
  params: number;
}

/**
 * What the adapter carries of the whole fine-tune: shares of Σ‖ΔW‖² over every tensor that changed and
 * exists on both sides with one shape (reproduced + truncated + leftOut = 1).
 */
export interface ExtractionCoverage {
  /** Tensors on both sides that changed, and their parameters. */
  changedTensors: number;
  changedParams: number;
  /** Σ‖ΔW‖² over them. */
  deltaSquared: number;
  /** Share the adapter reproduces: LoRA products (‖ΔW‖² − ‖ΔW − s·B·A‖², measured), biases and modules saved whole. */
  reproduced: number;
  /** Share lost to the LoRA truncation (Σ‖ΔW − s·B·A‖²). */
  truncated: number;
  /** Share of the changed tensors not carried at all, listed in `leftOut` (largest first). */
  leftOutShare: number;
  leftOut: LeftOutTensor[];
  /** Tensors whose ΔW is not defined (one side only, shapes differ): their parameters, how they were handled. */
  notComparable: { name: string; reason: string; params: number }[];
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
  /** The same for the Eckart–Young optimum at the chosen ranks (an upper bound of it where `optimalIsBound`). */
  optimalError: number;
  /** Some module's SVD was randomized: `optimalError` is an upper bound of the optimum, not the optimum. */
  optimalIsBound: boolean;
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
  /** What the adapter carries of every changed parameter, and what it leaves out. */
  coverage: ExtractionCoverage;
  /** Model layout found (io/layouts.ts): model type, table entry, PEFT task type, tying, what was set in the config for it. */
  layout: {
    modelType: string | null;
    family: string;
    taskType: string | null;
    tiedEmbeddings: boolean;
    fanInFanOut: boolean;
    biases: 'lora_bias' | 'whole' | 'none';
    fusedExpertRank: number | null;
  };
  warnings: string[];
  /** With --calibrate: where the inputs came from, and model-level output errors (calibrated, plain SVD at the same ranks). */
  calibration?: {
    inputs: string;
    tokens: number;
    sequences: number;
    damping: number;
    modules: number;
    outputError: number;
    svdOutputError: number;
  };
  seconds: number;
}
