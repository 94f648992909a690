export * from './types.js';
export { analyzeCheckpoints, analyzeDelta, analyzeAdapter, type AnalyzeOptions, type AnalyzeProgress } from './analyze.js';
export { computeSpectrum, summarize, DEFAULT_THRESHOLDS, DEFAULT_TOP_K, type SpectrumOptions, type SpectrumSummary } from './spectrum.js';
export { pairTensors, type Pairing, type TensorPair } from './pairing.js';
export { deltaScratch, readDelta, readStoredDelta, subtractPlain, type Delta, type DeltaScratch } from './delta.js';
export { resizedVocabulary, tiedReplacements } from './replacements.js';
export { applyLoraBias, applyModule, applyParamLora, expertModule, expertPartModule, storedTransposed, weightLayout, type WeightLayout } from './lora-apply.js';
export { fusedParams, shapeLookup, type ExpertPart, type FusedParam } from './expert-params.js';
