/** Synthetic Llama-shaped base/tuned pairs with a planted ΔW spectrum. */

export * from './planted.js';
export * from './shapes.js';
export * from './synth-pair.js';
