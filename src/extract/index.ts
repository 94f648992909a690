export {
  BUDGET_SPECTRUM_CAP,
  type ExtractOptions,
  type ExtractOutput,
  type ExtractProgress,
  extractAdapter,
} from './extract.js';
export { residualNorm, roundTo, splitFactors } from './factors.js';
export { applyAdapter, type MergeOptions, type MergeResult, mergeAdapter } from './merge.js';
export { type Candidate, type ExtractPlan, type PlanOptions, planExtraction } from './plan.js';
export {
  allocateBudget,
  type BudgetModule,
  policyFromFlags,
  type RankLimits,
  type RankPolicy,
  rankFor,
} from './policy.js';
export { type ResizedModule, type ResizeResult, resizeAdapter } from './resize.js';
export type * from './types.js';
