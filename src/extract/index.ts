export { extractAdapter, BUDGET_SPECTRUM_CAP, type ExtractOptions, type ExtractOutput, type ExtractProgress } from './extract.js';
export { applyAdapter, mergeAdapter, type MergeOptions, type MergeResult } from './merge.js';
export { resizeAdapter, type ResizeResult, type ResizedModule } from './resize.js';
export { splitFactors, residualNorm, roundTo } from './factors.js';
export { allocateBudget, policyFromFlags, rankFor, type RankPolicy, type RankLimits, type BudgetModule } from './policy.js';
export type * from './types.js';
export { planExtraction, type Candidate, type ExtractPlan, type PlanOptions } from './plan.js';
