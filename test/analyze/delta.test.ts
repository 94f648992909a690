import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { deltaKernel } from '../../src/analyze/delta-kernel.js';
import { deltaScratch, pairTensors, readDelta, subtractPlain, type TensorPair } from '../../src/analyze/index.js';
import { FormatError } from '../../src/errors.js';
import { type DType, decodeBf16, encodeBf16, openCheckpoint, writeCheckpoint } from '../../src/io/index.js';
import { createRng, fillNormal } from '../../src/svd/random.js';

function normals(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  fillNormal(out, createRng(seed), scale);
  return out;
}

/** ΔW and both sums from the textbook definition, in f64 over the f32 difference. */
function reference(w: Float32Array, t: Float32Array): { d: Float32Array; baseSq: number; deltaSq: number } {
  const d = new Float32Array(t.length);
  let baseSq = 0;
  let deltaSq = 0;
  for (let i = 0; i < t.length; i++) {
    d[i] = t[i]! - w[i]!;
    baseSq += w[i]! * w[i]!;
    deltaSq += d[i]! * d[i]!;
  }
  return { d, baseSq, deltaSq };
}

function assertClose(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected) + 1e-300, `${what}: ${actual} vs ${expected}`);
}

describe('delta kernel (SIMD)', () => {
  // Every tail length past the 8- and 4-value steps, and a longer run.
  const lengths = [...Array.from({ length: 34 }, (_, i) => i), 1003];

  it('bf16: widens, subtracts and sums exactly as the plain loop, with tuned in the upper half of the output', () => {
    for (const n of lengths) {
      const k = deltaKernel(1024)!;
      const w = encodeBf16(normals(n, n));
      const t = encodeBf16(normals(n, n + 1000));
      new Uint16Array(k.base.buffer, k.base.byteOffset, n).set(w);
      new Uint16Array(k.tuned.buffer, k.tuned.byteOffset + 2 * n, n).set(t);
      const got = k.subtractBf16(n);
      const want = reference(decodeBf16(w), decodeBf16(t));
      assert.deepEqual(k.tuned.subarray(0, n), want.d, `ΔW, n = ${n}`);
      assertClose(got.baseSq, want.baseSq, 1e-13, `‖W‖², n = ${n}`);
      assertClose(got.deltaSq, want.deltaSq, 1e-13, `‖ΔW‖², n = ${n}`);
    }
  });

  it('f32: subtracts in place and sums as the plain loop', () => {
    for (const n of lengths) {
      const k = deltaKernel(1024)!;
      const w = normals(n, n);
      const t = normals(n, n + 1000);
      k.base.set(w);
      k.tuned.set(t);
      const got = k.subtractF32(n);
      const plain = t.slice();
      const want = subtractPlain(w, plain);
      assert.deepEqual(k.tuned.subarray(0, n), plain, `ΔW, n = ${n}`);
      assert.deepEqual(plain, reference(w, t).d);
      assertClose(got.baseSq, want.baseSq, 1e-13, `‖W‖², n = ${n}`);
      assertClose(got.deltaSq, want.deltaSq, 1e-13, `‖ΔW‖², n = ${n}`);
    }
  });

  it('propagates a NaN or an infinity into the ΔW sum', () => {
    const k = deltaKernel(64)!;
    k.base.fill(1, 0, 20);
    k.tuned.fill(2, 0, 20);
    k.tuned[13] = Number.POSITIVE_INFINITY;
    assert.ok(!Number.isFinite(k.subtractF32(20).deltaSq));
    k.base.fill(1, 0, 20);
    k.tuned.fill(2, 0, 20);
    k.tuned[19] = Number.NaN; // in the scalar tail
    assert.ok(Number.isNaN(k.subtractF32(20).deltaSq));
  });

  it('declines a capacity past wasm32 memory, so callers take the plain loop', () => {
    assert.equal(deltaKernel(2 ** 30), null);
  });
});

