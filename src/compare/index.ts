export { compareRun, type CompareOptions, type CompareOutput, type CompareProgress } from './compare.js';
export type * from './types.js';
