export { type CompareOptions, type CompareOutput, type CompareProgress, compareRun } from './compare.js';
export type * from './types.js';
