/**
 * The folder `deltarank train` writes: base/ and full/ (config.json + model.safetensors,
 * PyTorch layout, Hugging Face names), lora-r{R}/ (PEFT adapters, the format `extract`
 * writes and `merge` applies) and metrics.json.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAdapter, writeCheckpoint } from '../io/index.js';
import type { TrainResult } from './train-task.js';

/** PEFT's task_type per task; an image classifier has none that fits. */
const PEFT_TASK_TYPE: Record<string, string | null> = { mnist: null, charlm: 'CAUSAL_LM' };

/**
 * Write everything into `dir` (created if needed; run it inside writeDirAtomically for an
 * all-or-nothing output). F32 throughout, so the files hold exactly what was scored.
 * @example await writeDirAtomically(out, { force }, (tmp) => writeTrainOutput(tmp, result));
 */
export async function writeTrainOutput(dir: string, result: TrainResult): Promise<void> {
  const task = result.metrics.task;
  for (const [name, weights] of [['base', result.base], ['full', result.full]] as const) {
    const specs = result.shapes.map(([tensor, shape]) => ({ name: tensor, dtype: 'F32' as const, shape }));
    await writeCheckpoint(join(dir, name), specs, (spec) => weights.get(spec.name)!, { metadata: { format: 'pt' } });
    await writeFile(join(dir, name, 'config.json'), JSON.stringify(result.configJson, null, 2) + '\n');
  }
  for (const adapter of result.adapters) {
    await writeAdapter(join(dir, adapter.name), {
      modules: adapter.modules,
      dtype: 'F32',
      useRslora: adapter.rslora,
      baseModel: '../base',
      taskType: PEFT_TASK_TYPE[task] ?? null,
      extraConfig: { deltarank_task: task },
    });
  }
  await writeFile(join(dir, 'metrics.json'), JSON.stringify(result.metrics, null, 2) + '\n');
}
