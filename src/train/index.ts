/**
 * `src/train`: deltarank's own fine-tunes on tfjs (the only layer that imports it).
 * Built-in tasks with Hugging Face module names, the LoRA layer, trainers, evaluation of
 * plain weight maps, and the `train` output folder.
 */
export { initBackend, type BackendInfo } from './backend.js';
export { LoraLinear, loraScaleOf, type LoraAdapter, type LoraOptions } from './lora-linear.js';
export { parseLoraInit, mutatesBase, type LoraInit } from './lora-init.js';
export { exportFactors, type ExportedFactors } from './lora-export.js';
export { parseVariant, variantOf, VARIANT_WORDS, type LoraVariant } from './variants.js';
export { magnitudeDirection, type MagnitudeDirection, type DirectionPoint } from './direction.js';
export { createModel, attachLora, trainableVariables, countTrainable, readWeights, disposeModel, type TfModel } from './model.js';
export { crossEntropy, fit, trainStep, evaluateModel, stepsPerEpoch, type CurvePoint, type FitOptions, type FitResult } from './trainer.js';
export { matMulNN, matMulNT, type ProductOptions } from './ops.js';
export { createRng, type Rng } from '../svd/index.js';
export { mnistTask, IMAGE_SIDE, rotateQuarterTurn, type MnistConfig } from './mnist-task.js';
export { charlmTask, CHARLM_VOCAB, type CharLmConfig } from './charlm-task.js';
export { PROSE, CODE } from './texts.js';
export { TASK_NAMES, isTaskName, withTask, type TaskConfig } from './tasks.js';
export { evaluate, loadModel, loadTaskData, type LoadedModel } from './evaluate.js';
export {
  trainTask,
  adapterModules,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  type TrainMetrics,
  type RunMetrics,
  type RunKind,
  type TrainedAdapter,
  type TrainedLoraModule,
} from './train-task.js';
export { writeTrainOutput, writeTrainedAdapter } from './write-output.js';
export type * from './task.js';
