/**
 * The Householder QR of a panel (`householderQrColumns`'s arithmetic) in WebAssembly, on a copy of
 * the panel in the module's memory: two f64 lanes per instruction and no bounds checks make it
 * 2.3–3× the speed of the same loops in TypeScript, copies included (8 columns of 11008: 0.38
 * against 0.90 ms; 16 of 4096: 0.35 against 1.0 ms). These panels are the tall QR's leaves and the
 * band stage's column and row panels. The source is householder-kernel.wat beside this file; its
 * bytes ship in householder-kernel-bytes.ts (see there).
 */
import { HOUSEHOLDER_KERNEL_WASM } from './householder-kernel-bytes.js';

/** Most values of a panel the kernel takes: its memory grows to the largest panel and keeps it (16 MiB here). */
export const KERNEL_MAX_VALUES = 2 ** 21;

const PAGE = 65536;

/** The module's export: QR of p columns of len values at byte 0 of its memory, τ written at byte tauAt. */
type Qr = (p: number, len: number, tauAt: number) => void;

let kernel: { memory: WebAssembly.Memory; qr: Qr } | null = null;

/**
 * Householder QR of the p columns of `cols` (column c in cols[c·len …], p·len ≤ KERNEL_MAX_VALUES),
 * in place and in `householderQrColumns`' layout; returns the min(p, len) values τ.
 * @example const tau = householderQrKernel(cols, 8, 11008);
 */
export function householderQrKernel(cols: Float64Array, p: number, len: number): Float64Array {
  const values = p * len;
  if (values > KERNEL_MAX_VALUES)
    throw new RangeError(`householderQrKernel: ${p}×${len} values, at most ${KERNEL_MAX_VALUES}`);
  if (kernel === null) {
    const { exports } = new WebAssembly.Instance(
      new WebAssembly.Module(Buffer.from(HOUSEHOLDER_KERNEL_WASM, 'base64')),
    );
    kernel = { memory: exports['memory'] as WebAssembly.Memory, qr: exports['householderQr'] as Qr };
  }
  const bytes = (values + p) * 8;
  const { memory } = kernel;
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
  const heap = new Float64Array(memory.buffer, 0, values + p);
  heap.set(cols.subarray(0, values));
  kernel.qr(p, len, values * 8);
  cols.set(heap.subarray(0, values));
  return heap.slice(values, values + Math.min(p, len));
}
