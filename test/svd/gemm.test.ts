import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ShapeError } from '../../src/errors.js';
import {
  gemmEngine,
  matmul,
  matmul64,
  matmulPlain,
  releaseGemm,
  residualSquares,
  subtractProduct64,
} from '../../src/svd/gemm.js';
import type { Matrix, Matrix64 } from '../../src/svd/matrix.js';
import { productModel } from '../../src/svd/onnx-model.js';
import { gaussianMatrix } from '../../src/svd/random.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** op(A)·op(B) by the textbook triple loop in f64. */
function reference(a: Matrix | Matrix64, b: Matrix | Matrix64, transA: boolean, transB: boolean): Float64Array {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s +=
          (transA ? a.data[p * a.cols + i]! : a.data[i * a.cols + p]!) *
          (transB ? b.data[j * b.cols + p]! : b.data[p * b.cols + j]!);
      out[i * n + j] = s;
    }
  }
  return out;
}

/** max |x − ref| relative to √k·max|A|·max|B| (the scale of f32 rounding in a k-term sum). */
function relativeError(x: ArrayLike<number>, ref: Float64Array, k: number): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    worst = Math.max(worst, Math.abs(x[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return worst / (scale * Math.sqrt(k) || 1);
}

function operands(m: number, k: number, n: number, transA: boolean, transB: boolean, seed: number): [Matrix, Matrix] {
  const a = transA ? gaussianMatrix(k, m, seed) : gaussianMatrix(m, k, seed);
  const b = transB ? gaussianMatrix(n, k, seed + 1) : gaussianMatrix(k, n, seed + 1);
  return [a, b];
}

function runChild(
  code: string,
  env: Record<string, string> = {},
): { stdout: string; ms: number; status: number | null } {
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { stdout: r.stdout, ms: performance.now() - t, status: r.status };
}

describe('residualSquares', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const [m, k, n] of [
        [3, 4, 5],
        [70, 9, 80],
        [301, 17, 129],
      ] as const) {
        it(`‖C − ${transA ? 'Aᵀ' : 'A'}·${transB ? 'Bᵀ' : 'B'}‖² ${m}×${k}·${k}×${n} matches the f64 definition`, async () => {
          const [a, b] = operands(m, k, n, transA, transB, m + k + n);
          const ref = reference(a, b, transA, transB);
          // C = the product plus a small known difference, so the residual is far below ‖C‖ as an extraction's is.
          const noise = gaussianMatrix(m, n, 99).data;
          const c = { rows: m, cols: n, data: Float32Array.from(ref, (x, i) => x + 1e-2 * noise[i]!) };
          let want = 0;
          for (let i = 0; i < ref.length; i++) want += (c.data[i]! - ref[i]!) ** 2;
          const got = await residualSquares(c, a, b, { transA, transB });
          // f32 products of k terms each carry ≈ √k·2⁻²⁴·|A||B| of rounding, here 1e-5 of the 1e-2 difference.
          assert.ok(Math.abs(got - want) <= 1e-3 * want, `${got} vs ${want}`);
        });
      }
    }
  }

  it("rejects a C whose shape is not the product's", async () => {
    const [a, b] = operands(20, 30, 40, false, false, 1);
    await assert.rejects(residualSquares(gaussianMatrix(20, 41, 2), a, b), ShapeError);
  });
});

const f64 = (m: Matrix): Matrix64 => ({ rows: m.rows, cols: m.cols, data: Float64Array.from(m.data) });

// Outputs over 8 MB run in row blocks of A, the last one short: every block must land in its place.
describe('products whose output runs in row blocks', () => {
  it('f32 A·B and A·Bᵀ of 1500×3 by 3×1500 (9 MB out, blocks of 1398 rows) match the triple loop', async () => {
    for (const transB of [false, true]) {
      const [a, b] = operands(1500, 3, 1500, false, transB, 11);
      const c = await matmul(a, b, { transB });
      assert.ok(relativeError(c.data, reference(a, b, false, transB), 3) < 1e-6);
    }
  });

  it('f64 A·B of 1100×5 by 5×1000 (8.8 MB out) matches the triple loop, new or into a given array', async () => {
    const [a32, b32] = operands(1100, 5, 1000, false, false, 12);
    const [a, b] = [f64(a32), f64(b32)];
    const ref = reference(a, b, false, false);
    assert.ok(relativeError((await matmul64(a, b)).data, ref, 1) < 1e-15);
    const into = new Float64Array(1100 * 1000 + 3).fill(7);
    const c = await matmul64(a, b, { into });
    assert.equal(c.data.buffer, into.buffer);
    assert.ok(relativeError(c.data, ref, 1) < 1e-15);
    assert.deepEqual(Array.from(into.subarray(1100 * 1000)), [7, 7, 7]);
  });

  it('f64 C − A·Bᵀ of 1100×1000 matches C minus the triple loop, new or into a given array', async () => {
    const [a32, b32] = operands(1100, 5, 1000, false, true, 13);
    const c = f64(gaussianMatrix(1100, 1000, 14));
    const ref = reference(f64(a32), f64(b32), false, true).map((v, i) => c.data[i]! - v);
    const out = await subtractProduct64(c, f64(a32), f64(b32), { transB: true });
    assert.ok(relativeError(out.data, ref, 1) < 1e-15);
    const into = new Float64Array(1100 * 1000 + 3).fill(7);
    const given = await subtractProduct64(c, f64(a32), f64(b32), { transB: true, into });
    assert.equal(given.data.buffer, into.buffer);
    assert.ok(relativeError(given.data, ref, 1) < 1e-15);
    assert.deepEqual(Array.from(into.subarray(1100 * 1000)), [7, 7, 7]);
    // A product small enough for the plain loop writes into the given array too, and a short one is refused.
    const [c2, a2, b2] = [gaussianMatrix(3, 4, 15), gaussianMatrix(3, 2, 16), gaussianMatrix(2, 4, 17)].map(f64);
    const ref2 = reference(a2!, b2!, false, false).map((v, i) => c2!.data[i]! - v);
    const into2 = new Float64Array(12);
    await subtractProduct64(c2!, a2!, b2!, { into: into2 });
    assert.ok(relativeError(into2, ref2, 1) < 1e-15);
    await assert.rejects(subtractProduct64(c2!, a2!, b2!, { into: new Float64Array(11) }), /an output of 11 values/);
  });
});

