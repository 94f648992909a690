import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { upperBand } from '../../src/svd/bidiagonal-band.js';
import { bandToBidiagonalSteps } from '../../src/svd/bidiagonal-from-band.js';
import { bidiagonalSingularValues } from '../../src/svd/bidiagonal-values.js';
import { bidiagonalRoute } from '../../src/svd/exact-bidiagonal.js';
import { JACOBI_MAX_VALUES, singularValues } from '../../src/svd/exact-svd.js';
import type { Matrix } from '../../src/svd/matrix.js';
import { idleScratchValues, takeScratch64 } from '../../src/svd/scratch.js';
import { tridiagonalEigenvalues } from '../../src/svd/tridiagonal-eigenvalues.js';
import { finishNow } from '../../src/yield.js';
import { gaussian, oracleSingularValues, planted } from './exact-helpers.js';

/**
 * The complete route's promise: every σ ≥ 1e-6·σ₁ within 1e-5 relative of the truth (here the
 * f64 SVD of the same f32 matrix by ml-matrix, an independent Golub–Kahan; LAPACK itself is the
 * truth of test/analyze). The route's own error is ≈ √(mn)·ε₆₄·σ₁, so 1e-9 relative is held too.
 */
function expectAccurate(got: ArrayLike<number>, truth: number[], what: string): void {
  assert.equal(got.length, truth.length, what);
  let worst = 0;
  for (let i = 0; i < truth.length; i++) {
    if (i > 0) assert.ok(got[i - 1]! >= got[i]! && got[i]! >= 0, `${what}: sorted and non-negative`);
    if (truth[i]! >= 1e-6 * truth[0]!) worst = Math.max(worst, Math.abs(got[i]! - truth[i]!) / truth[i]!);
    assert.ok(
      Math.abs(got[i]! - truth[i]!) <= 1e-12 * truth[0]!,
      `${what}: σ_${i + 1} ${got[i]} vs ${truth[i]} (absolute)`,
    );
  }
  assert.ok(worst <= 1e-9, `${what}: worst relative error ${worst.toExponential(2)} on σ ≥ 1e-6·σ₁`);
}

describe('bidiagonal values (dqds)', () => {
  it('agrees with the eigenvalues of the Golub–Kahan tridiagonal [0 B; Bᵀ 0] (±σ), random and graded', () => {
    for (const [n, graded] of [
      [1, false],
      [2, false],
      [57, false],
      [200, true],
    ] as const) {
      const next = gaussian(n);
      const d = Float64Array.from({ length: n }, (_, i) => next() * (graded ? 10 ** ((-8 * i) / n) : 1));
      const e = Float64Array.from(
        { length: Math.max(0, n - 1) },
        (_, i) => next() * (graded ? 10 ** ((-8 * i) / n) : 1),
      );
      // TGK: zero diagonal, off-diagonal d₁, e₁, d₂, e₂, …: eigenvalues ±σᵢ.
      const off = new Float64Array(2 * n - 1);
      for (let i = 0; i < n; i++) off[2 * i] = d[i]!;
      for (let i = 0; i + 1 < n; i++) off[2 * i + 1] = e[i]!;
      const truth = Array.from(tridiagonalEigenvalues(new Float64Array(2 * n), off).subarray(0, n));
      const got = bidiagonalSingularValues(d, e);
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(got[i]! - truth[i]!) <= 1e-13 * truth[0]!, `n = ${n}: σ_${i + 1} ${got[i]} vs ${truth[i]}`);
    }
  });

  it('zero diagonal entries (inside and last) and a zero matrix', () => {
    // B = [[0, 1, 0], [0, 2, 3], [0, 0, 0]] in bidiagonal terms: d = (0, 2, 0), e = (1, 3).
    const got = bidiagonalSingularValues(Float64Array.of(0, 2, 0), Float64Array.of(1, 3));
    // BᵀB eigenvalues by hand: B = [[0,1,0],[0,2,3],[0,0,0]]; σ² are the eigenvalues of BBᵀ = [[1,2,0],[2,13,0],[0,0,0]].
    const tr = 14;
    const det = 13 - 4;
    const l1 = (tr + Math.sqrt(tr * tr - 4 * det)) / 2;
    const l2 = (tr - Math.sqrt(tr * tr - 4 * det)) / 2;
    assert.ok(
      Math.abs(got[0]! - Math.sqrt(l1)) < 1e-14 && Math.abs(got[1]! - Math.sqrt(l2)) < 1e-14 && got[2] === 0,
      String(got),
    );
    assert.deepEqual([...bidiagonalSingularValues(new Float64Array(4), new Float64Array(3))], [0, 0, 0, 0]);
  });
});

describe('band → bidiagonal (bulge chase)', () => {
  it('keeps the singular values at any scale: entries near 1e±200, where the rotations take Math.hypot', () => {
    const n = 90;
    const b = 6;
    const values = (scale: number) => {
      const next = gaussian(5);
      const band = upperBand(n, b);
      for (let i = 0; i < n; i++)
        for (let j = i; j <= Math.min(n - 1, i + b); j++)
          band.data[i * band.width + j - i + 1] = Math.fround(next()) * scale;
      const { d, e } = finishNow(bandToBidiagonalSteps(band));
      return bidiagonalSingularValues(d, e);
    };
    const unit = values(1);
    // The dense oracle of the same band (its entries rounded to f32 in both).
    const next = gaussian(5);
    const a: Matrix = { rows: n, cols: n, data: new Float32Array(n * n) };
    for (let i = 0; i < n; i++) for (let j = i; j <= Math.min(n - 1, i + b); j++) a.data[i * n + j] = next();
    expectAccurate(unit, oracleSingularValues(a), 'scale 1');
    for (const scale of [1e200, 1e-200]) {
      const got = values(scale);
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(got[i]! / scale - unit[i]!) <= 1e-13 * unit[0]!, `scale ${scale}: σ_${i + 1}`);
    }
  });
});

