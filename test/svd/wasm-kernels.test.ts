/**
 * The WebAssembly kernels (their bytes against wasm-kernels.wat: test/wasm-modules.test.ts): the Householder kernel
 * computes what the TypeScript loops compute (τ, R and the reflectors, to rounding) on panels with
 * odd lengths (the lane loops' tails), more columns than rows, zero and repeated columns, and
 * entries whose squares overflow or underflow; the chase gives the TypeScript chase's bidiagonal to
 * the last bit, in one call or in several.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { upperBand } from '../../src/svd/bidiagonal-band.js';
import { bandToBidiagonalSteps, chaseSweepsPlain } from '../../src/svd/bidiagonal-from-band.js';
import { bidiagonalSingularValues } from '../../src/svd/bidiagonal-values.js';
import { householderQrColumnsPlainSteps } from '../../src/svd/qr.js';
import { createRng } from '../../src/svd/random.js';
import { bandChaseKernel, householderQrKernel, KERNEL_MAX_VALUES } from '../../src/svd/wasm-kernels.js';
import { finishNow } from '../../src/yield.js';

describe('householderQrKernel', () => {
  /** p columns of len entries times `unit`; `special` zeroes column 2 and repeats column 0 as column 3. */
  function panel(p: number, len: number, seed: number, unit: number, special: boolean): Float64Array {
    const rng = createRng(seed);
    const cols = Float64Array.from({ length: p * len }, () => rng.normal() * unit);
    if (special) {
      cols.fill(0, 2 * len, 3 * len);
      cols.copyWithin(3 * len, 0, len);
    }
    return cols;
  }

  for (const [p, len, unit, special] of [
    [8, 1001, 1, false],
    [16, 4096, 1, false],
    [7, 13, 1, true],
    [6, 4, 1, true],
    [9, 33, 1e200, false],
    [9, 33, 1e-200, true],
  ] as const) {
    it(`${p} columns of ${len}${unit === 1 ? '' : ` at ${unit}`}${special ? ', a zero and a repeated column' : ''}: the TypeScript loops' τ, R and reflectors`, () => {
      const a = panel(p, len, p * len, unit, special);
      const plain = a.slice();
      const wasm = a.slice();
      const tauPlain = finishNow(householderQrColumnsPlainSteps(plain, p, len));
      const tauWasm = householderQrKernel(wasm, p, len);
      assert.equal(tauWasm.length, Math.min(p, len));
      // Past the repeated column's rank drop its reflector is built from rounding noise and points
      // anywhere, in either: there only R's tiny diagonal is asked for, and the columns before it.
      const compared = special ? 3 : p;
      for (let c = 0; c < Math.min(compared, tauPlain.length); c++)
        assert.ok(Math.abs(tauWasm[c]! - tauPlain[c]!) < 1e-13, `τ[${c}]`);
      if (special) {
        assert.equal(tauWasm[2], 0);
        assert.ok(Math.abs(wasm[3 * len + 3]!) < 1e-13 * unit * Math.sqrt(len), `R₃₃ = ${wasm[3 * len + 3]}`);
      }
      // R's entries on the scale of A; the reflectors' entries (below the diagonal) on their own.
      let worstR = 0;
      let worstV = 0;
      for (let c = 0; c < compared; c++) {
        for (let i = 0; i < len; i++) {
          const d = Math.abs(wasm[c * len + i]! - plain[c * len + i]!);
          if (i <= c) worstR = Math.max(worstR, d / unit);
          else if (c < len && tauPlain[c] !== 0) worstV = Math.max(worstV, d);
        }
      }
      assert.ok(worstR < 1e-11, `R differs by ${worstR}`);
      assert.ok(worstV < 1e-10, `V differs by ${worstV}`);
    });
  }

  it('refuses a panel beyond its memory cap', () => {
    assert.throws(() => householderQrKernel(new Float64Array(0), 2, KERNEL_MAX_VALUES), RangeError);
  });
});

describe('bandChaseKernel', () => {
  /** A random upper band of order n and bandwidth b, entries times `unit`. */
  function band(n: number, b: number, seed: number, unit: number) {
    const rng = createRng(seed);
    const out = upperBand(n, b);
    for (let i = 0; i < n; i++)
      for (let j = i; j <= Math.min(n - 1, i + b); j++) out.data[i * out.width + j - i + 1] = rng.normal() * unit;
    return out;
  }

  for (const [n, b] of [
    [300, 16],
    [97, 5],
    [3, 2],
    [18, 17],
  ] as const) {
    it(`n = ${n}, b = ${b}: the TypeScript chase's bidiagonal to the last bit`, () => {
      const ref = band(n, b, n + b, 1);
      const viaKernel = { ...ref, data: ref.data.slice() };
      chaseSweepsPlain(ref, 0, Math.max(0, n - 2));
      const { d, e } = finishNow(bandToBidiagonalSteps(viaKernel));
      for (let i = 0; i < n; i++) assert.equal(d[i], ref.data[i * ref.width + 1], `d[${i}]`);
      for (let i = 0; i + 1 < n; i++) assert.equal(e[i], ref.data[i * ref.width + 2], `e[${i}]`);
    });
  }

  it('in several calls as in one; at 2^±664 (where the rotations scale past the squares) the same singular values', () => {
    const n = 120;
    const b = 8;
    const once = band(n, b, 7, 1);
    const split = { ...once, data: once.data.slice() };
    bandChaseKernel(once.data, n, b, once.width, 0, n - 2);
    for (const [from, to] of [
      [0, 1],
      [1, 40],
      [40, n - 2],
    ])
      bandChaseKernel(split.data, n, b, split.width, from!, to!);
    assert.deepEqual(split.data, once.data);
    const values = (x: typeof once, unit: number) => {
      const d = Float64Array.from({ length: n }, (_, i) => x.data[i * x.width + 1]! / unit);
      const e = Float64Array.from({ length: n - 1 }, (_, i) => x.data[i * x.width + 2]! / unit);
      return bidiagonalSingularValues(d, e);
    };
    const truth = values(once, 1);
    for (const unit of [2 ** 664, 2 ** -664]) {
      const scaled = band(n, b, 7, unit);
      bandChaseKernel(scaled.data, n, b, scaled.width, 0, n - 2);
      const got = values(scaled, unit);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i]! - truth[i]!) <= 1e-13 * truth[0]!, `σ[${i}] at ${unit}`);
    }
  });
});
