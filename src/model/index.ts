/**
 * The forward pass of real checkpoints (decoder-only, Llama family and close relatives), read
 * layer by layer, with LoRA/DoRA adapters applied unmerged or merged. Sits above io and svd.
 */
export { readModelArch, resolveArch, modelFolder, SUPPORTED_MODEL_TYPES, SUPPORTED_ROPE_TYPES, type ModelArch, type ModelType, type LayerArch, type RopeConfig } from './config.js';
export { runDecoder, layerModules, type DecoderRun, type ForwardOptions, type ForwardVariant, type LinearHook } from './forward.js';
export { applyLinear, appliedAdapter, doraRowScale, loadAdapter, loraProduct, mergedBias, mergedWeight, type AppliedAdapter, type LinearWeights, type LoraDelta } from './linear.js';
export { causalAttention, gatedActivation, rmsNorm } from './ops.js';
export { applyRope, inverseFrequencies, ropeTables, type RopeTables } from './rope.js';
