/**
 * The module delta-kernel.ts runs (the bytes delta-kernel-bytes.ts ships, checked against
 * delta-kernel.wat by test/wasm-modules.test.ts) computes ΔW and both sums as plain arithmetic does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DELTA_KERNEL_WASM } from '../../src/analyze/delta-kernel-bytes.js';

describe('the ΔW kernel module', () => {
  it('computes ΔW, ‖base‖² and ‖ΔW‖² (f32 and bf16 inputs, vector loop and tail)', async () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const k = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(DELTA_KERNEL_WASM, 'base64')), {
      k: { memory },
    }).exports as Record<string, (...a: number[]) => void>;
    const n = 19; // two vector steps of 8 and a tail of 3 (bf16); four of 4 and 3 (f32)
    const base = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i + 1) * 3));
    const tuned = Float32Array.from(base, (x, i) => Math.fround(x + Math.cos(i) / 4));
    const f32 = new Float32Array(memory.buffer);
    const sums = new Float64Array(memory.buffer, 0, 2);
    const expectSums = (b: Float32Array, t: Float32Array, out: Float32Array) => {
      let sb = 0;
      let sd = 0;
      for (let i = 0; i < n; i++) {
        const d = Math.fround(t[i]! - b[i]!);
        assert.equal(out[i], d, `ΔW[${i}]`);
        sb += b[i]! * b[i]!;
        sd += d * d;
      }
      assert.ok(Math.abs(sums[0]! - sb) <= 1e-15 * sb, `‖base‖² ${sums[0]} vs ${sb}`);
      assert.ok(Math.abs(sums[1]! - sd) <= 1e-15 * sd, `‖ΔW‖² ${sums[1]} vs ${sd}`);
    };
    // f32: base at 64, tuned at 256, ΔW over tuned.
    f32.set(base, 16);
    f32.set(tuned, 64);
    k['delta_f32']!(64, 256, 256, n);
    expectSums(base, tuned, f32.subarray(64, 64 + n));
    // bf16: truncate both to bf16 (their high 16 bits), tuned in the upper half of out.
    const bf = (x: Float32Array) =>
      Uint16Array.from(new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + 4 * n)), (u) => u >>> 16);
    const widen = (h: Uint16Array) => new Float32Array(Uint32Array.from(h, (u) => u << 16).buffer);
    const [bb, tb] = [bf(base), bf(tuned)];
    new Uint16Array(memory.buffer, 64, n).set(bb);
    new Uint16Array(memory.buffer, 1024 + 2 * n, n).set(tb);
    k['delta_bf16']!(64, 1024 + 2 * n, 1024, n);
    expectSums(widen(bb), widen(tb), new Float32Array(memory.buffer, 1024, n));
  });
});
