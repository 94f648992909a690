import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeltarankError, ShapeError } from '../../src/errors.js';
import { frobeniusSquared } from '../../src/svd/matrix.js';
import { truncatedSvd } from '../../src/svd/randomized-svd.js';
import { oracleSingularValues, orthogonalityError, planted, residualNorm, tailNorm } from './planted.js';

const spectra: { name: string; m: number; n: number; sigma: number[]; rank: number }[] = [
  { name: 'decaying (tall)', m: 400, n: 300, sigma: Array.from({ length: 300 }, (_, i) => 0.85 ** i), rank: 40 },
  { name: 'decaying (wide)', m: 200, n: 500, sigma: Array.from({ length: 200 }, (_, i) => 3 * 0.8 ** i), rank: 30 },
  { name: 'flat', m: 300, n: 200, sigma: Array.from({ length: 50 }, () => 1), rank: 10 },
  {
    name: 'clustered',
    m: 300,
    n: 250,
    sigma: Array.from({ length: 60 }, (_, i) => (i < 5 ? 10 - 1e-3 * i : i < 20 ? 1 : 0.01)),
    rank: 20,
  },
  { name: 'rank-deficient', m: 300, n: 200, sigma: [5, 4, 3, 2, 1], rank: 20 },
];

describe('truncatedSvd on planted matrices, against the ml-matrix SVD of the same f32 matrix', () => {
  for (const { name, m, n, sigma, rank } of spectra) {
    it(name, async () => {
      const a = planted(m, n, sigma, 11);
      const exact = oracleSingularValues(a);
      const { u, s, v } = await truncatedSvd(a, { rank, seed: 3 });
      assert.equal(s.length, rank);
      assert.deepEqual([u.rows, u.cols, v.rows, v.cols], [m, rank, n, rank]);
      for (let i = 1; i < rank; i++) assert.ok(s[i]! <= s[i - 1]! && s[i]! >= 0, `σ not descending at ${i}`);
      for (let i = 0; i < rank; i++) {
        if (exact[i]! < 1e-3 * exact[0]!) continue;
        const rel = Math.abs(s[i]! - exact[i]!) / exact[i]!;
        assert.ok(rel <= 1e-4, `σ${i + 1} = ${s[i]} vs ${exact[i]} (relative error ${rel.toExponential(2)})`);
      }
      assert.ok(orthogonalityError(u) <= 1e-5, `UᵀU − I: ${orthogonalityError(u)}`);
      assert.ok(orthogonalityError(v) <= 1e-5, `VᵀV − I: ${orthogonalityError(v)}`);
      // Eckart–Young: within 5 % of the optimum, plus the f32 rounding of A itself.
      const floor = 1e-6 * Math.sqrt(frobeniusSquared(a));
      const residual = residualNorm(a, u, s, v);
      const optimum = tailNorm(exact, rank);
      assert.ok(residual <= 1.05 * optimum + floor, `‖A − USVᵀ‖_F = ${residual} vs optimum ${optimum}`);
    });
  }

  it('gets the top values without power iterations when the spectrum has a wide gap', async () => {
    const sigma = [...Array.from({ length: 8 }, (_, i) => 100 - i), ...Array.from({ length: 100 }, () => 1e-4)];
    const a = planted(250, 180, sigma, 5);
    const exact = oracleSingularValues(a);
    const { s } = await truncatedSvd(a, { rank: 8, powerIters: 0, seed: 1 });
    for (let i = 0; i < 8; i++)
      assert.ok(Math.abs(s[i]! - exact[i]!) <= 1e-5 * exact[i]!, `σ${i + 1}: ${s[i]} vs ${exact[i]}`);
  });

  it('returns the same result for the same seed', async () => {
    const a = planted(
      120,
      90,
      Array.from({ length: 30 }, (_, i) => 0.7 ** i),
      2,
    );
    const x = await truncatedSvd(a, { rank: 5, seed: 9 });
    const y = await truncatedSvd(a, { rank: 5, seed: 9 });
    assert.deepEqual(x.s, y.s);
    assert.deepEqual(x.u.data, y.u.data);
  });

  it('handles the zero matrix: σ = 0 with orthonormal U and V', async () => {
    const a = { rows: 60, cols: 40, data: new Float32Array(2400) };
    const { u, s, v } = await truncatedSvd(a, { rank: 7 });
    assert.deepEqual(Array.from(s), new Array(7).fill(0));
    assert.ok(orthogonalityError(u) <= 1e-6 && orthogonalityError(v) <= 1e-6);
  });

  it('recovers a full-rank small matrix completely when rank = min(m, n)', async () => {
    const sigma = [4, 3, 2, 1, 0.5, 0.25];
    const a = planted(9, 6, sigma, 4);
    const { u, s, v } = await truncatedSvd(a, { rank: 6 });
    const exact = oracleSingularValues(a);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(s[i]! - exact[i]!) <= 1e-6 * exact[0]!);
    assert.ok(residualNorm(a, u, s, v) <= 1e-5);
  });

  it('refuses a matrix holding NaN instead of returning garbage', async () => {
    const a = planted(50, 40, [3, 2, 1], 6);
    a.data[77] = Number.NaN;
    await assert.rejects(truncatedSvd(a, { rank: 3 }), DeltarankError);
  });

  it('rank 0 gives empty factors; bad ranks and shapes are refused', async () => {
    const a = planted(10, 8, [1, 0.5], 1);
    const r0 = await truncatedSvd(a, { rank: 0 });
    assert.deepEqual([r0.s.length, r0.u.rows, r0.u.cols, r0.v.rows, r0.v.cols], [0, 10, 0, 8, 0]);
    await assert.rejects(truncatedSvd(a, { rank: 9 }), ShapeError);
    await assert.rejects(truncatedSvd(a, { rank: 2.5 }), ShapeError);
    await assert.rejects(truncatedSvd({ rows: 3, cols: 3, data: new Float32Array(8) }, { rank: 1 }), ShapeError);
    await assert.rejects(truncatedSvd(a, { rank: 2, oversample: -1 }), RangeError);
  });
});
