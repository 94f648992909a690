/**
 * One call trains the whole story of a task: a base model on the source distribution,
 * its full fine-tune on the target, and LoRA fine-tunes of the base at several ranks,
 * each scored on both distributions.
 */

import { UsageError } from '../errors.js';
import type { LoraModule } from '../io/index.js';
import { createRng, type Svd64 } from '../svd/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { initBackend } from './backend.js';
import { type DirectionPoint, magnitudeDirection } from './direction.js';
import { exportFactors } from './lora-export.js';
import type { LoraInit } from './lora-init.js';
import { attachLora, countTrainable, createModel, disposeModel, readWeights, type TfModel } from './model.js';
import type { Evaluation, Split, TaskData, TaskName, TaskSpec } from './task.js';
import { type TaskConfig, withTask } from './tasks.js';
import { type CurvePoint, evaluateModel, fit, stepsPerEpoch } from './trainer.js';
import { type LoraVariant, parseVariant, variantOf } from './variants.js';

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
  /** LoRA variants to train at every rank ("lora", "dora", "pissa", "dora+gaussian", …; see variants.ts); default one from the flags below. */
  variants?: (string | LoraVariant)[];
  /** The single variant's flags when `variants` is absent: PEFT's use_dora, lora_bias, init_lora_weights. */
  useDora?: boolean;
  loraBias?: boolean;
  init?: LoraInit;
  batchSize?: number;
  /** Learning rates by run kind; the task's defaults fill the rest. */
  learningRate?: Partial<Record<RunKind, number>>;
  /** Overrides of the model config (sizes, training-set caps): tests and benchmarks shrink the task with it. */
  model?: Partial<TaskConfig>;
  onProgress?: (p: TrainProgress) => void;
}

export type RunKind = 'base' | 'full' | 'lora';

export interface TrainProgress {
  /** "base", "full", "lora-r8", "dora-r8". */
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
  /** Adapter runs: the variant's name and PEFT flags. */
  variant?: string;
  useDora?: boolean;
  loraBias?: boolean;
  init?: LoraInit;
  trainableParams: number;
  /** Wall time of the run, curve evaluations included. */
  seconds: number;
  /** Training examples per second of optimiser steps (evaluations excluded). */
  examplesPerSecond: number;
  /** The test split the curve's metric is measured on: the distribution the run trains on. */
  curveSplit: 'source' | 'target';
  curve: CurvePoint[];
  /** Fine-tunes: DoRA's ΔM/ΔD of every adapted layer against the base, after every epoch. */
  direction?: DirectionPoint[];
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
    /** Variant names, each trained at every rank. */
    variants: string[];
    loraTargets: string[];
    trainExamples: { source: number; target: number };
    testExamples: { source: number; target: number };
  };
  runs: RunMetrics[];
  /** Wall time of everything. */
  seconds: number;
}

/** A trained LoRA module in PEFT layout: lora_A.weight [r, in], lora_B.weight [out, r] (+ lora_B.bias, DoRA's magnitude). */
export type TrainedLoraModule = LoraModule & { kind: 'linear' };

