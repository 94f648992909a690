import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { allocateBudget, type BudgetModule, policyFromFlags, rankFor } from '../../src/extract/policy.js';

/** Total squared error left by `ranks`: Σ over modules of Σ_{i ≥ r} σ_i² (+ the energy past the computed values). */
function leftover(modules: BudgetModule[], ranks: number[]): number {
  let e = 0;
  modules.forEach((m, k) => {
    let kept = 0;
    for (let i = 0; i < ranks[k]!; i++) kept += m.s[i]! ** 2;
    e += m.frobSquared - kept;
  });
  return e;
}

function spectrum(n: number, f: (i: number) => number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => f(i));
}

function module(cost: number, s: Float64Array): BudgetModule {
  return { cost, s, frobSquared: s.reduce((a, v) => a + v * v, 0), maxRank: s.length };
}

describe('policyFromFlags', () => {
  it('takes exactly one policy', () => {
    assert.deepEqual(policyFromFlags({ rank: 8 }), { rank: 8 });
    assert.deepEqual(policyFromFlags({ budgetRelative: 100 }), { budget: 100, relative: true });
    assert.throws(
      () => policyFromFlags({}),
      (e: unknown) => e instanceof UsageError && /exactly one/.test(e.message),
    );
    assert.throws(() => policyFromFlags({ rank: 8, energy: 0.9 }), /got `rank`, `energy`/);
    assert.throws(() => policyFromFlags({ rank: 0 }), /positive integer/);
    assert.throws(() => policyFromFlags({ energy: 1.5 }), /\(0, 1\]/);
  });
});

describe('policy errors name the library option, not a flag', () => {
  const cases: [() => unknown, string, RegExp][] = [
    [() => policyFromFlags({ rank: 0 }), 'rank', /^`rank` must be a positive integer, got 0$/],
    [() => policyFromFlags({ rank: 2.5 }), 'rank', /^`rank` must be a positive integer, got 2.5$/],
    [() => policyFromFlags({ energy: 0 }), 'energy', /^`energy` must be in \(0, 1\], got 0$/],
    [() => policyFromFlags({ error: 1 }), 'error', /^`error` must be in \[0, 1\), got 1$/],
    [() => policyFromFlags({ rank: 4, budget: 9 }), 'budget', /^choose exactly one of .*\(got `rank`, `budget`\)$/],
    [
      () =>
        allocateBudget(
          [
            module(
              10,
              spectrum(4, () => 1),
            ),
          ],
          5,
        ),
      'budget',
      /^`budget` 5 is too small: .* lower `minRank`$/,
    ],
    [
      () =>
        allocateBudget(
          [
            module(
              10,
              spectrum(4, () => 1),
            ),
          ],
          5,
          { relative: true },
        ),
      'budgetRelative',
      /^`budgetRelative` 5 is too small/,
    ],
  ];
  for (const [i, [call, option, message]] of cases.entries()) {
    it(`case ${i + 1}: a UsageError with option ${option}, named \`${option}\` in the message`, () => {
      assert.throws(call, (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.option, option);
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, /--/, "flags are the CLI's words");
        return true;
      });
    });
  }
});

describe('rankFor', () => {
  const s = Float64Array.from([4, 2, 1, 0.5]); // energies 16, 4, 1, 0.25 of 21.25
  const frob = 21.25;
  it('picks the smallest rank reaching the energy', () => {
    assert.equal(rankFor({ energy: 16 / 21.25 }, s, frob, 4).rank, 1);
    assert.equal(rankFor({ energy: 0.9 }, s, frob, 4).rank, 2);
    assert.equal(rankFor({ energy: 0.99 }, s, frob, 4).rank, 4);
  });
  it('turns an error target into energy 1 − ε²', () => {
    // error after rank 2: √(1.25/21.25) = 0.2425
    assert.equal(rankFor({ error: 0.25 }, s, frob, 4).rank, 2);
    assert.equal(rankFor({ error: 0.24 }, s, frob, 4).rank, 3);
  });
  it('says when the values computed do not reach the target', () => {
    const r = rankFor({ energy: 0.999 }, s.subarray(0, 2), frob, 8);
    assert.deepEqual(r, { rank: 2, reached: false });
    assert.deepEqual(rankFor({ energy: 0.99 }, s, frob, 2), { rank: 2, reached: false });
  });
});

describe('allocateBudget', () => {
  const modules = [
    module(
      100,
      spectrum(40, (i) => Math.exp(-i / 3)),
    ),
    module(
      300,
      spectrum(40, (i) => 2 * Math.exp(-i / 10)),
    ),
    module(
      200,
      spectrum(40, (i) => 0.5 * Math.exp(-i / 20)),
    ),
  ];

  it('never spends more than the budget and is no worse than any fixed rank of the same cost', () => {
    const costPerRank = modules.reduce((a, m) => a + m.cost, 0);
    for (const r of [1, 2, 4, 8, 16, 32]) {
      const budget = r * costPerRank;
      const ranks = allocateBudget(modules, budget);
      const spent = ranks.reduce((a, k, i) => a + k * modules[i]!.cost, 0);
      assert.ok(spent <= budget, `rank ${r}: spent ${spent} > ${budget}`);
      const fixed = leftover(
        modules,
        modules.map(() => r),
      );
      assert.ok(
        leftover(modules, ranks) <= fixed * (1 + 1e-12),
        `rank ${r}: greedy ${leftover(modules, ranks)} vs fixed ${fixed}`,
      );
    }
  });

  it('matches an exhaustive search on small cases', () => {
    const small = [
      module(
        3,
        spectrum(5, (i) => 3 / (i + 1)),
      ),
      module(
        5,
        spectrum(5, (i) => 4 * 0.6 ** i),
      ),
      module(
        2,
        spectrum(5, (i) => 1.5 - 0.2 * i),
      ),
    ];
    for (const budget of [10, 17, 23, 30, 41]) {
      let best = Infinity;
      for (let a = 1; a <= 5; a++)
        for (let b = 1; b <= 5; b++)
          for (let c = 1; c <= 5; c++)
            if (3 * a + 5 * b + 2 * c <= budget) best = Math.min(best, leftover(small, [a, b, c]));
      const ranks = allocateBudget(small, budget);
      // Greedy on σ²/cost is optimal up to the last partly fitting rank: within one rank's gain of the optimum.
      const got = leftover(small, ranks);
      const slack = Math.max(...small.map((m) => m.s[0]! ** 2));
      assert.ok(got <= best + slack, `budget ${budget}: ${got} vs optimum ${best}`);
      assert.ok(ranks.reduce((a, k, i) => a + k * small[i]!.cost, 0) <= budget);
    }
  });

  it('fails with the minimum when one rank everywhere does not fit', () => {
    assert.throws(
      () => allocateBudget(modules, 599),
      (e: unknown) => e instanceof UsageError && /too small/.test(e.message) && /600 parameters/.test(e.message),
    );
    assert.deepEqual(allocateBudget(modules, 0, { minRank: 0 }), [0, 0, 0]);
  });

  it('relative mode equalises relative errors across scales', () => {
    const big = module(
      100,
      spectrum(20, (i) => 100 * Math.exp(-i / 4)),
    );
    const tiny = module(
      100,
      spectrum(20, (i) => 0.01 * Math.exp(-i / 4)),
    );
    const abs = allocateBudget([big, tiny], 2000);
    const rel = allocateBudget([big, tiny], 2000, { relative: true });
    assert.ok(abs[0]! > abs[1]!, `absolute mode favours the big module: ${abs}`);
    assert.equal(rel[0], rel[1], `relative mode treats equal shapes alike: ${rel}`);
  });
});
