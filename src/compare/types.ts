/** Result shapes of `compare` (compare.json). */
import type { AnalyzeResult, ToolInfo } from '../analyze/types.js';

/** A model scored on the target task (the fine-tune's) and the source task (what it may forget). */
export interface Scores {
  target: number;
  source: number;
  targetLoss: number;
  sourceLoss: number;
}

/** One rank: the trained LoRA and the LoRA extracted from the full fine-tune. */
export interface RankComparison {
  rank: number;
  /** Null when no LoRA was trained at this rank. */
  trained: (Scores & { params: number }) | null;
  extracted: Scores & {
    params: number;
    /** Model-level ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F of the extraction, measured. */
    relativeError: number;
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
  spectra: ModuleSpectra[];
  similarity: SimilarityGrid[];
  projections: ProjectionRow[];
  /** analyze of base → full, complete spectra. */
  analysis: AnalyzeResult;
  seconds: number;
}
