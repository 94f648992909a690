/**
 * The forward pass of real checkpoints (decoder-only, Llama family and close relatives), read
 * layer by layer, with LoRA/DoRA adapters applied unmerged or merged. Sits above io and svd.
 */
export {
  type LayerArch,
  type ModelArch,
  type ModelType,
  modelFolder,
  type RopeConfig,
  readModelArch,
  resolveArch,
  SUPPORTED_MODEL_TYPES,
  SUPPORTED_ROPE_TYPES,
} from './config.js';
export {
  type DecoderRun,
  type ForwardOptions,
  type ForwardVariant,
  type LinearHook,
  layerModules,
  runDecoder,
} from './forward.js';
export {
  type AppliedAdapter,
  appliedAdapter,
  applyLinear,
  doraRowScale,
  type LinearWeights,
  type LoraDelta,
  loadAdapter,
  loraProduct,
  mergedBias,
  mergedWeight,
} from './linear.js';
export { causalAttention, gatedActivation, rmsNorm } from './ops.js';
export { applyRope, inverseFrequencies, type RopeTables, ropeTables } from './rope.js';
