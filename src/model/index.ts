/**
 * The forward pass of real checkpoints (decoder-only, Llama family and close relatives), read
 * layer by layer, with LoRA/DoRA adapters applied unmerged or merged. Sits above io and svd.
 */
export { type ModelArch, readModelArch, SUPPORTED_MODEL_TYPES } from './config.js';
export { type DecoderRun, type ForwardVariant, type LinearHook, layerModules, runDecoder } from './forward.js';
export { type AppliedAdapter, applyLinear, loadAdapter } from './linear.js';
