/**
 * Scoring of plain weight maps (name → Float32Array, PyTorch layout), so callers without
 * tfjs knowledge can evaluate a base model, a fine-tune, or a base with merged adapters.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../errors.js';
import { openCheckpoint } from '../io/index.js';
import { initBackend } from './backend.js';
import { createModel, disposeModel } from './model.js';
import type { Evaluation, SplitName, TaskData, TaskName, TaskSpec } from './task.js';
import { type TaskConfig, withTask } from './tasks.js';
import { evaluateModel } from './trainer.js';

/** A checkpoint written by `deltarank train`, in memory. */
export interface LoadedModel {
  task: TaskName;
  config: TaskConfig;
  /** Every tensor, widened to f32, PyTorch layout. */
  weights: Map<string, Float32Array>;
}

/**
 * Read `DIR/base` or `DIR/full` (config.json + safetensors). Holds the whole model in
 * memory: these are the small built-in models.
 * @example const { weights, config } = await loadModel('mnist', 'runs/mnist/full');
 */
export async function loadModel(task: TaskName, checkpointDir: string): Promise<LoadedModel> {
  const file = join(checkpointDir, 'config.json');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new FormatError(`${file}: cannot read the model config (${(err as Error).message})`, { cause: err });
  }
  const config = withTask(task, (spec) => spec.configFromJson(json, file) as TaskConfig);
  const checkpoint = await openCheckpoint(checkpointDir);
  try {
    const weights = new Map<string, Float32Array>();
    for (const t of checkpoint.tensors) weights.set(t.name, await checkpoint.readFloat32(t.name));
    return { task, config, weights };
  } finally {
    await checkpoint.close();
  }
}

/**
 * Mean loss and task metric of `weights` on the test examples of `split`: accuracy for
 * mnist, bits per character (and perplexity) for charlm. The config comes from the weights'
 * shapes unless given (charlm assumes 16-wide heads then, as `train` builds them).
 * Cost: one forward pass over 1,000 digits or ≈ 1,400 characters.
 * @example const e = await evaluate('mnist', weights, 'target'); e.accuracy
 */
export async function evaluate(
  task: TaskName,
  weights: Map<string, Float32Array>,
  split: SplitName,
  opts: { config?: TaskConfig } = {},
): Promise<Evaluation> {
  await initBackend();
  return withTask(task, async <C extends TaskConfig>(spec: TaskSpec<C>) => {
    const config = (opts.config as C | undefined) ?? spec.inferConfig(weights);
    const data = await spec.data(config);
    const model = createModel(spec.shapes(config), weights);
    try {
      return evaluateModel(spec, config, model, data[split].test);
    } finally {
      disposeModel(model);
    }
  });
}

/**
 * The task's datasets (source: what the base learns; target: the shifted distribution
 * of the fine-tunes), each with train and test examples. Fixed across seeds.
 */
export async function loadTaskData(task: TaskName, config?: TaskConfig): Promise<TaskData> {
  return withTask(task, <C extends TaskConfig>(spec: TaskSpec<C>) =>
    spec.data((config as C | undefined) ?? spec.defaultConfig()),
  );
}
