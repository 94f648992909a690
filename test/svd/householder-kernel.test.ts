/**
 * The WebAssembly Householder kernel: its shipped bytes are householder-kernel.wat's, and it
 * computes what the TypeScript loops compute (τ, R and the reflectors, to rounding) on panels with
 * odd lengths (the lane loops' tails), more columns than rows, zero and repeated columns, and
 * entries whose squares overflow or underflow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { householderQrKernel, KERNEL_MAX_VALUES } from '../../src/svd/householder-kernel.js';
import { HOUSEHOLDER_KERNEL_WASM } from '../../src/svd/householder-kernel-bytes.js';
import { householderQrColumnsPlainSteps } from '../../src/svd/qr.js';
import { createRng } from '../../src/svd/random.js';
import { finishNow } from '../../src/yield.js';
import { assembleHouseholderKernel, bytesModuleText } from './householder-kernel-wat.js';

describe('householder-kernel.wat', () => {
  it('assembles to the bytes householder-kernel-bytes.ts ships (else: npm run wasm)', async () => {
    const assembled = await assembleHouseholderKernel();
    assert.equal(Buffer.from(assembled).toString('base64'), HOUSEHOLDER_KERNEL_WASM);
    assert.ok(bytesModuleText(assembled).includes(HOUSEHOLDER_KERNEL_WASM));
  });
});

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
