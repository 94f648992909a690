import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeSpectrum, type SpectrumOptions } from '../../src/analyze/spectrum.js';
import { computeSpectrumHere, submitSpectrum } from '../../src/analyze/spectrum-pool.js';
import { frobeniusSquared } from '../../src/svd/index.js';
import { oracleSingularValues, planted } from '../svd/planted.js';

const EXACT: SpectrumOptions = { topK: 64, exact: true, thresholds: [0.5, 0.9], seed: 0, refine: true };
const RANDOMIZED: SpectrumOptions = { ...EXACT, exact: false, refine: false, topK: 8 };

/** A graded planted spectrum: σ_i = 0.8^i. */
function graded(m: number, n: number, seed: number) {
  const p = Math.min(m, n);
  return planted(
    m,
    n,
    Array.from({ length: p }, (_, i) => 0.8 ** i),
    seed,
  );
}

describe('spectrum pool', () => {
  it('a spectrum on a worker is the one computed here, complete and randomized, two at a time', async () => {
    const cases = [
      { a: graded(300, 200, 1), opts: EXACT },
      { a: graded(200, 320, 2), opts: EXACT },
      { a: graded(400, 256, 3), opts: RANDOMIZED },
    ];
    const started = [];
    for (const { a, opts } of cases) started.push((await submitSpectrum(a, frobeniusSquared(a), opts, 2)).result);
    const fromWorkers = await Promise.all(started);
    for (const [i, { a, opts }] of cases.entries()) {
      const here = await computeSpectrum(a, frobeniusSquared(a), opts);
      const there = fromWorkers[i]!;
      assert.equal(there.method, here.method);
      assert.equal(there.complete, here.complete);
      assert.equal(there.singularValues.length, here.singularValues.length);
      // Products may run on other thread counts there: the same values to rounding.
      for (let k = 0; k < here.singularValues.length; k++)
        assert.ok(
          Math.abs(there.singularValues[k]! - here.singularValues[k]!) <= 1e-12 * here.singularValues[0]!,
          `case ${i}: σ_${k + 1} ${there.singularValues[k]} vs ${here.singularValues[k]}`,
        );
      if (opts.exact) {
        const truth = oracleSingularValues(a);
        for (let k = 0; k < truth.length; k++)
          assert.ok(
            Math.abs(there.singularValues[k]! - truth[k]!) <= 1e-9 * truth[0]!,
            `case ${i}: σ_${k + 1} vs ml-matrix`,
          );
      }
    }
  });

  it('takes ΔW at once (the caller may overwrite it) and runs at most `jobs` at a time', async () => {
    const a = graded(256, 256, 4);
    const original = a.data.slice();
    const frob = frobeniusSquared(a);
    const first = await submitSpectrum(a, frob, EXACT, 1);
    let firstDone = false;
    void first.result.then(() => {
      firstDone = true;
    });
    a.data.fill(0);
    // With one job allowed, the second is taken only once the first has finished.
    const second = await submitSpectrum({ ...a, data: original }, frob, EXACT, 1);
    assert.equal(firstDone, true);
    const [s1, s2] = [await first.result, await second.result];
    assert.deepEqual(s1.singularValues, s2.singularValues);
    assert.ok(s1.singularValues[0]! > 0.99, 'the first spectrum is of the matrix as submitted, not the zeros');
  });

  it("a worker's error crosses back as its class, with its message and stack", async () => {
    const a = graded(64, 48, 5);
    const { result } = await submitSpectrum(a, frobeniusSquared(a), { ...RANDOMIZED, topK: 0 }, 2);
    await assert.rejects(result, (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /maxRank must be a positive integer, got 0/);
      assert.match(e.stack ?? '', /adaptiveSvd/);
      return true;
    });
    // The worker stays in the pool and takes the next spectrum.
    const next = await (await submitSpectrum(a, frobeniusSquared(a), EXACT, 2)).result;
    assert.equal(next.singularValues.length, 48);
  });

  it('computeSpectrumHere is computeSpectrum', async () => {
    const a = graded(96, 80, 6);
    const frob = frobeniusSquared(a);
    assert.deepEqual(
      (await computeSpectrumHere(a, frob, EXACT)).singularValues,
      (await computeSpectrum(a, frob, EXACT)).singularValues,
    );
  });
});
