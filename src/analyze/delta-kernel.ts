/**
 * ΔW = tuned − base with ‖base‖_F² and ‖ΔW‖_F², in one SIMD pass of WebAssembly over a memory
 * the tensors are read into. It replaces three passes of plain JS over a tensor (widen each side
 * from bf16, then subtract and sum): on a TinyLlama-sized pair those took ≈ 11 s of the 30 s of
 * an extraction. The module's source is delta-kernel.wat beside this file; its bytes ship in
 * delta-kernel-bytes.ts (see there).
 *
 * Sums are accumulated in f64 from the exact f64 squares of f32 values, as the plain loop does.
 */
import { DELTA_KERNEL_WASM } from './delta-kernel-bytes.js';

/** Bytes at the start of the memory: the two sums written by the kernels (f64 each). */
const HEADER = 64;
const PAGE = 65536;
/** wasm32 addresses: 4 GiB of memory at most. */
const MAX_BYTES = 2 ** 32;

let compiled: WebAssembly.Module | undefined;

/**
 * A memory holding two regions of `capacity` f32 values each (base and tuned), with the kernels
 * bound to it. `base` and `tuned` view the regions; ΔW is written over `tuned`. The kernels trust
 * n ≤ base.length: a larger n would run one region into the other.
 */
export interface DeltaKernel {
  base: Float32Array;
  tuned: Float32Array;
  /** base bf16 in base[0, 2n) bytes, tuned bf16 in the upper half of tuned's first 4n bytes → ΔW in tuned. */
  subtractBf16(n: number): { baseSq: number; deltaSq: number };
  /** base f32 and tuned f32 in the regions' first n values → ΔW in tuned. */
  subtractF32(n: number): { baseSq: number; deltaSq: number };
}

/** A kernel for tensors of up to `capacity` values, or null where they do not fit wasm32's 4 GiB. */
export function deltaKernel(capacity: number): DeltaKernel | null {
  const region = Math.ceil((4 * capacity) / 16) * 16;
  const bytes = HEADER + 2 * region;
  if (bytes > MAX_BYTES) return null;
  compiled ??= new WebAssembly.Module(Buffer.from(DELTA_KERNEL_WASM, 'base64'));
  const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
  const exports = new WebAssembly.Instance(compiled, { k: { memory } }).exports as {
    delta_bf16: (base: number, tuned: number, out: number, n: number) => void;
    delta_f32: (base: number, tuned: number, out: number, n: number) => void;
  };
  const baseAt = HEADER;
  const tunedAt = HEADER + region;
  const sums = new Float64Array(memory.buffer, 0, 2);
  const result = () => ({ baseSq: sums[0]!, deltaSq: sums[1]! });
  return {
    base: new Float32Array(memory.buffer, baseAt, capacity),
    tuned: new Float32Array(memory.buffer, tunedAt, capacity),
    subtractBf16(n) {
      exports.delta_bf16(baseAt, tunedAt + 2 * n, tunedAt, n);
      return result();
    },
    subtractF32(n) {
      exports.delta_f32(baseAt, tunedAt, tunedAt, n);
      return result();
    },
  };
}
