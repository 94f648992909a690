/** Result shapes of `compare` (compare.json). */
import type { AnalyzeResult, ToolInfo } from '../analyze/types.js';

/** A model scored on the target task (the fine-tune's) and the source task (what it may forget). */
export interface Scores {
  target: number;
  source: number;
  targetLoss: number;
  sourceLoss: number;
}

/** A trained variant (lora, dora, pissa, …) at one rank, merged onto the base and scored. */
export interface VariantScores extends Scores {
  variant: string;
  /** Run and folder name, e.g. "dora-r8". */
  run: string;
  /** Parameters the variant trains (DoRA adds the magnitudes, lora_bias the biases). */
  params: number;
}

/**
 * How close a model's predictions are to the full fine-tune's on one split's test examples,
 * averaged per prediction (per image for mnist, per character for charlm).
 */
export interface Fidelity {
  /** Mean KL(full ‖ model) of the predicted distributions, nats. */
  kl: number;
  /** Share of predictions whose top-1 class is the full fine-tune's. */
  top1: number;
}

/** Fidelity on the target and the source task. */
export interface FidelityScores {
  target: Fidelity;
  source: Fidelity;
}

/** Where calibrated extraction takes the inputs X of each module from (as `extract --calibrate-inputs`). */
export type CalibrationInputs = 'tuned' | 'extracted';

/** One Linear module of a calibrated extraction, beside the plain truncated SVD at the same rank. */
export interface CalibratedLayer {
  module: string;
  rank: number;
  /** ‖(ΔW − B·A)·X‖_F / ‖ΔW·X‖_F of the calibrated factors on the calibration inputs X. */
  outputError: number;
  /** The same for the plain SVD factors, on the same X. */
  svdOutputError: number;
  /** ‖ΔW − B·A‖_F / ‖ΔW‖_F of the calibrated factors (never below the plain SVD's: Eckart–Young). */
  weightError: number;
  svdWeightError: number;
  /** Input rows of X (images, or characters). */
  rows: number;
}

/** The calibration inputs of `compare`: training examples of the target task, never the test examples scored. */
export interface CalibrationInfo {
  split: 'target';
  part: 'train';
  /** Training examples read (evenly spaced when capped) and the input rows they give. */
  examples: number;
  rows: number;
  inputs: CalibrationInputs;
}

/** One rank: the trained LoRA, every other trained variant, and the LoRA extracted from the full fine-tune. */
export interface RankComparison {
  rank: number;
  /** The plain LoRA variant ("lora"); null when it was not trained at this rank. */
  trained: (Scores & { params: number }) | null;
  /** Every trained variant at this rank, plain LoRA included, in training order. */
  variants: VariantScores[];
  extracted: Scores & {
    params: number;
    /** Model-level ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F of the extraction, measured. */
    relativeError: number;
    /** Predictions against the full fine-tune's. */
    fidelity: FidelityScores;
    /** √(Σ ‖(ΔW − B·A)·X‖² / Σ ‖ΔW·X‖²) over the calibrated modules, on the calibration inputs. */
    outputError: number;
  };
  /**
   * The same rank chosen to minimise the output error on the calibration inputs (extract
   * --calibrate's factors; embeddings, which no Linear reads, keep the plain factors).
   */
  calibrated: Scores & {
    params: number;
    /** Model-level ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F over the same modules as the plain extraction's (never below it). */
    relativeError: number;
    /** As the plain extraction's, on the same inputs. */
    outputError: number;
    fidelity: FidelityScores;
    layers: CalibratedLayer[];
  };
}

/** φ(i, j) over a grid, for one module (LoRA paper eq. 4, Fig. 3). */
export interface SimilarityGrid {
  module: string;
  /** What is compared, in words. */
  what: string;
  rows: number[];
  cols: number[];
  /** phi[a][b] = φ(rows[a], cols[b]). */
  phi: number[][];
}

/** ‖Uᵀ W V‖_F for U, V the top-r directions of ΔW, of W, and of a random matrix (LoRA paper Table 7). */
export interface ProjectionRow {
  module: string;
  rank: number;
  /** What ΔW is: the trained LoRA's product at this rank. */
  source: string;
  deltaNorm: number;
  weightNorm: number;
  fromDelta: number;
  fromWeight: number;
  fromRandom: number;
  /** ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔW‖_F. */
  amplification: number;
}

/** Spectra of one module: the full fine-tune's ΔW and each trained LoRA product s·B·A. */
export interface ModuleSpectra {
  module: string;
  full: number[];
  trained: { rank: number; s: number[] }[];
}

/** ΔM and ΔD of one layer at one checkpoint (DoRA paper Fig. 2). */
export interface DirectionSample {
  epoch: number;
  module: string;
  dM: number;
  dD: number;
}

/** The magnitude/direction view of one fine-tune across its checkpoints and layers. */
export interface DirectionSeries {
  run: string;
  /** "full", or the adapter variant. */
  variant: string;
  rank?: number;
  points: DirectionSample[];
  /** Least-squares slope of ΔM on ΔD over all points (the paper: positive for LoRA, negative for FT and DoRA); null with < 2 distinct ΔD. */
  slope: number | null;
  /** Pearson correlation of ΔM and ΔD over the points; null likewise. */
  correlation: number | null;
}

/** Intruder dimensions of one tuned model, per layer (Shuttleworth et al. 2024, PEFT's definition). */
export interface IntruderRow {
  run: string;
  variant: string;
  rank?: number;
  layers: { module: string; count: number; margin: number; maxCos: number[] }[];
  total: number;
}

export interface ComparisonResult {
  schemaVersion: 1;
  tool: ToolInfo;
  dir: string;
  task: string;
  metric: { name: string; higherIsBetter: boolean };
  backend: string;
  base: Scores & { params: number };
  full: Scores & { params: number };
  ranks: RankComparison[];
  /** KL and top-1 agreement of the base model with the full fine-tune: the scale an extraction's fidelity is read against. */
  baseFidelity: FidelityScores;
  calibration: CalibrationInfo;
  spectra: ModuleSpectra[];
  similarity: SimilarityGrid[];
  projections: ProjectionRow[];
  /** Variants trained, in training order. */
  variants: string[];
  /** ΔM/ΔD across checkpoints for full fine-tuning and every trained adapter (empty for runs trained before it was recorded). */
  direction: DirectionSeries[];
  /** Intruder dimensions of full fine-tuning and every trained adapter. */
  intruders: IntruderRow[];
  /** analyze of base → full, complete spectra. */
  analysis: AnalyzeResult;
  seconds: number;
}
