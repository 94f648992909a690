import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Matrix as MlMatrix, SingularValueDecomposition } from 'ml-matrix';
import { DeltarankError } from '../../src/errors.js';
import { bidiagonalSingularValues, bidiagonalSingularValuesSteps } from '../../src/svd/bidiagonal-values.js';
import { tridiagonalEigenvalues } from '../../src/svd/tridiagonal-eigenvalues.js';
import { finishCooperatively } from '../../src/yield.js';
import { gaussian } from './exact-helpers.js';

/**
 * The number of singular values of the bidiagonal (d, e) below x: the negative pivots of
 * T − xI, T its Golub–Kahan tridiagonal (zero diagonal, off-diagonal d₁, e₁, d₂, …; eigenvalues
 * ±σ). With a zero diagonal this count is exact for a matrix whose entries differ from T's by a
 * few ulps each (Demmel & Kahan 1990), so bisection on it finds every σ to high relative accuracy.
 */
function countBelow(d: Float64Array, e: Float64Array, x: number): number {
  const n = d.length;
  let negative = 0;
  let t = -x;
  if (t < 0) negative++;
  for (let k = 1; k < 2 * n; k++) {
    const b = k % 2 === 1 ? d[(k - 1) / 2]! : e[k / 2 - 1]!;
    if (t === 0) t = -(2 ** -1000);
    t = -x - (b / t) * b;
    if (t < 0) negative++;
  }
  return negative - n;
}

/** Every σ of (d, e) by bisection on `countBelow`, descending: the relative-accuracy oracle. */
function bisectionValues(d: Float64Array, e: Float64Array): number[] {
  const n = d.length;
  let hi = 0;
  for (let i = 0; i < n; i++) hi = Math.max(hi, Math.abs(d[i]!) + Math.abs(e[i] ?? 0) + Math.abs(e[i - 1] ?? 0));
  const out: number[] = [];
  for (let k = n - 1; k >= 0; k--) {
    let lo = 0;
    let up = hi * 1.01;
    for (let it = 0; it < 1200 && up - lo > 2 ** -54 * up; it++) {
      const mid = (lo + up) / 2;
      if (countBelow(d, e, mid) > k) up = mid;
      else lo = mid;
    }
    out.push((lo + up) / 2);
  }
  return out;
}

/** Singular values of the dense bidiagonal by ml-matrix's SVD (an independent Golub–Kahan), descending. */
function denseValues(d: Float64Array, e: Float64Array): number[] {
  const n = d.length;
  const b = new MlMatrix(n, n);
  for (let i = 0; i < n; i++) {
    b.set(i, i, d[i]!);
    if (i + 1 < n) b.set(i, i + 1, e[i]!);
  }
  const svd = new SingularValueDecomposition(b, {
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
  });
  return [...svd.diagonal].sort((x, y) => y - x);
}

/** Every value within `tol` relative of the truth (a zero exactly), sorted descending. */
function expectRelative(got: Float64Array, truth: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, truth.length, what);
  for (let i = 0; i < truth.length; i++) {
    if (i > 0) assert.ok(got[i - 1]! >= got[i]!, `${what}: sorted`);
    assert.ok(
      Math.abs(got[i]! - truth[i]!) <= tol * truth[i]!,
      `${what}: σ_${i + 1} ${got[i]} vs ${truth[i]} (relative ${Math.abs(got[i]! / truth[i]! - 1).toExponential(1)})`,
    );
  }
}

/** Every value within `tol`·σ₁ of the truth. */
function expectAbsolute(got: Float64Array, truth: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, truth.length, what);
  for (let i = 0; i < truth.length; i++)
    assert.ok(Math.abs(got[i]! - truth[i]!) <= tol * truth[0]!, `${what}: σ_${i + 1} ${got[i]} vs ${truth[i]}`);
}

/** A bidiagonal of Gaussian entries, the i-th of each scaled by grade(i). */
function randomBidiagonal(n: number, seed: number, grade: (i: number) => number = () => 1) {
  const next = gaussian(seed);
  const d = Float64Array.from({ length: n }, (_, i) => next() * grade(i));
  const e = Float64Array.from({ length: n - 1 }, (_, i) => next() * grade(i + 0.5));
  return { d, e };
}

