export * from './types.js';
export { analyzeCheckpoints, analyzeDelta, analyzeAdapter, type AnalyzeOptions, type AnalyzeProgress } from './analyze.js';
export {
  computeSpectrum,
  summarize,
  certify,
  exactRank,
  formatRankValue,
  DEFAULT_REFINE_CAP_SECONDS,
  DEFAULT_THRESHOLDS,
  DEFAULT_TOP_K,
  type SpectrumEvidence,
  type SpectrumOptions,
  type SpectrumSummary,
} from './spectrum.js';
export { pairTensors, type Pairing, type TensorPair } from './pairing.js';
export { deltaScratch, readDelta, readStoredDelta, subtractPlain, type Delta, type DeltaScratch } from './delta.js';
export { intruderCount, baseLeftVectors, checkpointIntruders, INTRUDER_TOP_K, INTRUDER_THRESHOLD, INTRUDER_EXACT_MAX, type IntruderCount, type TensorIntruders } from './intruders.js';
export { resizedVocabulary, tiedReplacements } from './replacements.js';
export { applyLoraBias, applyModule, applyParamLora, expertModule, expertPartModule, storedTransposed, weightLayout, type WeightLayout } from './lora-apply.js';
export { fusedParams, shapeLookup, type ExpertPart, type FusedParam } from './expert-params.js';
