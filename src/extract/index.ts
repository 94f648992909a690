export { DEFAULT_CALIBRATION_INPUTS } from './calibrate.js';
export { calibratedFactors, outputSpectrum } from './calibrated-factors.js';
export { type ExtractOptions, type ExtractOutput, extractAdapter } from './extract.js';
export { applyAdapter, type MergeResult, mergeAdapter } from './merge.js';
export { allocateBudget, policyFromFlags, type RankPolicy } from './policy.js';
export { type ResizeResult, resizeAdapter } from './resize.js';
export type * from './types.js';
