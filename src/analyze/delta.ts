/**
 * ΔW = W_tuned − W_base for one tensor pair, read with positioned reads,
 * with the norms every report needs, accumulated in f64.
 */
import { FormatError } from '../errors.js';
import type { Checkpoint } from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import { type DeltaKernel, deltaKernel } from './delta-kernel.js';
import type { TensorPair } from './pairing.js';

export interface Delta {
  /** ΔW as a matrix: [shape[0], product of the rest] (a 1-D tensor is [1, n]). */
  delta: Matrix;
  /** ‖W_base‖_F, or null when no base was read. */
  baseNorm: number | null;
  /** ‖ΔW‖_F² (f64). */
  frobSquared: number;
  /** Bytes read from disk for this pair. */
  bytesRead: number;
}

/**
 * Where both sides of a pair are read and ΔW is formed, reused from tensor to tensor: fresh
 * memory costs a page fault per 4 kB, a large share of reading. Its arrays live in the SIMD
 * kernel's memory (delta-kernel.ts) when the largest tensor fits wasm32's 4 GiB, else in plain
 * arrays subtracted by a plain loop.
 */
export interface DeltaScratch {
  kernel: DeltaKernel | null;
  base: Float32Array;
  tuned: Float32Array;
}

/** Scratch big enough for every pair listed (its largest tensor). */
export function deltaScratch(pairs: TensorPair[]): DeltaScratch {
  const n = Math.max(0, ...pairs.map((p) => numel(p.tuned.shape)));
  const kernel = deltaKernel(n);
  return kernel
    ? { kernel, base: kernel.base, tuned: kernel.tuned }
    : { kernel: null, base: new Float32Array(n), tuned: new Float32Array(n) };
}

/**
 * Read both sides and subtract (the tuned side's array becomes ΔW, so the peak is two f32
 * copies of the tensor). ΔW is a view into the scratch's `tuned`, valid until its next read;
 * without `scratch`, one is made for this pair. bf16 pairs are read raw and widened, subtracted
 * and summed in one SIMD pass. Throws FormatError naming the tensor when ΔW has a NaN or an infinity.
 */
export async function readDelta(
  base: Checkpoint,
  tuned: Checkpoint,
  pair: TensorPair,
  scratch = deltaScratch([pair]),
): Promise<Delta> {
  return form(pair, scratch, await load(base, tuned, pair, scratch));
}

/**
 * Above this many values a pair is not read ahead: the second scratch it would need costs more
 * memory (8 bytes a value) than the overlap saves (a 32000×2048 embedding: 524 MB).
 */
const READ_AHEAD_MAX_VALUES = 2 ** 25;

/**
 * ΔW of every pair in order (as `readDelta`), reading the next pair's bytes on the I/O threads while
 * the caller works on the current one, so reads and products overlap instead of taking turns. Each
 * Delta is valid until the next one is asked for. Memory: the scratch of the largest pair, plus one
 * for the largest pair of at most READ_AHEAD_MAX_VALUES values (larger pairs are read in turn).
 * `scratch`, when given, is used as the first of the two: nothing else may read into it meanwhile.
 */
export async function* readDeltas(
  base: Checkpoint,
  tuned: Checkpoint,
  pairs: TensorPair[],
  scratch = deltaScratch(pairs),
): AsyncGenerator<[TensorPair, Delta]> {
  const primary = scratch;
  const small = pairs.filter((p) => numel(p.tuned.shape) <= READ_AHEAD_MAX_VALUES);
  const secondary = small.length > 1 ? deltaScratch(small) : null;
  const start = (index: number, scratch: DeltaScratch) => {
    const loaded = load(base, tuned, pairs[index]!, scratch);
    // Its failure is reported when that pair's turn comes, not as an unhandled rejection before.
    loaded.catch(() => {});
    return { index, scratch, loaded };
  };
  let ahead: ReturnType<typeof start> | null = null;
  try {
    for (let i = 0; i < pairs.length; i++) {
      const current: ReturnType<typeof start> = ahead?.index === i ? ahead : start(i, primary);
      ahead = null;
      const delta = form(pairs[i]!, current.scratch, await current.loaded);
      // The scratch this pair does not use is free: the caller is done with the pair before it.
      const next = pairs[i + 1];
      const free = current.scratch === primary ? secondary : primary;
      if (next && free && numel(next.tuned.shape) <= free.tuned.length) ahead = start(i + 1, free);
      yield [pairs[i]!, delta];
    }
  } finally {
    // Reads still in flight write into the scratch and use the files: let them end first.
    if (ahead) await ahead.loaded.catch(() => {});
  }
}

