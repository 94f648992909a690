import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DTYPE_SIZE,
  type DType,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  fromFloat32,
  toFloat32,
} from '../../src/io/dtypes.js';

/** Value of a bf16 pattern straight from the IEEE definition (8-bit exponent, 7-bit mantissa). */
function bf16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0xff) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -133;
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

/** Value of an f16 pattern (5-bit exponent, 10-bit mantissa). */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

const f32FromBits = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0]!;
const allPatterns = () => Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Nearest of two neighbouring patterns lo < hi (as values) to x, ties to the even pattern. */
function nearest(x: number, lo: number, hi: number, value: (h: number) => number): number {
  const dl = Math.abs(x - value(lo));
  const dh = Math.abs(value(hi) - x);
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return lo % 2 === 0 ? lo : hi;
}

test('bf16 decode matches the IEEE definition for all 65,536 patterns, and encode inverts it bit for bit', () => {
  const all = allPatterns();
  const dec = decodeBf16(all);
  for (let h = 0; h < 65536; h++) {
    const want = bf16Value(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(dec[h]), `pattern ${h.toString(16)}`);
    else assert.equal(dec[h], want, `pattern ${h.toString(16)}`);
  }
  const back = encodeBf16(dec);
  for (let h = 0; h < 65536; h++) assert.equal(back[h], h, `pattern ${h.toString(16)} did not survive`);
});

test('bf16 encode rounds to nearest even between every pair of neighbours, overflowing to ±Inf', () => {
  let checked = 0;
  for (let h = 0; h < 65536; h++) {
    const e = (h >>> 7) & 0xff;
    if (e === 0xff) continue;
    const hi = (h & 0x7fff) === 0x7f7f ? (h & 0x8000) | 0x7f80 : h + 1;
    const xs = [0x7fff, 0x8000, 0x8001, 0x0001, 0xffff].map((low) => f32FromBits((h << 16) | low));
    const got = encodeBf16(Float32Array.from(xs));
    xs.forEach((x, i) => {
      // IEEE rounding treats the overflow neighbour as 2^128.
      const value = (p: number) => (p === 0x7f80 ? 2 ** 128 : bf16Value(p));
      const want = nearest(Math.abs(x), h & 0x7fff, hi & 0x7fff, value) | (h & 0x8000);
      assert.equal(got[i], want, `x=${x} between ${h.toString(16)} and ${hi.toString(16)}`);
      checked++;
    });
  }
  assert.equal(checked, 5 * (65536 - 2 * 128));
  const special = encodeBf16(
    new Float32Array([
      Infinity,
      -Infinity,
      NaN,
      -NaN,
      3.4028234663852886e38,
      f32FromBits(0x7f800001),
      f32FromBits(0xff800001),
    ]),
  );
  assert.deepEqual([...special.slice(0, 2)], [0x7f80, 0xff80]);
  for (const i of [2, 3, 5, 6])
    assert.ok(Number.isNaN(bf16Value(special[i]!)), `NaN #${i} became ${special[i]!.toString(16)}`);
  assert.equal(special[4], 0x7f80, 'f32 max lies past the last bf16 midpoint');
  assert.equal(special[6]! & 0x8000, 0x8000, 'NaN keeps its sign');
});

test('f16 decode matches the IEEE definition for all 65,536 patterns, and encode inverts it', () => {
  const dec = decodeF16(allPatterns());
  const back = encodeF16(dec);
  for (let h = 0; h < 65536; h++) {
    const want = f16Value(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(dec[h]));
      assert.ok(Number.isNaN(f16Value(back[h]!)));
    } else {
      assert.equal(dec[h], want, `pattern ${h.toString(16)}`);
      assert.equal(back[h], h, `pattern ${h.toString(16)}`);
    }
  }
});

test('f16 encode rounds to nearest even at, just below and just above every midpoint, subnormals included', () => {
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  for (let h = 0; h < 0x7c00; h++) {
    const hi = h + 1; // 0x7bff + 1 = 0x7c00 is +Inf: overflow rounding
    const lo = f16Value(h);
    const mid = h === 0x7bff ? 65520 : (lo + f16Value(hi)) / 2;
    f[0] = mid;
    assert.equal(f[0], mid, 'midpoints are exact in f32');
    const xs = [mid, f32FromBits(bits[0]! - 1), f32FromBits(bits[0]! + 1)];
    const got = encodeF16(Float32Array.from(xs));
    const value = (p: number) => (p === 0x7c00 ? 65536 : f16Value(p)); // IEEE: overflow rounds as if to 2^16
    xs.forEach((x, i) =>
      assert.equal(got[i], nearest(x, h, hi, value), `x=${x} between ${h.toString(16)} and ${hi.toString(16)}`),
    );
  }
  const neg = encodeF16(new Float32Array([-1e-9, -70000, 2 ** -25, 2 ** -25 * (1 + 2 ** -20)]));
  assert.deepEqual([...neg], [0x8000, 0xfc00, 0x0000, 0x0001]);
});

test('toFloat32 widens every dtype from unaligned bytes, and fromFloat32 narrows float dtypes', () => {
  const values = [0, 1, -2, 100, -128, 127];
  const cases: [DType, { buffer: ArrayBufferLike; byteLength: number }][] = [
    ['F64', Float64Array.from(values)],
    ['F32', Float32Array.from(values)],
    ['I64', BigInt64Array.from(values.map(BigInt))],
    ['I32', Int32Array.from(values)],
    ['I16', Int16Array.from(values)],
    ['I8', Int8Array.from(values)],
  ];
  for (const [dtype, typed] of cases) {
    const bytes = new Uint8Array(typed.byteLength + 1);
    bytes.set(new Uint8Array(typed.buffer), 1);
    const got = toFloat32(dtype, bytes.subarray(1));
    assert.deepEqual([...got], values, dtype);
    assert.equal(DTYPE_SIZE[dtype] * values.length, typed.byteLength);
  }
  assert.deepEqual([...toFloat32('U8', new Uint8Array([0, 7, 255]))], [0, 7, 255]);
  assert.deepEqual([...toFloat32('BOOL', new Uint8Array([0, 1]))], [0, 1]);
  const x = new Float32Array([1.5, -0.3, 65504, 1e-6]);
  for (const dtype of ['F64', 'F32', 'F16', 'BF16'] as const) {
    const back = toFloat32(dtype, fromFloat32(dtype, x));
    const tol = { F64: 0, F32: 0, F16: 2 ** -11, BF16: 2 ** -8 }[dtype];
    back.forEach((v, i) =>
      assert.ok(
        Math.abs(v - x[i]!) <= tol * Math.abs(x[i]!) + (dtype === 'F16' ? 2 ** -25 : 0),
        `${dtype} ${x[i]} → ${v}`,
      ),
    );
  }
  assert.throws(() => fromFloat32('I32', x), /cannot narrow f32 values to I32/);
  assert.throws(() => toFloat32('F32', new Uint8Array(3)), /3 bytes is not a whole number of 4-byte items/);
});
