/**
 * ΔW = W_tuned − W_base for one tensor pair, read with positioned reads,
 * with the norms every report needs, accumulated in f64.
 */
import { FormatError } from '../errors.js';
import type { Checkpoint } from '../io/index.js';
import type { Matrix } from '../svd/index.js';
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

/** Two f32 arrays reused from tensor to tensor: fresh memory costs a page fault per 4 kB, a large share of reading. */
export interface DeltaScratch {
  base: Float32Array;
  tuned: Float32Array;
}

/** Scratch arrays big enough for every pair listed (its largest tensor). */
export function deltaScratch(pairs: TensorPair[]): DeltaScratch {
  const n = Math.max(0, ...pairs.map((p) => p.tuned.shape.reduce((a, b) => a * b, 1)));
  return { base: new Float32Array(n), tuned: new Float32Array(n) };
}

/**
 * Read both sides and subtract in place (the tuned buffer becomes ΔW, so the peak is
 * two f32 copies of the tensor). With `scratch`, ΔW is a view into `scratch.tuned`, valid
 * until the next read into it. Throws FormatError naming the tensor when ΔW has a NaN or an infinity.
 */
export async function readDelta(base: Checkpoint, tuned: Checkpoint, pair: TensorPair, scratch?: DeltaScratch): Promise<Delta> {
  const [w, d] = await Promise.all([base.readFloat32(pair.name, scratch?.base), tuned.readFloat32(pair.name, scratch?.tuned)]);
  let baseSq = 0;
  let deltaSq = 0;
  for (let i = 0; i < d.length; i++) {
    const b = w[i]!;
    const v = d[i]! - b;
    d[i] = v;
    baseSq += b * b;
    deltaSq += v * v;
  }
  if (!Number.isFinite(deltaSq)) throw new FormatError(`${pair.name}: ΔW has non-finite values (NaN or ±Inf) at element ${firstNonFinite(d)}`);
  return { delta: asMatrix(pair.tuned.shape, d), baseNorm: Math.sqrt(baseSq), frobSquared: deltaSq, bytesRead: pair.base.byteLength + pair.tuned.byteLength };
}

/** Read a tensor that already holds ΔW (a `--delta` checkpoint). */
export async function readStoredDelta(ck: Checkpoint, name: string): Promise<Delta> {
  const info = ck.info(name);
  const d = await ck.readFloat32(name);
  let sq = 0;
  for (let i = 0; i < d.length; i++) sq += d[i]! * d[i]!;
  if (!Number.isFinite(sq)) throw new FormatError(`${name}: ΔW has non-finite values (NaN or ±Inf) at element ${firstNonFinite(d)}`);
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
