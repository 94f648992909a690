/**
 * One call trains the whole story of a task: a base model on the source distribution,
 * its full fine-tune on the target, and LoRA fine-tunes of the base at several ranks,
 * each scored on both distributions.
 */
import type { LoraModule } from '../io/index.js';
import { UsageError } from '../errors.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { initBackend } from './backend.js';
import { attachLora, countTrainable, createModel, disposeModel, readWeights, type TfModel } from './model.js';
import { createRng } from '../svd/index.js';
import type { Evaluation, Split, TaskData, TaskName, TaskSpec } from './task.js';
import { withTask, type TaskConfig } from './tasks.js';
import { evaluateModel, fit, stepsPerEpoch, type CurvePoint } from './trainer.js';

export interface TrainOptions {
  task: TaskName;
  /** LoRA ranks to train; the task's default list when absent, none when empty. */
  ranks?: number[];
  /** Epochs of every run (base, full, LoRA); the task's default when absent. */
  epochs?: number;
  seed?: number;
  /** LoRA α; scale α/r (or α/√r with rslora). */
  alpha?: number;
  rslora?: boolean;
  loraDropout?: number;
  batchSize?: number;
  /** Learning rates by run kind; the task's defaults fill the rest. */
  learningRate?: Partial<Record<RunKind, number>>;
  /** Overrides of the model config (sizes, training-set caps): tests and benchmarks shrink the task with it. */
  model?: Partial<TaskConfig>;
  onProgress?: (p: TrainProgress) => void;
}

export type RunKind = 'base' | 'full' | 'lora';

export interface TrainProgress {
  /** "base", "full", "lora-r8". */
  run: string;
  /** Optimiser steps done over all runs, and their total. */
  done: number;
  total: number;
  /** Loss of the last step. */
  loss: number;
}

/** One run of metrics.json. */
export interface RunMetrics {
  name: string;
  kind: RunKind;
  rank?: number;
  alpha?: number;
  rslora?: boolean;
  trainableParams: number;
  /** Wall time of the run, curve evaluations included. */
  seconds: number;
  /** Training examples per second of optimiser steps (evaluations excluded). */
  examplesPerSecond: number;
  /** The test split the curve's metric is measured on: the distribution the run trains on. */
  curveSplit: 'source' | 'target';
  curve: CurvePoint[];
  final: { source: Evaluation; target: Evaluation };
}

/** metrics.json. */
export interface TrainMetrics {
  schemaVersion: number;
  tool: { name: string; version: string };
  task: TaskName;
  /** tfjs backend name ("wasm", "tensorflow") and what loaded. */
  backend: string;
  backendDetail: string;
  seed: number;
  metric: { name: string; higherIsBetter: boolean };
  config: {
    model: Record<string, unknown>;
    epochs: number;
    batchSize: number;
    learningRate: Record<RunKind, number>;
    alpha: number;
    rslora: boolean;
    loraDropout: number;
    ranks: number[];
    loraTargets: string[];
    trainExamples: { source: number; target: number };
    testExamples: { source: number; target: number };
  };
  runs: RunMetrics[];
  /** Wall time of everything. */
  seconds: number;
}

/** A trained LoRA module in PEFT layout: lora_A.weight [r, in], lora_B.weight [out, r]. */
export type TrainedLoraModule = LoraModule & { kind: 'linear' };

export interface TrainedAdapter {
  name: string;
  rank: number;
  alpha: number;
  rslora: boolean;
  modules: TrainedLoraModule[];
}

export interface TrainResult {
  metrics: TrainMetrics;
  /** config.json of base/ and full/. */
  configJson: Record<string, unknown>;
  /** Tensor order of the checkpoints: [name, shape]. */
  shapes: [string, number[]][];
  base: Map<string, Float32Array>;
  full: Map<string, Float32Array>;
  adapters: TrainedAdapter[];
}

/**
 * Train base, full fine-tune and one LoRA per rank. Deterministic for a seed on a given
 * backend: initial weights, LoRA A, example order and dropout all come from `seed`.
 * Cost at the defaults on 2 busy cores with the wasm backend: mnist ≈ 30 s, charlm ≈ 75 s.
 * @example const { metrics, base, full, adapters } = await trainTask({ task: 'mnist', ranks: [4, 16] });
 */
export async function trainTask(opts: TrainOptions): Promise<TrainResult> {
  const backend = await initBackend();
  return withTask(opts.task, <C extends TaskConfig>(task: TaskSpec<C>) => trainWith(task, opts, backend));
}

