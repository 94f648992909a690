import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adaptiveSvd } from '../../src/svd/adaptive-svd.js';
import { frobeniusSquared } from '../../src/svd/matrix.js';
import {
  boundsWithin,
  type EnergyEvidence,
  EPS32,
  rankInterval,
  ritzBounds,
  roundingAllowance,
} from '../../src/svd/spectrum-bounds.js';
import { oracleSingularValues, planted } from './planted.js';

/** Smallest r with Σ_{i≤r} σᵢ² ≥ t·F (less the same 1e-12 slack), from the exact values. */
function trueRank(s: number[], F: number, t: number): number {
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc += s[i]! ** 2;
    if (acc >= (t - 1e-12) * F) return i + 1;
  }
  return s.length;
}

describe('certified bounds', () => {
  it('exact values give exact ranks, and an interval only where a value straddles the threshold', () => {
    const s = [3, 2, 1, 1, 1];
    const F = s.reduce((a, v) => a + v * v, 0);
    const e: EnergyEvidence = { ...boundsWithin(s, 1e-9), frobSquared: F, p: 5 };
    for (const t of [0.3, 0.5, 0.8, 0.9, 1])
      assert.deepEqual(rankInterval(e, t), { lo: trueRank(s, F, t), hi: trueRank(s, F, t) }, `t = ${t}`);
    // E(2) = 13/16 exactly: bounds ±0.01 on each value cannot tell whether E(2) reaches 0.8125.
    const loose: EnergyEvidence = { ...boundsWithin(s, 0.01), frobSquared: F, p: 5 };
    assert.deepEqual(rankInterval(loose, 13 / 16), { lo: 2, hi: 3 });
  });

  it('past the values known, the interval spans what the left-out energy allows', () => {
    // Two values known of 100; 10 % of the energy left, spread anyhow over 98 values.
    const F = 1;
    const s = [Math.sqrt(0.6), Math.sqrt(0.3)];
    const e: EnergyEvidence = { ...boundsWithin(s, 0), frobSquared: F, p: 100 };
    const r = rankInterval(e, 0.95);
    // At least 3 (σ₃² ≤ σ₂² = 0.3 could hold all 0.05 missing), at most 3 + ⌈0.05/0.1·98⌉ − 1 by the flat-tail bound.
    assert.equal(r.lo, 3);
    assert.equal(r.hi, 2 + Math.ceil((0.05 / 0.1) * 98));
  });

  it('randomized Ritz values with their left-out energy bound the true spectrum and ranks', async () => {
    // Decaying planted spectrum over a noise floor: the ranks in the decay are certified, those in the floor are intervals.
    const sigma = Array.from({ length: 120 }, (_, i) => (i < 40 ? 0.9 ** i : 0.9 ** 40 * (1 - i / 400)));
    const a = planted(300, 200, sigma, 7);
    const exact = oracleSingularValues(a);
    const F = frobeniusSquared(a);
    const r = await adaptiveSvd(a, { energy: 0.999, maxRank: 48, blockSize: 56, seed: 1 });
    const delta = roundingAllowance(300, 200, EPS32, Math.sqrt(F));
    const leftOut = r.leftOutEnergy + roundingAllowance(300, 200, EPS32, F);
    assert.ok(
      Math.abs(r.leftOutEnergy - (F - r.ritz.reduce((acc, v) => acc + v * v, 0))) < 1e-5 * F,
      'indicator = ‖A‖² − Σσ̃²',
    );
    const b = ritzBounds(r.ritz, delta, leftOut);
    for (let i = 0; i < r.ritz.length; i++) {
      assert.ok(
        b.lower[i]! <= exact[i]! && exact[i]! <= b.upper[i]!,
        `σ_${i + 1} = ${exact[i]} outside [${b.lower[i]}, ${b.upper[i]}]`,
      );
    }
    const e: EnergyEvidence = {
      lower: b.lower,
      upper: b.upper,
      frobSquared: F,
      p: 200,
      kyFan: { ritzUpper: b.ritzUpper, leftOut },
    };
    let exactCount = 0;
    for (const t of [0.3, 0.5, 0.7, 0.9, 0.95, 0.99]) {
      const truth = trueRank(exact, F, t);
      const got = rankInterval(e, t);
      assert.ok(got.lo <= truth && truth <= got.hi, `t = ${t}: ${truth} outside ${got.lo}–${got.hi}`);
      if (got.lo === got.hi) exactCount++;
    }
    assert.ok(exactCount >= 2, `the ranks well inside the decay are certified (${exactCount} of 6)`);
  });
});
