/** The built-in tasks by name. */
import { UsageError } from '../errors.js';
import { type CharLmConfig, charlmTask } from './charlm-task.js';
import { type MnistConfig, mnistTask } from './mnist-task.js';
import type { TaskName, TaskSpec } from './task.js';

export const TASK_NAMES: readonly TaskName[] = ['mnist', 'charlm'];

/** A model config of either task (what config.json decodes to). */
export type TaskConfig = MnistConfig | CharLmConfig;

/** Whether `name` is a built-in task (for commands that take a task name from files or flags). */
export function isTaskName(name: string): name is TaskName {
  return (TASK_NAMES as readonly string[]).includes(name);
}

/**
 * Run `fn` with the task's spec, keeping the spec and its config type together
 * (a generic callback instead of a union of specs, which TypeScript cannot call).
 */
export function withTask<R>(name: TaskName, fn: <C extends TaskConfig>(task: TaskSpec<C>) => R): R {
  switch (name) {
    case 'mnist':
      return fn(mnistTask);
    case 'charlm':
      return fn(charlmTask);
    default:
      throw new UsageError(`unknown task "${String(name)}"; known: ${TASK_NAMES.join(', ')}`);
  }
}