async function trainWith<C extends TaskConfig>(task: TaskSpec<C>, opts: TrainOptions, backend: { name: string; detail: string }): Promise<TrainResult> {
  const started = performance.now();
  const d = task.defaults;
  const {
    ranks = d.ranks,
    epochs = d.epochs,
    seed = 0,
    alpha = d.alpha,
    rslora = false,
    loraDropout = 0,
    batchSize = d.batchSize,
    onProgress,
  } = opts;
  const learningRate: Record<RunKind, number> = { ...d.learningRate, ...opts.learningRate };
  if (!Number.isInteger(epochs) || epochs < 1) throw new UsageError(`epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`batch size must be a positive integer, got ${batchSize}`);
  if (!(alpha > 0)) throw new UsageError(`LoRA alpha must be positive, got ${alpha}`);
  for (const r of ranks) if (!Number.isInteger(r) || r < 1) throw new UsageError(`LoRA ranks must be positive integers, got ${r}`);
  if (new Set(ranks).size !== ranks.length) throw new UsageError(`LoRA ranks repeat: ${ranks.join(',')}`);

  const config = { ...task.defaultConfig(), ...opts.model } as C;
  const shapes = task.shapes(config);
  const targets = task.loraTargets(config);
  const data = await task.data(config);

  const runNames = ['base', 'full', ...ranks.map((r) => `lora-r${r}`)];
  const stepsOf = (split: Split) => epochs * stepsPerEpoch(split.size, batchSize);
  const total = stepsOf(data.source.train) + (1 + ranks.length) * stepsOf(data.target.train);
  let done = 0;
  const progress = (run: string) => (loss: number) => onProgress?.({ run, done: ++done, total, loss });

  const runs: RunMetrics[] = [];
  const train = async (name: string, kind: RunKind, model: TfModel, split: 'source' | 'target', runSeed: number, lora?: { rank: number; alpha: number; rslora: boolean }) => {
    const t0 = performance.now();
    const trainableParams = countTrainable(model);
    const result = await fit(task, config, model, data[split].train, {
      epochs,
      batchSize,
      learningRate: learningRate[kind],
      seed: runSeed,
      evalSplit: data[split].test,
      onStep: progress(name),
    });
    const final = finalScores(task, config, model, data);
    const run: RunMetrics = {
      name,
      kind,
      ...lora,
      trainableParams,
      seconds: (performance.now() - t0) / 1000,
      examplesPerSecond: result.examples / result.trainSeconds,
      curveSplit: split,
      curve: result.curve,
      final,
    };
    runs.push(run);
  };

  const baseModel = createModel(shapes, task.init(config, createRng(seed).fork('init')));
  let base: Map<string, Float32Array>;
  try {
    await train(runNames[0]!, 'base', baseModel, 'source', seed);
    base = readWeights(baseModel);
  } finally {
    disposeModel(baseModel);
  }

  // Fine-tunes share one example order, so full and LoRA differ only in what they may change.
  const fineTuneSeed = seed + 1;
  const fullModel = createModel(shapes, base);
  let full: Map<string, Float32Array>;
  try {
    await train(runNames[1]!, 'full', fullModel, 'target', fineTuneSeed);
    full = readWeights(fullModel);
  } finally {
    disposeModel(fullModel);
  }

  const adapters: TrainedAdapter[] = [];
  for (const rank of ranks) {
    const name = `lora-r${rank}`;
    const model = createModel(shapes, base);
    try {
      // Each rank draws its own A: with one stream, A at r = 8 would start as the first 8 rows of A at
      // r = 64, and the subspace similarity between them (LoRA paper Fig. 3) would be inflated from the start.
      attachLora(model, targets, { rank, alpha, rslora, dropout: loraDropout, seed, adapter: name });
      await train(name, 'lora', model, 'target', fineTuneSeed, { rank, alpha, rslora });
      adapters.push({ name, rank, alpha, rslora, modules: activeAdapterModules(model, rank, alpha) });
    } finally {
      disposeModel(model);
    }
  }

  const metrics: TrainMetrics = {
    schemaVersion: SCHEMA_VERSION,
    tool: TOOL,
    task: task.name,
    backend: backend.name,
    backendDetail: backend.detail,
    seed,
    metric: task.metric,
    config: {
      model: task.configJson(config),
      epochs,
      batchSize,
      learningRate,
      alpha,
      rslora,
      loraDropout,
      ranks,
      loraTargets: targets,
      trainExamples: { source: data.source.train.size, target: data.target.train.size },
      testExamples: { source: data.source.test.size, target: data.target.test.size },
    },
    runs,
    seconds: (performance.now() - started) / 1000,
  };
  return { metrics, configJson: task.configJson(config), shapes, base, full, adapters };
}

function finalScores<C>(task: TaskSpec<C>, config: C, model: TfModel, data: TaskData): RunMetrics['final'] {
  return {
    source: evaluateModel(task, config, model, data.source.test),
    target: evaluateModel(task, config, model, data.target.test),
  };
}

/** The active adapter of every LoRA layer, copied out in PEFT layout. */
function activeAdapterModules(model: TfModel, rank: number, alpha: number): TrainedLoraModule[] {
  return [...model.lora.values()].map((layer) => {
    const adapter = layer.active!;
    return {
      module: layer.module,
      kind: 'linear',
      rank,
      alpha,
      a: new Float32Array(adapter.a.dataSync()),
      b: new Float32Array(adapter.b.dataSync()),
      inFeatures: layer.inFeatures,
      outFeatures: layer.outFeatures,
    };
  });
}
