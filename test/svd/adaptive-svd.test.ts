import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adaptiveSvd } from '../../src/svd/adaptive-svd.js';
import { frobeniusSquared } from '../../src/svd/matrix.js';
import { oracleSingularValues, orthogonalityError, planted, residualNorm, tailNorm } from './planted.js';

/** Smallest r with Σ_{i≤r} σᵢ² ≥ t·Σσ², from the exact values. */
function trueRankAtEnergy(sigma: ArrayLike<number>, t: number): number {
  let total = 0;
  for (let i = 0; i < sigma.length; i++) total += sigma[i]! ** 2;
  let acc = 0;
  for (let i = 0; i < sigma.length; i++) {
    acc += sigma[i]! ** 2;
    if (acc >= t * total) return i + 1;
  }
  return sigma.length;
}

/** Energy margin at the answer: min(E(r) − t, t − E(r − 1)), from the exact values. */
function gapAt(sigma: ArrayLike<number>, t: number, r: number): number {
  let total = 0;
  for (let i = 0; i < sigma.length; i++) total += sigma[i]! ** 2;
  let acc = 0;
  for (let i = 0; i < r - 1; i++) acc += sigma[i]! ** 2;
  return Math.min((acc + sigma[r - 1]! ** 2) / total - t, t - acc / total);
}

describe('adaptiveSvd (randQB_EI) on planted spectra', () => {
  const decay = Array.from({ length: 200 }, (_, i) => 0.97 ** i);
  const a = planted(500, 400, decay, 3);
  const exact = oracleSingularValues(a);

  for (const energy of [0.5, 0.9, 0.95, 0.99]) {
    for (const blockSize of [8, 32]) {
      it(`finds the exact rank at energy ${energy}, blocks of ${blockSize}`, async () => {
        const truth = trueRankAtEnergy(exact, energy);
        assert.ok(gapAt(exact, energy, truth) > 1e-4, 'the planted gap must exceed the indicator precision');
        const got = await adaptiveSvd(a, { energy, maxRank: 300, blockSize, seed: 2 });
        assert.equal(got.reached, true);
        assert.equal(got.s.length, truth);
        assert.ok(Math.abs(got.frobSquared - frobeniusSquared(a)) <= 1e-12 * got.frobSquared);
      });
    }
  }

  it('finds the exact rank for a relative-error target, and meets it', async () => {
    const relError = 0.2;
    const truth = trueRankAtEnergy(exact, 1 - relError ** 2);
    const got = await adaptiveSvd(a, { relError, maxRank: 300, seed: 5 });
    assert.equal(got.s.length, truth);
    assert.ok(orthogonalityError(got.u) <= 1e-5 && orthogonalityError(got.v) <= 1e-5);
    const err = residualNorm(a, got.u, got.s, got.v) / Math.sqrt(frobeniusSquared(a));
    assert.ok(err <= relError, `relative error ${err}`);
  });

  it('stops at the cap and says so', async () => {
    const got = await adaptiveSvd(a, { energy: 0.99, maxRank: 40, blockSize: 16 });
    assert.equal(got.reached, false);
    assert.equal(got.s.length, 40);
    for (let i = 0; i < 10; i++)
      assert.ok(Math.abs(got.s[i]! - exact[i]!) <= 1e-4 * exact[i]!, `σ${i + 1}: ${got.s[i]} vs ${exact[i]}`);
    const residual = residualNorm(a, got.u, got.s, got.v);
    assert.ok(residual <= 1.05 * tailNorm(exact, 40), `residual ${residual} vs optimum ${tailNorm(exact, 40)}`);
  });

  it('without vectors: the same rank, values and Ritz values as with them, and no vectors', async () => {
    const opts = { energy: 0.95, maxRank: 300, blockSize: 32, seed: 4 };
    const both = await adaptiveSvd(a, opts);
    const values = await adaptiveSvd(a, { ...opts, vectors: false });
    assert.equal(values.s.length, both.s.length);
    assert.equal(values.ritz.length, both.ritz.length);
    assert.equal(values.leftOutEnergy, both.leftOutEnergy);
    for (let i = 0; i < both.ritz.length; i++)
      assert.ok(Math.abs(values.ritz[i]! - both.ritz[i]!) <= 1e-12 * both.ritz[0]!, `Ritz value ${i + 1}`);
    assert.deepEqual([values.u.rows, values.u.cols, values.v.rows, values.v.cols], [500, 0, 400, 0]);
  });

  it('recovers an exactly low-rank matrix with rank ≤ its true rank', async () => {
    const b = planted(300, 200, [9, 7, 5, 3, 1], 8);
    const got = await adaptiveSvd(b, { relError: 1e-3, maxRank: 100, blockSize: 4 });
    assert.equal(got.reached, true);
    assert.equal(got.s.length, 5);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(got.s[i]! - [9, 7, 5, 3, 1][i]!) <= 1e-5 * 9);
  });

  it('uses a given ‖A‖_F² and handles the zero matrix', async () => {
    const zero = { rows: 40, cols: 30, data: new Float32Array(1200) };
    const got = await adaptiveSvd(zero, { energy: 0.9, maxRank: 10 });
    assert.deepEqual([got.s.length, got.reached, got.frobSquared], [0, true, 0]);
    const given = await adaptiveSvd(a, { energy: 0.5, maxRank: 300, frobSquared: frobeniusSquared(a) });
    assert.equal(given.s.length, trueRankAtEnergy(exact, 0.5));
  });

  it('refuses missing or out-of-range targets', async () => {
    await assert.rejects(adaptiveSvd(a, { maxRank: 10 }), RangeError);
    await assert.rejects(adaptiveSvd(a, { energy: 1.5, maxRank: 10 }), RangeError);
    await assert.rejects(adaptiveSvd(a, { relError: -0.1, maxRank: 10 }), RangeError);
    await assert.rejects(adaptiveSvd(a, { energy: 0.9, maxRank: 0 }), RangeError);
  });
});
