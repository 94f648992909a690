/** `verify`: an adapter's fidelity to its fine-tune where users feel it, in the model's outputs. */

export type { LayerError, VerifyResult } from './types.js';
export { type VerifyOptions, verifyAdapter } from './verify.js';
