import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeSpectrum, DEFAULT_THRESHOLDS, tensorSpectrum } from '../../src/analyze/spectrum.js';
import { frobeniusSquared } from '../../src/svd/matrix.js';
import { gaussianMatrix } from '../../src/svd/random.js';
import { oracleSingularValues } from '../svd/planted.js';

const opts = { topK: 64, exact: false, thresholds: DEFAULT_THRESHOLDS, seed: 0 };

describe('computeSpectrum: where the complete route is bought at once', () => {
  // A noise-like 256×2048 ΔW (a k/v projection's shape): its complete spectrum costs ≈ 4 randomized passes.
  const a = gaussianMatrix(256, 2048, 11);
  const frob = frobeniusSquared(a);

  it('refining, it takes the complete route first and certifies every rankAt, equal to the f64 oracle', async () => {
    const s = await computeSpectrum(a, frob, { ...opts, refine: true });
    assert.equal(s.method, 'bidiagonal');
    assert.equal(s.complete, true);
    assert.match(s.refinement ?? '', /complete spectrum at once/);
    const truth = oracleSingularValues(a);
    for (let i = 0; i < truth.length; i++) assert.ok(Math.abs(s.singularValues[i]! - truth[i]!) <= 1e-9 * truth[0]!);
    const entry = tensorSpectrum('t', [256, 2048], 'F32', null, frob, s, performance.now());
    for (const v of Object.values(entry.rankAt)) assert.equal(typeof v, 'number');
  });

  it('without refinement it stays randomized; a larger matrix, whose complete spectrum costs more, starts randomized', async () => {
    assert.equal((await computeSpectrum(a, frob, { ...opts, refine: false })).method, 'adaptive');
    const big = gaussianMatrix(1024, 1024, 12);
    const s = await computeSpectrum(big, frobeniusSquared(big), { ...opts, refine: true, refineCapSeconds: 0.2 });
    assert.equal(s.method, 'adaptive');
  });
});
