/**
 * The safetensors dtypes this tool reads and writes, and the codecs between them and f32.
 * Byte order is little-endian, as the format prescribes; every platform Node runs on is
 * little-endian, so typed-array views read the bytes directly.
 */
import { UsageError } from '../errors.js';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element, keyed by the dtype as the format spells it. */
export const DTYPE_SIZE: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Whether `name` is one of the dtypes above (a type guard for header parsing). */
export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && Object.hasOwn(DTYPE_SIZE, name);
}

/** F64, F32, F16 and BF16: the dtypes that hold weights and that `fromFloat32` can narrow to. */
export function isFloatDType(d: DType): boolean {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

/**
 * Widen bf16 bit patterns to f32: exact (bf16 is the top half of an f32), NaN payloads kept.
 * O(n). Writes into `out` when given (length ≥ src.length), else a new array.
 * @example decodeBf16(new Uint16Array([0x3f80])) // Float32Array [1]
 */
export function decodeBf16(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const u32 = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) u32[i] = src[i]! << 16;
  return out;
}

/**
 * Narrow f32 to bf16 bit patterns, rounding to nearest with ties to even (values past the
 * largest bf16 become ±Inf, as IEEE rounding prescribes). ±Inf stay ±Inf; a NaN stays a NaN
 * with its sign and the top of its payload (quiet bit forced when the kept payload would be
 * empty, which would otherwise turn it into Inf). O(n).
 * @example encodeBf16(new Float32Array([1 + 2 ** -8])) // Uint16Array [0x3f80]: the tie goes to even
 */
export function encodeBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const u32 = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u32[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x007fffff) !== 0) {
      const h = x >>> 16;
      out[i] = (h & 0x7f) === 0 ? h | 0x40 : h;
    } else {
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** f16 bit pattern → f32 value, for all 65,536 patterns; built on first use (256 kB). */
let f16Table: Float32Array | undefined;

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else table[h] = (sign ? -1 : 1) * mant * 2 ** -24;
  }
  return table;
}

/**
 * Widen f16 bit patterns to f32 (exact, subnormals and NaN payloads included) by table lookup.
 * O(n). Writes into `out` when given.
 */
export function decodeF16(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const table = (f16Table ??= buildF16Table());
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

/**
 * Narrow f32 to f16 bit patterns: round to nearest, ties to even, through the subnormal
 * range; overflow becomes ±Inf; NaN stays NaN. O(n).
 */
export function encodeF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const u32 = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(u32[i]!);
  return out;
}

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const payload = mant >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Values under half the smallest subnormal (2⁻²⁵) round to zero.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is the correct rounding (up to Inf).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** A typed-array view of `bytes` when aligned, else over an aligned copy (never over `bytes.buffer` alone). */
function view<T>(bytes: Uint8Array, itemSize: number, make: (buf: ArrayBufferLike, off: number, n: number) => T): T {
  const n = bytes.byteLength / itemSize;
  if (bytes.byteOffset % itemSize === 0) return make(bytes.buffer, bytes.byteOffset, n);
  return make(bytes.slice().buffer, 0, n);
}

/**
 * Widen any dtype's little-endian bytes to a new f32 array (always a copy; I64 values past
 * 2²⁴ lose precision as f32 must). O(n). Throws a RangeError when the byte length is not a
 * multiple of the item size.
 * @example toFloat32('BF16', new Uint8Array([0x80, 0x3f])) // Float32Array [1]
 */
export function toFloat32(dtype: DType, bytes: Uint8Array): Float32Array {
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0)
    throw new RangeError(`${dtype}: ${bytes.byteLength} bytes is not a whole number of ${size}-byte items`);
  const n = bytes.byteLength / size;
  switch (dtype) {
    case 'F32':
      return Float32Array.from(view(bytes, 4, (b, o, k) => new Float32Array(b, o, k)));
    case 'BF16':
      return decodeBf16(view(bytes, 2, (b, o, k) => new Uint16Array(b, o, k)));
    case 'F16':
      return decodeF16(view(bytes, 2, (b, o, k) => new Uint16Array(b, o, k)));
    case 'F64':
      return Float32Array.from(view(bytes, 8, (b, o, k) => new Float64Array(b, o, k)));
    case 'I64': {
      const src = view(bytes, 8, (b, o, k) => new BigInt64Array(b, o, k));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]!);
      return out;
    }
    case 'I32':
      return Float32Array.from(view(bytes, 4, (b, o, k) => new Int32Array(b, o, k)));
    case 'I16':
      return Float32Array.from(view(bytes, 2, (b, o, k) => new Int16Array(b, o, k)));
    case 'I8':
      return Float32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(bytes);
  }
}

/**
 * Narrow f32 values to a float dtype's little-endian bytes (a new buffer; for F32 a view
 * of `data`'s bytes, no copy). BF16 and F16 round to nearest even. O(n).
 * Integer dtypes are refused (UsageError): weights are never narrowed to them.
 */
export function fromFloat32(dtype: DType, data: Float32Array): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    case 'BF16': {
      const out = encodeBf16(data);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
    case 'F16': {
      const out = encodeF16(data);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
    case 'F64': {
      const out = Float64Array.from(data);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new UsageError(`cannot narrow f32 values to ${dtype}: only F64, F32, F16 and BF16 hold weights`);
  }
}