describe('matmul', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const [m, k, n] of [
        [3, 4, 5],
        [70, 90, 80],
        [257, 33, 129],
      ] as const) {
        it(`${transA ? 'Aᵀ' : 'A'}·${transB ? 'Bᵀ' : 'B'} ${m}×${k}·${k}×${n} matches the f64 triple loop`, async () => {
          const [a, b] = operands(m, k, n, transA, transB, m + k + n);
          const ref = reference(a, b, transA, transB);
          const c = await matmul(a, b, { transA, transB });
          assert.deepEqual([c.rows, c.cols], [m, n]);
          assert.ok(relativeError(c.data, ref, k) < 1e-6, `engine error ${relativeError(c.data, ref, k)}`);
          assert.ok(relativeError(matmulPlain(a, b, { transA, transB }).data, ref, k) < 1e-7);
        });
      }
    }
  }

  it('reads operands that are views at an offset into a larger buffer', async () => {
    const big = gaussianMatrix(1, 200 * 60 + 7 + 60 * 50, 3).data;
    const a = { rows: 200, cols: 60, data: big.subarray(7, 7 + 200 * 60) };
    const b = { rows: 60, cols: 50, data: big.subarray(7 + 200 * 60) };
    const c = await matmul(a, b);
    assert.ok(relativeError(c.data, reference(a, b, false, false), 60) < 1e-6);
  });

  it('handles empty sizes and refuses mismatched ones', async () => {
    const c = await matmul(
      { rows: 4, cols: 0, data: new Float32Array(0) },
      { rows: 0, cols: 3, data: new Float32Array(0) },
    );
    assert.deepEqual([c.rows, c.cols, Array.from(c.data)], [4, 3, new Array(12).fill(0)]);
    await assert.rejects(matmul(gaussianMatrix(3, 4, 1), gaussianMatrix(3, 4, 2)), ShapeError);
    await assert.rejects(matmul({ rows: 3, cols: 4, data: new Float32Array(11) }, gaussianMatrix(4, 2, 2)), ShapeError);
  });

  it('reports onnxruntime-node as its engine when the package loads', async () => {
    let loads = true;
    try {
      await import('onnxruntime-node');
    } catch {
      loads = false;
    }
    const engine = await gemmEngine();
    assert.equal(engine.name, loads ? 'onnxruntime-node' : 'plain');
    if (loads) assert.match(engine.detail, /^\d+\.\d+\.\d+, \d+ threads$/);
  });

  it('falls back to the plain loop when told to (DELTARANK_GEMM=plain), with the same results', () => {
    const code = `
      import { gemmEngine, matmul } from './src/svd/gemm.ts';
      import { gaussianMatrix } from './src/svd/random.ts';
      const c = await matmul(gaussianMatrix(100, 80, 1), gaussianMatrix(80, 90, 2));
      console.log(JSON.stringify({ engine: (await gemmEngine()).name, sum: c.data.reduce((s, x) => s + x, 0) }));`;
    const plain = runChild(code, { DELTARANK_GEMM: 'plain' });
    const fast = runChild(code);
    const p = JSON.parse(plain.stdout) as { engine: string; sum: number };
    const f = JSON.parse(fast.stdout) as { engine: string; sum: number };
    assert.equal(p.engine, 'plain');
    assert.ok(Math.abs(p.sum - f.sum) <= 1e-4 * Math.abs(p.sum) + 1e-2);
  });

  it('builds its sessions again after releaseGemm', async () => {
    const [a, b] = operands(40, 50, 60, true, false, 8);
    await matmul(a, b, { transA: true });
    await releaseGemm();
    const c = await matmul(a, b, { transA: true });
    assert.ok(relativeError(c.data, reference(a, b, true, false), 50) < 1e-6);
    assert.equal(
      (await gemmEngine()).name,
      await import('onnxruntime-node').then(
        () => 'onnxruntime-node',
        () => 'plain',
      ),
    );
  });

  it('writes no MatMul with transpose flags (Gemm carries them)', () => {
    assert.throws(() => productModel({ op: 'MatMul', transA: true, transB: false }), RangeError);
  });

  it('lets a process exit promptly after using the engine', () => {
    const code = `
      import { matmul } from './src/svd/gemm.ts';
      import { gaussianMatrix } from './src/svd/random.ts';
      await matmul(gaussianMatrix(300, 300, 1), gaussianMatrix(300, 300, 2), { transA: true });
      console.log('done');`;
    const r = runChild(code);
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), 'done');
    assert.ok(r.ms < 20_000, `child took ${r.ms} ms`);
  });
});
