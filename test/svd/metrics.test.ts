import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import type { Matrix } from '../../src/svd/matrix.js';
import {
  amplificationFactor,
  effectiveRank,
  energyCurve,
  nuclearNorm,
  projectionNorm,
  rankAt,
  relativeUpdate,
  stableRank,
  subspaceSimilarity,
} from '../../src/svd/metrics.js';
import { randomOrthonormal64 } from '../../src/svd/random.js';
import { expectAllClose } from '../helpers/close.js';

function f32(m: { rows: number; cols: number; data: Float64Array }): Matrix {
  return { rows: m.rows, cols: m.cols, data: Float32Array.from(m.data) };
}

/** Columns [from, to) of a row-major matrix, as a new matrix. */
function columns(m: { rows: number; cols: number; data: Float64Array }, from: number, to: number): Matrix {
  const out = new Float32Array(m.rows * (to - from));
  for (let i = 0; i < m.rows; i++)
    for (let j = from; j < to; j++) out[i * (to - from) + j - from] = m.data[i * m.cols + j]!;
  return { rows: m.rows, cols: to - from, data: out };
}

describe('spectrum metrics', () => {
  it('energy curve and ranks at thresholds', () => {
    const s = [3, 2, 1, 1];
    const frob = 9 + 4 + 1 + 1 + 5; // 5 more in values not listed
    const e = energyCurve(s, frob);
    expectAllClose(e, [9 / 20, 13 / 20, 14 / 20, 15 / 20], { rtol: 1e-15 });
    assert.equal(rankAt(e, 0.5), 2);
    assert.equal(rankAt(e, 0.45), 1);
    assert.equal(rankAt(e, 0.75), 4);
    assert.equal(rankAt(e, 0.9), null);
    // 0.1 + 0.2 + … style rounding must not push a threshold one rank further.
    assert.equal(rankAt(Float64Array.of(0.3, 0.8999999999999999), 0.9), 2);
    assert.deepEqual(Array.from(energyCurve([0, 0], 0)), [0, 0]);
  });

  it('stable rank, effective rank and nuclear norm', () => {
    assert.equal(stableRank([2, 1], 5), 1.25);
    assert.equal(stableRank([], 0), 0);
    assert.ok(Math.abs(effectiveRank([1, 1, 1, 1]) - 4) < 1e-12);
    assert.ok(Math.abs(effectiveRank([5, 0, 0]) - 1) < 1e-12);
    // p = (0.75, 0.25): H = −0.75 ln 0.75 − 0.25 ln 0.25
    assert.ok(Math.abs(effectiveRank([3, 1]) - Math.exp(-0.75 * Math.log(0.75) - 0.25 * Math.log(0.25))) < 1e-12);
    assert.equal(effectiveRank([0, 0]), 0);
    assert.equal(nuclearNorm(Float64Array.of(3, 4)), 7);
  });

  it('relative update and amplification factor', () => {
    assert.equal(relativeUpdate(0.5, 100), 0.005);
    assert.equal(relativeUpdate(1, 0), null, 'a zero base: no finite ratio');
    assert.equal(relativeUpdate(0, 0), null);
    assert.equal(relativeUpdate(1, null), null, 'no base read');
    assert.equal(amplificationFactor(6, 2), 3);
    assert.equal(amplificationFactor(1, 0), Infinity);
  });
});

describe('subspace similarity (LoRA eq. 4)', () => {
  const q = randomOrthonormal64(200, 30, 4);

  it('is 1 for nested spans and 0 for orthogonal ones', () => {
    const u = columns(q, 0, 20);
    assert.ok(Math.abs(subspaceSimilarity(u, u, 8, 20) - 1) < 1e-6);
    assert.ok(Math.abs(subspaceSimilarity(u, u, 20, 8) - 1) < 1e-6);
    assert.ok(subspaceSimilarity(columns(q, 0, 10), columns(q, 10, 30), 10, 20) < 1e-12);
  });

  it('equals the shared dimensions over min(i, j) for overlapping coordinate subspaces', () => {
    // span{q0..q9} vs span{q5..q19}: 5 shared directions, min(10, 15) = 10 → 0.5
    assert.ok(Math.abs(subspaceSimilarity(columns(q, 0, 10), columns(q, 5, 20), 10, 15) - 0.5) < 1e-6);
  });

  it('averages cos² of the principal angle for random subspaces: E = j/m for i = 1', () => {
    // A fixed unit vector against random j-dimensional subspaces of R^m: E[‖Uᵀx‖²] = j/m.
    const x = columns(q, 0, 1);
    let sum = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) sum += subspaceSimilarity(x, f32(randomOrthonormal64(200, 20, 100 + t)), 1, 20);
    assert.ok(Math.abs(sum / trials - 20 / 200) < 0.02, `mean ${sum / trials}`);
  });

  it('refuses bad sizes', () => {
    assert.throws(() => subspaceSimilarity(columns(q, 0, 5), columns(q, 0, 5), 6, 1), RangeError);
    assert.throws(
      () => subspaceSimilarity(columns(q, 0, 5), { rows: 3, cols: 1, data: new Float32Array(3) }, 1, 1),
      ShapeError,
    );
  });
});

describe('projectionNorm ‖Uᵀ W V‖_F', () => {
  it('recovers Σσᵢ² of the projected part of a planted W', async () => {
    // W = Q₁·diag(σ)·P₁ᵀ; projecting on its own top-3 directions keeps σ₁..σ₃ exactly, and on
    // directions orthogonal to them keeps nothing.
    const qa = randomOrthonormal64(150, 6, 1);
    const qb = randomOrthonormal64(120, 6, 2);
    const sigma = [5, 4, 3, 2, 1, 0.5];
    const w = new Float32Array(150 * 120);
    for (let i = 0; i < 150; i++) {
      for (let j = 0; j < 120; j++) {
        let x = 0;
        for (let t = 0; t < 6; t++) x += qa.data[i * 6 + t]! * sigma[t]! * qb.data[j * 6 + t]!;
        w[i * 120 + j] = x;
      }
    }
    const W = { rows: 150, cols: 120, data: w };
    const top = await projectionNorm(columns(qa, 0, 3), W, columns(qb, 0, 3));
    assert.ok(Math.abs(top - Math.sqrt(25 + 16 + 9)) < 1e-5);
    const rest = await projectionNorm(columns(qa, 3, 6), W, columns(qb, 0, 3));
    assert.ok(rest < 1e-5);
    await assert.rejects(projectionNorm(columns(qa, 0, 3), W, columns(qb, 0, 2)), ShapeError);
  });
});