/** Both sides read into the scratch: bf16 raw where the kernel widens it, else as f32 arrays. */
type Loaded = 'bf16' | { w: Float32Array; d: Float32Array };

async function load(base: Checkpoint, tuned: Checkpoint, pair: TensorPair, scratch: DeltaScratch): Promise<Loaded> {
  const n = numel(pair.tuned.shape);
  if (n > scratch.tuned.length)
    throw new RangeError(`tensor "${pair.name}" has ${n} values but the scratch holds ${scratch.tuned.length}`);
  if (scratch.kernel && pair.base.dtype === 'BF16' && pair.tuned.dtype === 'BF16') {
    // Base raw at the start of its region; tuned raw in the upper half of its first 4n bytes, where the kernel widens it in place.
    await Promise.all([
      base.readRaw(pair.name, bytes(scratch.base, 0, 2 * n)),
      tuned.readRaw(pair.name, bytes(scratch.tuned, 2 * n, 2 * n)),
    ]);
    return 'bf16';
  }
  const [w, d] = await Promise.all([
    base.readFloat32(pair.name, scratch.base),
    tuned.readFloat32(pair.name, scratch.tuned),
  ]);
  return { w, d };
}

function form(pair: TensorPair, scratch: DeltaScratch, loaded: Loaded): Delta {
  const n = numel(pair.tuned.shape);
  const { kernel } = scratch;
  const sums =
    loaded === 'bf16' ? kernel!.subtractBf16(n) : kernel ? kernel.subtractF32(n) : subtractPlain(loaded.w, loaded.d);
  const d = scratch.tuned.subarray(0, n);
  if (!Number.isFinite(sums.deltaSq))
    throw new FormatError(`${pair.name}: ΔW has non-finite values (NaN or ±Inf) at element ${firstNonFinite(d)}`);
  return {
    delta: asMatrix(pair.tuned.shape, d),
    baseNorm: Math.sqrt(sums.baseSq),
    frobSquared: sums.deltaSq,
    bytesRead: pair.base.byteLength + pair.tuned.byteLength,
  };
}

/** d ← d − w with ‖w‖² and ‖d − w‖² of the f32 difference, in f64: the kernel's arithmetic in plain JS. */
export function subtractPlain(w: Float32Array, d: Float32Array): { baseSq: number; deltaSq: number } {
  let baseSq = 0;
  let deltaSq = 0;
  for (let i = 0; i < d.length; i++) {
    const b = w[i]!;
    const v = Math.fround(d[i]! - b);
    d[i] = v;
    baseSq += b * b;
    deltaSq += v * v;
  }
  return { baseSq, deltaSq };
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** `length` bytes of `array`'s memory from byte `offset` of the array. */
function bytes(array: Float32Array, offset: number, length: number): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset + offset, length);
}

/** Read a tensor that already holds ΔW (a `--delta` checkpoint). */
export async function readStoredDelta(ck: Checkpoint, name: string): Promise<Delta> {
  const info = ck.info(name);
  const d = await ck.readFloat32(name);
  let sq = 0;
  for (let i = 0; i < d.length; i++) sq += d[i]! * d[i]!;
  if (!Number.isFinite(sq))
    throw new FormatError(`${name}: ΔW has non-finite values (NaN or ±Inf) at element ${firstNonFinite(d)}`);
  return { delta: asMatrix(info.shape, d), baseNorm: null, frobSquared: sq, bytesRead: info.byteLength };
}

function asMatrix(shape: number[], data: Float32Array): Matrix {
  const rows = shape.length >= 2 ? shape[0]! : 1;
  return { rows, cols: rows === 0 ? 0 : data.length / rows, data };
}

function firstNonFinite(d: Float32Array): number {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return i;
  return -1;
}