export interface TrainedAdapter {
  name: string;
  /** The rank trained at; PiSSA/OLoRA modules hold 2r (their conversion to plain LoRA). */
  rank: number;
  alpha: number;
  rslora: boolean;
  variant: LoraVariant;
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

async function trainWith<C extends TaskConfig>(
  task: TaskSpec<C>,
  opts: TrainOptions,
  backend: { name: string; detail: string },
): Promise<TrainResult> {
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
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UsageError(`batch size must be a positive integer, got ${batchSize}`);
  if (!(alpha > 0)) throw new UsageError(`LoRA alpha must be positive, got ${alpha}`);
  for (const r of ranks)
    if (!Number.isInteger(r) || r < 1) throw new UsageError(`LoRA ranks must be positive integers, got ${r}`);
  if (new Set(ranks).size !== ranks.length) throw new UsageError(`LoRA ranks repeat: ${ranks.join(',')}`);
  const variants = (
    opts.variants ?? [variantOf({ useDora: opts.useDora, loraBias: opts.loraBias, init: opts.init })]
  ).map((v) => (typeof v === 'string' ? parseVariant(v) : v));
  if (variants.length === 0) throw new UsageError('no LoRA variants to train');
  if (new Set(variants.map((v) => v.name)).size !== variants.length)
    throw new UsageError(`LoRA variants repeat: ${variants.map((v) => v.name).join(',')}`);

  const config = { ...task.defaultConfig(), ...opts.model } as C;
  const shapes = task.shapes(config);
  const targets = task.loraTargets(config);
  const data = await task.data(config);
  if (variants.some((v) => v.loraBias)) {
    const bare = targets.filter((t) => !shapes.some(([n]) => n === `${t}.bias`));
    if (bare.length > 0)
      throw new UsageError(
        `lora_bias needs a bias on every adapted layer (PEFT could not merge it otherwise); ${task.name} has none on ${bare[0]}${bare.length > 1 ? ` and ${bare.length - 1} more` : ''}`,
      );
  }

  const runNames = ['base', 'full'];
  const stepsOf = (split: Split) => epochs * stepsPerEpoch(split.size, batchSize);
  const total = stepsOf(data.source.train) + (1 + ranks.length * variants.length) * stepsOf(data.target.train);
  let done = 0;
  const progress = (run: string) => (loss: number) => onProgress?.({ run, done: ++done, total, loss });

  const runs: RunMetrics[] = [];
  let baseWeights: Map<string, Float32Array> | undefined;
  const train = async (
    name: string,
    kind: RunKind,
    model: TfModel,
    split: 'source' | 'target',
    runSeed: number,
    lora?: Partial<RunMetrics>,
  ) => {
    const t0 = performance.now();
    const trainableParams = countTrainable(model);
    const direction: DirectionPoint[] = [];
    const result = await fit(task, config, model, data[split].train, {
      epochs,
      batchSize,
      learningRate: learningRate[kind],
      seed: runSeed,
      evalSplit: data[split].test,
      onStep: progress(name),
      onEpoch: baseWeights
        ? (epoch, step) => direction.push({ epoch, step, layers: layerDirections(model, targets, baseWeights!) })
        : undefined,
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
      ...(baseWeights ? { direction } : {}),
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
  baseWeights = base;

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
  // PiSSA at every rank starts from the same SVD of each base weight.
  const svdCache = new Map<string, Svd64>();
  for (const variant of variants) {
    for (const rank of ranks) {
      const name = `${variant.name}-r${rank}`;
      runNames.push(name);
      const model = createModel(shapes, base);
      try {
        // Each rank draws its own A: with one stream, A at r = 8 would start as the first 8 rows of A at
        // r = 64, and the subspace similarity between them (LoRA paper Fig. 3) would be inflated from the start.
        attachLora(model, targets, {
          rank,
          alpha,
          rslora,
          dropout: loraDropout,
          seed,
          adapter: name,
          useDora: variant.useDora,
          loraBias: variant.loraBias,
          initLoraWeights: variant.init,
          svdCache,
        });
        await train(name, 'lora', model, 'target', fineTuneSeed, {
          rank,
          alpha,
          rslora,
          variant: variant.name,
          useDora: variant.useDora,
          loraBias: variant.loraBias,
          init: variant.init,
        });
        adapters.push({ name, rank, alpha, rslora, variant, modules: adapterModules(model) });
      } finally {
        disposeModel(model);
      }
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
      variants: variants.map((v) => v.name),
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

/** The active adapter of every LoRA layer, copied out in PEFT layout (PiSSA/OLoRA converted to plain LoRA of the original base). */
export function adapterModules(model: TfModel): TrainedLoraModule[] {
  return [...model.lora.values()].map((layer) => {
    const f = exportFactors(layer);
    return {
      module: layer.module,
      kind: 'linear',
      rank: f.rank,
      alpha: f.alpha,
      a: f.a,
      b: f.b,
      ...(f.bias ? { bias: f.bias } : {}),
      ...(f.magnitude ? { magnitude: f.magnitude } : {}),
      inFeatures: layer.inFeatures,
      outFeatures: layer.outFeatures,
    };
  });
}

/** ΔM/ΔD of every target's current weight (the adapter's effective weight, or the variable under full fine-tuning) against the base. */
function layerDirections(model: TfModel, targets: string[], base: Map<string, Float32Array>) {
  return targets.map((module) => {
    const layer = model.lora.get(module);
    const v = model.variables.get(`${module}.weight`)!;
    const [rows, cols] = v.shape as [number, number];
    let tuned: Float32Array;
    if (layer) {
      const t = layer.effectiveWeight();
      tuned = new Float32Array(t.dataSync());
      t.dispose();
    } else {
      tuned = v.dataSync() as Float32Array;
    }
    return { module, ...magnitudeDirection(tuned, base.get(`${module}.weight`)!, rows, cols) };
  });
}
