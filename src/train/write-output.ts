/**
 * The folder `deltarank train` writes: base/ and full/ (config.json + model.safetensors,
 * PyTorch layout, Hugging Face names), {variant}-r{R}/ such as lora-r8/, dora-r8/, pissa-r8/
 * (PEFT adapters: plain LoRA in the format `extract` writes, DoRA with use_dora and
 * lora_magnitude_vector, lora_bias with lora_B.bias, PiSSA/OLoRA converted to plain LoRA) and metrics.json.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAdapter, writeCheckpoint } from '../io/index.js';
import type { TrainedAdapter, TrainResult } from './train-task.js';

/** PEFT's task_type per task; an image classifier has none that fits. */
const PEFT_TASK_TYPE: Record<string, string | null> = { mnist: null, charlm: 'CAUSAL_LM' };

/**
 * Write everything into `dir` (created if needed; run it inside writeDirAtomically for an
 * all-or-nothing output). F32 throughout, so the files hold exactly what was scored.
 * @example await writeDirAtomically(out, { force }, (tmp) => writeTrainOutput(tmp, result));
 */
export async function writeTrainOutput(dir: string, result: TrainResult): Promise<void> {
  const task = result.metrics.task;
  for (const [name, weights] of [
    ['base', result.base],
    ['full', result.full],
  ] as const) {
    const specs = result.shapes.map(([tensor, shape]) => ({ name: tensor, dtype: 'F32' as const, shape }));
    await writeCheckpoint(join(dir, name), specs, (spec) => weights.get(spec.name)!, { metadata: { format: 'pt' } });
    await writeFile(join(dir, name, 'config.json'), JSON.stringify(result.configJson, null, 2) + '\n');
  }
  for (const adapter of result.adapters) await writeTrainedAdapter(join(dir, adapter.name), task, adapter);
  await writeFile(join(dir, 'metrics.json'), JSON.stringify(result.metrics, null, 2) + '\n');
}

/**
 * One trained adapter as a PEFT folder, F32. PiSSA/OLoRA adapters are already converted to plain
 * LoRA of the original base (init_lora_weights true, as PEFT saves its conversion); the variant
 * is recorded in `deltarank_variant` / `deltarank_init`.
 */
export async function writeTrainedAdapter(dir: string, task: string, adapter: TrainedAdapter): Promise<void> {
  await writeAdapter(dir, {
    modules: adapter.modules,
    dtype: 'F32',
    useRslora: adapter.rslora,
    baseModel: '../base',
    taskType: PEFT_TASK_TYPE[task] ?? null,
    extraConfig: {
      deltarank_task: task,
      deltarank_variant: adapter.variant.name,
      ...(adapter.variant.init !== true ? { deltarank_init: adapter.variant.init } : {}),
    },
  });
}
