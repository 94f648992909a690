/** `verify`: an adapter's fidelity to its fine-tune where users feel it, in the model's outputs. */
export { verifyAdapter, type VerifyOptions } from './verify.js';
export type { LayerError, VerifyResult } from './types.js';
