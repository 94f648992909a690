/**
 * Pair the tensors of two checkpoints by name and sort them into what gets a
 * spectrum (2-D float weights), what is reported by its change alone (1-D and
 * other float tensors) and what is skipped (one side only, shape or dtype mismatch).
 */
import { ShapeError } from '../errors.js';
import type { ModelLayout, TensorInfo } from '../io/index.js';
import { isFloatDType } from '../io/index.js';
import type { SkippedTensor } from './types.js';

export interface TensorPair {
  name: string;
  base: TensorInfo;
  tuned: TensorInfo;
}

export interface Pairing {
  /** 2-D float tensors present on both sides with equal shapes: ΔW gets a spectrum. */
  matrices: TensorPair[];
  /** Other float tensors on both sides with equal shapes (norms, biases): change only. */
  others: TensorPair[];
  skipped: SkippedTensor[];
}

/** The `--include`/`--exclude` test on a tensor or module name. */
export function nameFilter({ include, exclude }: { include?: RegExp; exclude?: RegExp }): (name: string) => boolean {
  return (name) => (!include || include.test(name)) && !(exclude && exclude.test(name));
}

/** How many mismatches a "different models" error lists. */
const MISMATCHES_SHOWN = 3;

/**
 * Pair `base` and `tuned` tensors by name, filtered by `include`/`exclude` (tested on the tensor name).
 * With the tuned side's `layout` (io/layouts.ts), buffers (attention masks, rotary tables that some
 * checkpoints store) are skipped with the table's reason instead of being read as weights.
 * Throws ShapeError when the two cannot be the same model: no common tensor, or most common tensors differ in shape.
 */
export function pairTensors(
  base: TensorInfo[],
  tuned: TensorInfo[],
  { include, exclude, layout }: { include?: RegExp; exclude?: RegExp; layout?: ModelLayout } = {},
): Pairing {
  const keep = nameFilter({ include, exclude });
  const tunedByName = new Map(tuned.map((t) => [t.name, t]));
  const baseNames = new Set(base.map((t) => t.name));
  const matrices: TensorPair[] = [];
  const others: TensorPair[] = [];
  const skipped: SkippedTensor[] = [];
  const shapeMismatches: string[] = [];
  let common = 0;
  for (const b of base) {
    if (!keep(b.name)) continue;
    const t = tunedByName.get(b.name);
    if (!t) {
      skipped.push({ name: b.name, reason: 'only in base' });
      continue;
    }
    common++;
    if (!sameShape(b.shape, t.shape)) {
      const reason = `shape [${b.shape.join(',')}] vs [${t.shape.join(',')}]`;
      skipped.push({ name: b.name, reason });
      shapeMismatches.push(`${b.name}: ${reason}`);
      continue;
    }
    if (!isFloatDType(b.dtype) || !isFloatDType(t.dtype)) {
      // Name both dtypes when they differ: an integer tensor on one side only is the tuned one as often as not.
      skipped.push({
        name: b.name,
        reason: `not a float tensor (${b.dtype === t.dtype ? b.dtype : `base ${b.dtype}, tuned ${t.dtype}`})`,
      });
      continue;
    }
    const role = layout?.byName.get(b.name);
    if (role?.role === 'buffer') {
      skipped.push({ name: b.name, reason: role.note ?? 'a buffer, not a parameter' });
      continue;
    }
    const pair = { name: b.name, base: b, tuned: t };
    if (b.shape.length === 2 && b.shape[0]! > 1 && b.shape[1]! > 1) matrices.push(pair);
    else others.push(pair);
  }
  for (const t of tuned)
    if (keep(t.name) && !baseNames.has(t.name)) skipped.push({ name: t.name, reason: 'only in tuned' });

  if (common === 0) {
    const sample = (list: TensorInfo[]) =>
      list
        .slice(0, MISMATCHES_SHOWN)
        .map((t) => t.name)
        .join(', ') || '(none)';
    throw new ShapeError(
      `base and tuned share no tensor name${include || exclude ? ' (after --include/--exclude)' : ''}: base has ${sample(base)}…; tuned has ${sample(tuned)}…`,
    );
  }
  if (shapeMismatches.length > common / 2) {
    throw new ShapeError(
      `base and tuned look like different models: ${shapeMismatches.length} of ${common} common tensors differ in shape, e.g. ${shapeMismatches
        .slice(0, MISMATCHES_SHOWN)
        .join('; ')}`,
    );
  }
  return { matrices, others, skipped };
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