describe('exact SVD, bidiagonal route (two-stage, f64)', () => {
  const p = 200;
  const cases: [string, number, number, number[]][] = [
    // Graded down to 1e-8·σ₁: the values under 1e-6·σ₁ are held to the absolute error only.
    ['graded', 300, p, Array.from({ length: p }, (_, i) => 10 ** ((-8 * i) / (p - 1)))],
    ['graded, tall (through the QR)', 520, p, Array.from({ length: p }, (_, i) => 10 ** ((-8 * i) / (p - 1)))],
    ['clustered', p, 333, Array.from({ length: p }, (_, i) => (i < 60 ? 3 - 1e-7 * i : i < 120 ? 1 + 1e-9 * i : 1e-4))],
    ['rank-deficient', 260, p, [...Array.from({ length: 40 }, (_, i) => 5 - i / 10), ...new Array(p - 40).fill(0)]],
    // The QR's panels (64 wide by default at p = 200, 128 in the third run) do not divide 200 here.
    [
      'rank-deficient, tall (through the QR)',
      400,
      p,
      [...Array.from({ length: 40 }, (_, i) => 5 - i / 10), ...new Array(p - 40).fill(0)],
    ],
  ];
  for (const [name, m, n, sigma] of cases) {
    it(`${name} ${m}×${n}: every σ ≥ 1e-6·σ₁ within 1e-9 relative of the f64 oracle (band 32 and 8, QR panels 64, 128 and one, blocks of 8, 1 and 3, products in row blocks)`, async () => {
      const { a } = planted(m, n, sigma, 17);
      const truth = oracleSingularValues(a);
      expectAccurate(await bidiagonalRoute(a), truth, `${name}, band 32`);
      expectAccurate(await bidiagonalRoute(a, { bandwidth: 8 }), truth, `${name}, band 8`);
      expectAccurate(await bidiagonalRoute(a, { qrPanel: 128 }), truth, `${name}, QR panels of 128`);
      expectAccurate(await bidiagonalRoute(a, { qrPanel: 256 }), truth, `${name}, one QR panel`);
      // Band panels updated one at a time, and three at a time (blocks that do not divide n).
      expectAccurate(await bidiagonalRoute(a, { delay: 1 }), truth, `${name}, band panels one by one`);
      expectAccurate(await bidiagonalRoute(a, { bandwidth: 8, delay: 3 }), truth, `${name}, band 8, blocks of 3`);
      // Each update's product arrives in row blocks of a few rows (not dividing the rows) and is
      // subtracted in place as it comes: a row written too early would be read back wrong.
      expectAccurate(await bidiagonalRoute(a, { outputBlock: 7 * 333 }), truth, `${name}, products in row blocks`);
    });
  }

  it('reduces in place: its work arrays, left in the pool, come to the matrix and little more (R lies in its copy)', async () => {
    const [m, n] = [520, 200];
    const next = gaussian(7);
    const a: Matrix = { rows: m, cols: n, data: Float32Array.from({ length: m * n }, next) };
    // Empty the pool: a request larger than every idle array drops them all.
    takeScratch64(idleScratchValues() + 1);
    assert.equal(idleScratchValues(), 0);
    const [outputBlock, qrPanel] = [20_000, 64];
    expectAccurate(
      await bidiagonalRoute(a, { bandwidth: 4, delay: 2, outputBlock, qrPanel }),
      oracleSingularValues(a),
      'in place',
    );
    // The f64 copy, one output block, a panel's rows of R and the QR panel's arrays (the panel,
    // which becomes Vᵀ, V and what its recursive factorization holds, three panels' worth), which
    // the next panel reuses, as do the band's factors. An array of its own for R adds n² = 40,000.
    const expected = m * n + outputBlock + qrPanel * n + 3 * qrPanel * m;
    assert.ok(idleScratchValues() <= expected, `${idleScratchValues()} values held, at most ${expected} expected`);
  });

  it(`is the default above min(m, n) = ${JACOBI_MAX_VALUES}; random tall and wide; bandwidths that do not divide n`, async () => {
    for (const [m, n, bw] of [
      [270, 150, 32],
      [150, 270, 7],
      [140, 139, 64],
    ] as const) {
      const next = gaussian(m + n);
      const a: Matrix = { rows: m, cols: n, data: Float32Array.from({ length: m * n }, next) };
      const truth = oracleSingularValues(a);
      const { s, method } = await singularValues(a);
      assert.equal(method, 'bidiagonal');
      expectAccurate(s, truth, `${m}×${n}`);
      expectAccurate(await bidiagonalRoute(a, { bandwidth: bw }), truth, `${m}×${n}, band ${bw}`);
    }
  });
});