describe('bidiagonalSingularValues (dqds)', () => {
  it('planted spectra: the odd integers 1 … 199, and 2·sin((2n + 1 − 2k)π/(4n + 2)), to 1e-14 relative', () => {
    // The Golub–Kahan tridiagonal of this B is Kac's matrix, off-diagonal √(k(2m − k)), whose
    // eigenvalues are ±1, ±3, …, ±(2m − 1). Rounding √ perturbs each entry by ≤ ε/2 relative,
    // hence each σ by ≤ (2m − 1)·ε/2 ≈ 4e-14 relative at most.
    const m = 100;
    const d = Float64Array.from({ length: m }, (_, i) => Math.sqrt((2 * i + 1) * (2 * m - 2 * i - 1)));
    const e = Float64Array.from({ length: m - 1 }, (_, i) => Math.sqrt((2 * i + 2) * (2 * m - 2 * i - 2)));
    expectRelative(
      bidiagonalSingularValues(d, e),
      Array.from({ length: m }, (_, i) => 2 * (m - i) - 1),
      1e-14,
      'Kac',
    );
    // d = e = 1: the Golub–Kahan tridiagonal is the path graph on 2n vertices.
    const n = 300;
    expectRelative(
      bidiagonalSingularValues(new Float64Array(n).fill(1), new Float64Array(n - 1).fill(1)),
      Array.from({ length: n }, (_, i) => 2 * Math.sin(((2 * n - 1 - 2 * i) * Math.PI) / (4 * n + 2))),
      1e-14,
      'ones',
    );
  });

  it('graded down to 1e-24 (either way round) and entries of wild size: every σ to 1e-13 relative of bisection', () => {
    for (const [name, grade] of [
      ['graded down', (i: number) => 10 ** ((-24 * i) / 80)],
      ['graded up', (i: number) => 10 ** ((-24 * (80 - i)) / 80)],
      ['wild', (i: number) => 10 ** (((i * 7919) % 41) - 20)],
    ] as const) {
      const { d, e } = randomBidiagonal(80, 3, grade);
      const got = bidiagonalSingularValues(d, e);
      assert.ok(got[79]! < 1e-20 * got[0]!, `${name}: the spectrum spans 20 orders and more`);
      expectRelative(got, bisectionValues(d, e), 1e-13, name);
      expectAbsolute(got, denseValues(d, e), 1e-12, `${name}, ml-matrix`);
    }
  });

  it('clustered values: to 1e-13 relative of bisection and 1e-12·σ₁ of ml-matrix', () => {
    const next = gaussian(11);
    const n = 60;
    const d = Float64Array.from({ length: n }, (_, i) => (i < 40 ? 1 + 1e-12 * next() : 1e-6 * (1 + 1e-10 * next())));
    const e = Float64Array.from({ length: n - 1 }, () => 1e-9 * next());
    const got = bidiagonalSingularValues(d, e);
    expectRelative(got, bisectionValues(d, e), 1e-13, 'clustered');
    expectAbsolute(got, denseValues(d, e), 1e-12, 'clustered, ml-matrix');
  });

  it('zeros on the super-diagonal split B into blocks: 1×1 and 2×2 blocks of sizes 1e-120 … 1e120', () => {
    // Blocks [a] and [a b; 0 c]: σ = |a|, and σ₁ = √((t + √(t² − 4a²c²))/2), σ₂ = |ac|/σ₁, t = a² + b² + c².
    const next = gaussian(5);
    const d: number[] = [];
    const e: number[] = [];
    const truth: number[] = [];
    for (let block = 0; block < 30; block++) {
      const s = 10 ** (10 * ((block * 7) % 25) - 120);
      const [a, b, c] = [next() * s, next() * s, next() * s];
      if (block % 3 === 0) {
        d.push(a);
        e.push(0);
        truth.push(Math.abs(a));
        continue;
      }
      const [ua, ub, uc] = [a / s, b / s, c / s];
      const t = ua * ua + ub * ub + uc * uc;
      const s1 = Math.sqrt((t + Math.sqrt(t * t - 4 * ua * ua * uc * uc)) / 2);
      d.push(a, c);
      e.push(b, 0);
      truth.push(s1 * s, (Math.abs(ua * uc) / s1) * s);
    }
    e.pop();
    truth.sort((x, y) => y - x);
    expectRelative(bidiagonalSingularValues(Float64Array.from(d), Float64Array.from(e)), truth, 1e-14, 'blocks');
  });

  it('zeros on the diagonal (first, inside, last): B is singular, its smallest σ exactly 0, the rest as ml-matrix', () => {
    for (const zeros of [[0], [3], [9], [0, 4, 9], [2, 3]]) {
      const { d, e } = randomBidiagonal(10, 20 + zeros.length);
      for (const i of zeros) d[i] = 0;
      const got = bidiagonalSingularValues(d, e);
      assert.equal(got[9], 0, `zeros at ${zeros}: σ_min`);
      expectAbsolute(got, denseValues(d, e), 1e-14, `zeros at ${zeros}`);
      expectRelative(got.subarray(0, 9), bisectionValues(d, e).slice(0, 9), 1e-13, `zeros at ${zeros}, bisection`);
    }
  });

  it('1×1, 2×2 (where the textbook formula would overflow), all-zero and diagonal matrices', () => {
    assert.deepEqual([...bidiagonalSingularValues(Float64Array.of(-2.5), new Float64Array(0))], [2.5]);
    for (const [a, b, c] of [
      [3, 4, -2],
      [1e300, -1e300, 1e-300],
      [1e-300, 1e-300, 2e-300],
      [0, 5, 1],
      [2, 0, -7],
    ] as const) {
      const [s1, s2] = bidiagonalSingularValues(Float64Array.of(a, c), Float64Array.of(b));
      // σ₁σ₂ = |ac| and σ₁² + σ₂² = a² + b² + c², in units of the largest entry.
      const u = Math.max(Math.abs(a), Math.abs(b), Math.abs(c));
      const [x1, x2] = [s1! / u, s2! / u];
      assert.ok(x1 >= x2 && x2 >= 0, `${a}, ${b}, ${c}: sorted`);
      assert.ok(Math.abs(x1 * x2 - Math.abs((a / u) * (c / u))) <= 1e-15, `${a}, ${b}, ${c}: σ₁σ₂ = |ac|`);
      const t = (a / u) ** 2 + (b / u) ** 2 + (c / u) ** 2;
      assert.ok(Math.abs(x1 * x1 + x2 * x2 - t) <= 1e-15 * t, `${a}, ${b}, ${c}: σ₁² + σ₂²`);
    }
    for (const n of [1, 2, 3, 6])
      assert.deepEqual(
        [...bidiagonalSingularValues(new Float64Array(n), new Float64Array(n - 1))],
        new Array(n).fill(0),
      );
    assert.deepEqual(
      [...bidiagonalSingularValues(Float64Array.of(1, -4, 0, 2), new Float64Array(3))],
      [4, 2, 1, 0],
      'diagonal',
    );
  });

  it('keeps every σ at any scale: entries near 1e±200 and 1e±290 give the unit values, scaled, to 1e-13 relative', () => {
    const { d, e } = randomBidiagonal(90, 9, (i) => 10 ** (-i / 10));
    const unit = bidiagonalSingularValues(d, e);
    for (const scale of [1e200, 1e-200, 1e290, 1e-290]) {
      const got = bidiagonalSingularValues(
        d.map((x) => x * scale),
        e.map((x) => x * scale),
      );
      expectRelative(
        got.map((x) => x / scale),
        unit,
        1e-13,
        `scale ${scale}`,
      );
    }
  });

  it('random, n = 150: within 1e-12·σ₁ of ml-matrix and 1e-13 relative of bisection', () => {
    const { d, e } = randomBidiagonal(150, 150);
    const got = bidiagonalSingularValues(d, e);
    expectAbsolute(got, denseValues(d, e), 1e-12, 'ml-matrix');
    expectRelative(got, bisectionValues(d, e), 1e-13, 'bisection');
  });

  it('random, n = 2000: within 1e-12·σ₁ of the eigenvalues of the Golub–Kahan tridiagonal (QL)', () => {
    const n = 2000;
    const { d, e } = randomBidiagonal(n, n);
    const off = new Float64Array(2 * n - 1);
    for (let i = 0; i < n; i++) off[2 * i] = d[i]!;
    for (let i = 0; i + 1 < n; i++) off[2 * i + 1] = e[i]!;
    const truth = tridiagonalEigenvalues(new Float64Array(2 * n), off).subarray(0, n);
    expectAbsolute(bidiagonalSingularValues(d, e), truth, 1e-12, 'n = 2000');
  });

  it('leaves its inputs alone, runs as a cooperative kernel, and rejects short e and non-finite entries', async () => {
    const { d, e } = randomBidiagonal(40, 1);
    const [d0, e0] = [d.slice(), e.slice()];
    const got = bidiagonalSingularValues(d, e);
    assert.deepEqual([d, e], [d0, e0]);
    assert.deepEqual(await finishCooperatively(bidiagonalSingularValuesSteps(d, e)), got);
    assert.throws(() => bidiagonalSingularValues(d, e.subarray(0, 38)), RangeError);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const d1 = d.slice();
      d1[7] = bad;
      assert.throws(() => bidiagonalSingularValues(d1, e), DeltarankError);
      const e1 = e.slice();
      e1[38] = bad;
      assert.throws(() => bidiagonalSingularValues(d, e1), DeltarankError);
    }
  });
});
