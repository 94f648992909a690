export {
  type AnalyzeOptions,
  type AnalyzeProgress,
  analyzeAdapter,
  analyzeCheckpoints,
  analyzeDelta,
} from './analyze.js';
export { type Delta, type DeltaScratch, deltaScratch, readDelta, readStoredDelta, subtractPlain } from './delta.js';
export { type ExpertPart, type FusedParam, fusedParams, shapeLookup } from './expert-params.js';
export {
  baseLeftVectors,
  checkpointIntruders,
  INTRUDER_EXACT_MAX,
  INTRUDER_THRESHOLD,
  INTRUDER_TOP_K,
  type IntruderCount,
  intruderCount,
  type TensorIntruders,
} from './intruders.js';
export {
  applyLoraBias,
  applyModule,
  applyParamLora,
  expertModule,
  expertPartModule,
  storedTransposed,
  type WeightLayout,
  weightLayout,
} from './lora-apply.js';
export { type Pairing, pairTensors, type TensorPair } from './pairing.js';
export { resizedVocabulary, tiedReplacements } from './replacements.js';
export {
  certify,
  computeSpectrum,
  DEFAULT_REFINE_CAP_SECONDS,
  DEFAULT_THRESHOLDS,
  DEFAULT_TOP_K,
  exactRank,
  formatRankValue,
  type SpectrumEvidence,
  type SpectrumOptions,
  type SpectrumSummary,
  summarize,
} from './spectrum.js';
export * from './types.js';