describe('readDelta', () => {
  let dir = '';
  after(() => rm(dir, { recursive: true, force: true }));

  /** A base/tuned pair of one tensor per dtype combination, shapes chosen to leave tails. */
  async function writePair(
    combos: [string, DType, DType, number[]][],
  ): Promise<Map<string, { w: Float32Array; t: Float32Array }>> {
    dir = await mkdtemp(join(tmpdir(), 'deltarank-delta-'));
    const truth = new Map<string, { w: Float32Array; t: Float32Array }>();
    combos.forEach(([name, , , shape], i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const w = normals(n, 10 + i, 0.05);
      const t = w.map((x, j) => x + 1e-3 * Math.sin(j + i));
      truth.set(name, { w, t });
    });
    const narrow = (x: Float32Array, dtype: DType) =>
      dtype === 'BF16' ? decodeBf16(encodeBf16(x)) : dtype === 'F16' ? Float32Array.from(x, (v) => Math.fround(v)) : x;
    await writeCheckpoint(
      join(dir, 'base'),
      combos.map(([name, dtype, , shape]) => ({ name, dtype, shape })),
      (spec) => truth.get(spec.name)!.w,
    );
    await writeCheckpoint(
      join(dir, 'tuned'),
      combos.map(([name, , dtype, shape]) => ({ name, dtype, shape })),
      (spec) => truth.get(spec.name)!.t,
    );
    for (const [name, bd, td] of combos) {
      const e = truth.get(name)!;
      truth.set(name, { w: narrow(e.w, bd), t: narrow(e.t, td) });
    }
    return truth;
  }

  it('matches the definition for bf16, f32, f16 and mixed pairs, reusing one scratch from a large tensor to smaller ones', async () => {
    const combos: [string, DType, DType, number[]][] = [
      ['big.weight', 'BF16', 'BF16', [37, 29]],
      ['bf16.weight', 'BF16', 'BF16', [5, 3]],
      ['f32.weight', 'F32', 'F32', [11, 7]],
      ['f16.weight', 'F16', 'F16', [9]],
      ['mixed.weight', 'F32', 'BF16', [6, 5]],
    ];
    await writePair(combos);
    const base = await openCheckpoint(join(dir, 'base'));
    const tuned = await openCheckpoint(join(dir, 'tuned'));
    try {
      const { matrices, others } = pairTensors(base.tensors, tuned.tensors);
      const pairs: TensorPair[] = [...matrices, ...others];
      const scratch = deltaScratch(pairs);
      assert.ok(scratch.kernel, 'small tensors use the SIMD kernel');
      for (const name of combos.map((c) => c[0])) {
        const pair = pairs.find((p) => p.name === name)!;
        // Independent truth: each side read whole, the f16 side decoded by io's reader like any other.
        const want = reference(await base.readFloat32(name), await tuned.readFloat32(name));
        for (const s of [scratch, undefined]) {
          const got = await readDelta(base, tuned, pair, s);
          assert.deepEqual(got.delta.data, want.d, name);
          assertClose(got.frobSquared, want.deltaSq, 1e-12, `${name} ‖ΔW‖²`);
          assertClose(got.baseNorm!, Math.sqrt(want.baseSq), 1e-12, `${name} ‖W‖`);
          assert.equal(got.delta.rows, pair.tuned.shape.length >= 2 ? pair.tuned.shape[0] : 1);
        }
      }
      // A scratch sized for a smaller pair is refused before anything is read into it.
      const big = pairs.find((p) => p.name === 'big.weight')!;
      await assert.rejects(
        readDelta(base, tuned, big, deltaScratch([pairs.find((p) => p.name === 'bf16.weight')!])),
        RangeError,
      );
    } finally {
      await base.close();
      await tuned.close();
    }
  });

  it('names the tensor and the first bad element when ΔW is not finite', async () => {
    dir = await mkdtemp(join(tmpdir(), 'deltarank-delta-'));
    const w = new Float32Array(24).fill(0.5);
    const t = w.slice();
    t[17] = Number.NaN;
    await writeCheckpoint(join(dir, 'base'), [{ name: 'x.weight', dtype: 'BF16', shape: [4, 6] }], () => w);
    await writeCheckpoint(join(dir, 'tuned'), [{ name: 'x.weight', dtype: 'BF16', shape: [4, 6] }], () => t);
    const base = await openCheckpoint(join(dir, 'base'));
    const tuned = await openCheckpoint(join(dir, 'tuned'));
    try {
      const pair = pairTensors(base.tensors, tuned.tensors).matrices[0]!;
      await assert.rejects(
        readDelta(base, tuned, pair),
        (err: unknown) => err instanceof FormatError && /x\.weight.*element 17/.test(err.message),
      );
    } finally {
      await base.close();
      await tuned.close();
    }
  });
});
