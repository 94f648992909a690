/**
 * `src/train`: deltarank's own fine-tunes on tfjs (the only layer that imports it).
 * Built-in tasks with Hugging Face module names, the LoRA layer, trainers, evaluation of
 * plain weight maps, and the `train` output folder.
 */

export { createRng, type Rng } from '../svd/index.js';
export { type BackendInfo, initBackend } from './backend.js';
export { CHARLM_VOCAB, type CharLmConfig, charlmTask } from './charlm-task.js';
export { type DirectionPoint, type MagnitudeDirection, magnitudeDirection } from './direction.js';
export { evaluate, type LoadedModel, loadModel, loadTaskData } from './evaluate.js';
export {
  inputGrams,
  type LinearCall,
  type LinearInputStats,
  linearCalls,
  type Predictions,
  predictions,
} from './layer-inputs.js';
export { type ExportedFactors, exportFactors } from './lora-export.js';
export { type LoraInit, mutatesBase, parseLoraInit } from './lora-init.js';
export { type LoraAdapter, LoraLinear, type LoraOptions, loraScaleOf } from './lora-linear.js';
export { IMAGE_SIDE, type MnistConfig, mnistTask, rotateQuarterTurn } from './mnist-task.js';
export {
  attachLora,
  countTrainable,
  createModel,
  disposeModel,
  readWeights,
  type TfModel,
  trainableVariables,
} from './model.js';
export { matMulNN, matMulNT, type ProductOptions } from './ops.js';
export type * from './task.js';
export { isTaskName, TASK_NAMES, type TaskConfig, withTask } from './tasks.js';
export { CODE, PROSE } from './texts.js';
export {
  adapterModules,
  type RunKind,
  type RunMetrics,
  type TrainedAdapter,
  type TrainedLoraModule,
  type TrainMetrics,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  trainTask,
} from './train-task.js';
export {
  type CurvePoint,
  crossEntropy,
  evaluateModel,
  type FitOptions,
  type FitResult,
  fit,
  stepsPerEpoch,
  trainStep,
} from './trainer.js';
export { type LoraVariant, parseVariant, VARIANT_WORDS, variantOf } from './variants.js';
export { writeTrainedAdapter, writeTrainOutput } from './write-output.js';
