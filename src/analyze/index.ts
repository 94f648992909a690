export {
  type AnalyzeOptions,
  type AnalyzeProgress,
  analyzeAdapter,
  analyzeCheckpoints,
  analyzeDelta,
} from './analyze.js';
export { deltaScratch, readDelta, subtractPlain } from './delta.js';
export { type ExpertPart, fusedParams, shapeLookup } from './expert-params.js';
export { checkpointIntruders, type TensorIntruders } from './intruders.js';
export {
  applyLoraBias,
  applyModule,
  applyParamLora,
  expertPartModule,
  storedTransposed,
  type WeightLayout,
  weightLayout,
} from './lora-apply.js';
export { pairTensors, type TensorPair } from './pairing.js';
export { resizedVocabulary, tiedReplacements } from './replacements.js';
export { DEFAULT_THRESHOLDS, DEFAULT_TOP_K, exactRank, formatRankValue } from './spectrum.js';
export { stopSpectrumWorkers } from './spectrum-pool.js';
export * from './types.js';
