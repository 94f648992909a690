/**
 * The plain-arithmetic kernels of the complete route that run in WebAssembly, on copies in the
 * module's memory: no bounds checks, and two f64 lanes per instruction where the loop allows.
 * - `householderQrKernel`, the Householder QR of a panel (`householderQrColumns`' arithmetic, to
 *   rounding): 2.3–3× the speed of the same loops in TypeScript, copies included (8 columns of
 *   11008: 0.38 against 0.90 ms; 16 of 4096: 0.35 against 1.0 ms). These panels are the tall QR's
 *   leaves and the band stage's column and row panels.
 * - `bandChaseKernel`, the bulge chase from band to bidiagonal (`chaseSweepsPlain`'s arithmetic to
 *   the last bit): 4096² at bandwidth 16 in 0.50 against 0.97 s, 2048² 123 against 162 ms.
 * The source is wasm-kernels.wat beside this file; its bytes ship in wasm-kernels-bytes.ts (see there).
 */
import { WASM_KERNELS } from './wasm-kernels-bytes.js';

/** Most f64 values a kernel takes: the memory grows to the largest call's and keeps it (16 MiB here). */
export const KERNEL_MAX_VALUES = 2 ** 21;

const PAGE = 65536;

/** The module's exports; each works on its data at byte 0 of the memory. */
interface Kernels {
  memory: WebAssembly.Memory;
  householderQr: (p: number, len: number, tauAt: number) => void;
  chase: (n: number, b: number, width: number, from: number, to: number) => void;
}

let kernels: Kernels | null = null;

/** The module's memory as `values` f64 from byte 0, grown as needed (instantiating the module on first use). */
function heapOf(values: number, fn: string): { k: Kernels; heap: Float64Array } {
  if (values > KERNEL_MAX_VALUES) throw new RangeError(`${fn}: ${values} values, at most ${KERNEL_MAX_VALUES}`);
  if (kernels === null) {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(WASM_KERNELS, 'base64')));
    kernels = exports as unknown as Kernels;
  }
  const { memory } = kernels;
  const bytes = values * 8;
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
  return { k: kernels, heap: new Float64Array(memory.buffer, 0, values) };
}

/**
 * Householder QR of the p columns of `cols` (column c in cols[c·pitch + start …], len entries,
 * p·len + p ≤ KERNEL_MAX_VALUES), in place and in `householderQrColumns`' layout; returns the
 * min(p, len) values τ. Entries outside the columns' len are not touched.
 * @example const tau = householderQrKernel(cols, 8, 11008);
 */
export function householderQrKernel(cols: Float64Array, p: number, len: number, pitch = len, start = 0): Float64Array {
  const values = p * len;
  const { k, heap } = heapOf(values + p, 'householderQrKernel');
  for (let c = 0; c < p; c++) heap.set(cols.subarray(c * pitch + start, c * pitch + start + len), c * len);
  k.householderQr(p, len, values * 8);
  for (let c = 0; c < p; c++) cols.set(heap.subarray(c * len, (c + 1) * len), c * pitch + start);
  return heap.slice(values, values + Math.min(p, len));
}

/**
 * Sweeps from … to − 1 of the bulge chase from band to bidiagonal (`chaseSweepsPlain`'s
 * arithmetic, to the last bit) on `data`, an upper band in `bidiagonal-band.ts`'s storage (n rows
 * of `width` values, bandwidth b, n·width ≤ KERNEL_MAX_VALUES): copied in, chased and copied back,
 * so nothing is kept in the module between calls and the caller may let the event loop turn.
 * @example bandChaseKernel(band.data, n, b, band.width, 0, n - 2);
 */
export function bandChaseKernel(
  data: Float64Array,
  n: number,
  b: number,
  width: number,
  from: number,
  to: number,
): void {
  const values = n * width;
  const { k, heap } = heapOf(values, 'bandChaseKernel');
  heap.set(data.subarray(0, values));
  k.chase(n, b, width, from, to);
  data.set(heap);
}
