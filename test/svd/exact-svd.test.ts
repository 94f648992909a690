import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LuDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { DeltarankError } from '../../src/errors.js';
import { gramSingularValues } from '../../src/svd/exact-gram.js';
import { exactIsCheaper, exactSvd, singularValues } from '../../src/svd/exact-svd.js';
import type { Matrix } from '../../src/svd/matrix.js';
import { expectAllClose, fromMl, gaussian, oracleSingularValues, planted, toMl } from './exact-helpers.js';

const EPS64 = 2 ** -52;
const EPS32 = 2 ** -24;

/** What the Gram route resolves: eigenvalue errors ≈ n^½·ε₃₂·σ₁², so σ down to ≈ (n^½·ε₃₂)^½·σ₁. */
function gramFloor(n: number, sigma1: number): number {
  return Math.sqrt(Math.sqrt(n) * EPS32) * sigma1;
}

function descending(p: number, f: (i: number) => number): number[] {
  return Array.from({ length: p }, (_, i) => f(i));
}

function gramOf(a: Matrix): Promise<Float64Array> {
  let maxAbs = 0;
  for (const x of a.data) maxAbs = Math.max(maxAbs, Math.abs(x));
  return gramSingularValues(a, { maxAbs });
}

/** ‖A − U·diag(s)·Vᵀ‖_F / ‖A‖_F and the orthonormality defects of U and V, all in f64. */
function factorChecks(
  a: Matrix,
  s: Float64Array,
  u: Matrix,
  v: Matrix,
): { residual: number; uDefect: number; vDefect: number } {
  const p = s.length;
  const U = toMl(u);
  const V = toMl(v);
  const us = U.clone();
  for (let j = 0; j < p; j++) for (let i = 0; i < u.rows; i++) us.set(i, j, U.get(i, j) * s[j]!);
  const A = toMl(a);
  const norm = A.norm('frobenius');
  const residual = A.sub(us.mmul(V.transpose())).norm('frobenius') / (norm || 1);
  const uDefect = U.transpose().mmul(U).sub(MlMatrix.eye(p, p)).max();
  const uDefectMin = U.transpose().mmul(U).sub(MlMatrix.eye(p, p)).min();
  const vDefect = V.transpose().mmul(V).sub(MlMatrix.eye(p, p)).max();
  const vDefectMin = V.transpose().mmul(V).sub(MlMatrix.eye(p, p)).min();
  return { residual, uDefect: Math.max(uDefect, -uDefectMin), vDefect: Math.max(vDefect, -vDefectMin) };
}

describe('exact SVD, Jacobi route: planted spectra', () => {
  const cases: [string, number, number, number[]][] = [
    ['decaying', 60, 40, descending(40, (i) => 2 ** (-i / 3))],
    ['flat', 50, 50, descending(50, () => 1)],
    ['clustered', 45, 70, descending(45, (i) => (i < 15 ? 3 - 1e-6 * i : i < 30 ? 1 - 1e-6 * i : 0.2))],
    ['rank-deficient', 40, 30, [...descending(5, (i) => 10 - i), ...descending(25, () => 0)]],
    ['repeated', 33, 33, descending(33, (i) => [4, 4, 4, 2, 2, 1][i % 6]!).sort((x, y) => y - x)],
  ];
  for (const [name, m, n, sigma] of cases) {
    it(`${name} ${m}×${n}: every σ within the f32 rounding of the input (Weyl)`, async () => {
      const { a, roundingNorm } = planted(m, n, sigma, 11);
      const { s, method } = await singularValues(a);
      assert.equal(method, 'exact');
      assert.equal(s.length, Math.min(m, n));
      expectAllClose(s, sigma, { atol: roundingNorm + 1e-13 * sigma[0]! });
      for (let i = 1; i < s.length; i++) assert.ok(s[i - 1]! >= s[i]! && s[i]! >= 0, 'sorted and non-negative');
    });
  }

  it('agrees with ml-matrix (the oracle) on random matrices, tall and wide', async () => {
    for (const [m, n, seed] of [
      [37, 23, 1],
      [23, 37, 2],
      [64, 64, 3],
      [130, 9, 4],
    ] as const) {
      const next = gaussian(seed);
      const a: Matrix = { rows: m, cols: n, data: Float32Array.from({ length: m * n }, next) };
      const oracle = oracleSingularValues(a);
      const { s } = await exactSvd(a);
      expectAllClose(s, oracle, { atol: 1e-12 * oracle[0]! });
    }
  });

  it('zero matrix: all σ = 0, and orthonormal vectors all the same', async () => {
    const a: Matrix = { rows: 7, cols: 5, data: new Float32Array(35) };
    const { s, u, v } = await exactSvd(a, { vectors: true });
    assert.deepEqual([...s], [0, 0, 0, 0, 0]);
    const { uDefect, vDefect } = factorChecks(a, s, u!, v!);
    assert.ok(uDefect < 1e-7 && vDefect < 1e-7, `U, V orthonormal (${uDefect}, ${vDefect})`);
    assert.deepEqual([...(await singularValues(a)).s], [0, 0, 0, 0, 0]);
  });

  it('identical rows (exact zero σ, spread null space): σ = (√(m·n), 0, …) and orthonormal completed vectors', async () => {
    for (const [m, n] of [
      [5, 40],
      [40, 5],
      [6, 6],
    ] as const) {
      const a: Matrix = { rows: m, cols: n, data: new Float32Array(m * n).fill(1) };
      const { s, u, v } = await exactSvd(a, { vectors: true });
      expectAllClose(s, [Math.sqrt(m * n), ...new Array(Math.min(m, n) - 1).fill(0)], {
        atol: 1e-13 * Math.sqrt(m * n),
      });
      const { residual, uDefect, vDefect } = factorChecks(a, s, u!, v!);
      assert.ok(residual < 1e-7 && uDefect < 1e-6 && vDefect < 1e-6, `${m}×${n}: ${residual}, ${uDefect}, ${vDefect}`);
    }
  });

  it('1×n and n×1: the single σ is the vector norm', async () => {
    const next = gaussian(5);
    const x = Float32Array.from({ length: 300 }, next);
    let norm2 = 0;
    for (const t of x) norm2 += t * t;
    for (const a of [
      { rows: 1, cols: 300, data: x },
      { rows: 300, cols: 1, data: x },
    ]) {
      const { s, u, v } = await exactSvd(a, { vectors: true });
      assert.equal(s.length, 1);
      assert.ok(Math.abs(s[0]! - Math.sqrt(norm2)) <= 1e-14 * Math.sqrt(norm2));
      assert.equal(u!.rows, a.rows);
      assert.equal(v!.rows, a.cols);
      assert.ok(factorChecks(a, s, u!, v!).residual < 1e-7);
      assert.equal((await singularValues(a)).s[0], s[0]);
    }
  });

  it('badly scaled A = B·D, D from 1e6 to 1e-6: every σ to full relative precision (square, and tall through the QR)', async () => {
    // Relative accuracy of one-sided Jacobi (Demmel–Veselić 1992). Truth without an SVD:
    // Πσ_i = det(AᵀA)^½ = det(BᵀB)^½·Πd_i with B = A·D⁻¹ as stored, and σ_min(B)·d_(i) ≤ σ_i ≤ σ_max(B)·d_(i)
    // with d_(i) the i-th largest scale.
    for (const [m, n] of [
      [12, 12],
      [30, 12],
    ] as const) {
      // Column scales out of order (column i gets the (5i mod n)-th): Golub–Kahan on these loses
      // ≈ 1e-8 relative on the small σ (ml-matrix, measured), which the product check below catches.
      const d = descending(n, (i) => 10 ** (6 - (12 * ((5 * i) % n)) / (n - 1)));
      const sortedD = [...d].sort((x, y) => y - x);
      const next = gaussian(m + 9);
      const b = new MlMatrix(m, n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) b.set(i, j, next() + (i === j ? 4 : 0));
      const { a } = fromMl(b.mmul(MlMatrix.diag(d)));
      const bStored = toMl(a).mmul(MlMatrix.diag(d.map((x) => 1 / x)));
      const lu = new LuDecomposition(bStored.transpose().mmul(bStored));
      let logDet = 0;
      for (let i = 0; i < n; i++)
        logDet += 0.5 * Math.log(Math.abs(lu.upperTriangularMatrix.get(i, i))) + Math.log(d[i]!);
      const { s } = await exactSvd(a);
      let logProd = 0;
      for (const x of s) logProd += Math.log(x);
      assert.ok(
        Math.abs(logProd - logDet) < 1e-12,
        `${m}×${n}: Πσ matches det(AᵀA)^½: log difference ${logProd - logDet}`,
      );
      const bSigma = oracleSingularValues({ rows: m, cols: n, data: Float32Array.from(bStored.to1DArray()) });
      for (let i = 0; i < n; i++) {
        assert.ok(
          s[i]! >= 0.99 * bSigma[n - 1]! * sortedD[i]! && s[i]! <= 1.01 * bSigma[0]! * sortedD[i]!,
          `σ_${i} = ${s[i]} within the bounds of d_(${i}) = ${sortedD[i]}`,
        );
      }
      // The Gram route resolves only the top of such a spectrum: the rest within ≈ (n^½·ε₃₂)^½·σ₁ absolute.
      const g = await gramOf(a);
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(g[i]! - s[i]!) <= gramFloor(n, s[0]!), `gram σ_${i}: ${g[i]} vs ${s[i]}`);
      assert.ok(Math.abs(g[0]! - s[0]!) <= 1e-5 * s[0]!);
    }
  });

  it('vectors: A = U·diag(s)·Vᵀ with orthonormal U, V; tall, wide, rank-deficient', async () => {
    for (const [m, n, sigma] of [
      [50, 20, descending(20, (i) => 1 / (i + 1))],
      [20, 50, descending(20, (i) => 1 / (i + 1))],
      [30, 30, [...descending(4, (i) => 5 - i), ...descending(26, () => 0)]],
    ] as const) {
      const { a } = planted(m, n, [...sigma], 21);
      const { s, u, v } = await exactSvd(a, { vectors: true });
      assert.deepEqual([u!.rows, u!.cols, v!.rows, v!.cols], [m, Math.min(m, n), n, Math.min(m, n)]);
      const { residual, uDefect, vDefect } = factorChecks(a, s, u!, v!);
      // u, v are returned in f32: their rounding bounds what these can show.
      assert.ok(residual < 1e-6, `residual ${residual}`);
      assert.ok(uDefect < 1e-6 && vDefect < 1e-6, `orthonormality defects ${uDefect}, ${vDefect}`);
      const { s: values } = await exactSvd(a);
      expectAllClose(s, values, { atol: 100 * EPS64 * s[0]! });
    }
  });

  it('rejects NaN and infinite entries with a message naming the entry', async () => {
    const data = new Float32Array(12);
    data[7] = NaN;
    const a: Matrix = { rows: 3, cols: 4, data };
    await assert.rejects(
      singularValues(a),
      (e: unknown) => e instanceof DeltarankError && /non-finite.*NaN.*row 1, column 3/.test(e.message),
    );
    data[7] = -Infinity;
    await assert.rejects(
      exactSvd(a),
      (e: unknown) => e instanceof DeltarankError && /non-finite.*-Infinity/.test(e.message),
    );
    // The last of 15 entries: past the blocks of four the scan takes at once.
    const odd = new Float32Array(15);
    odd[14] = Infinity;
    await assert.rejects(
      singularValues({ rows: 3, cols: 5, data: odd }),
      (e: unknown) => e instanceof DeltarankError && /non-finite.*Infinity.*row 2, column 4/.test(e.message),
    );
  });
});

describe('exact SVD, Gram route', () => {
  it(`is taken on request (route: 'gram'), and resolves σ ≳ (n^½·ε₃₂)^½·σ₁ (planted 300×200, decaying)`, async () => {
    const sigma = descending(200, (i) => 10 * 0.96 ** i);
    const { a, roundingNorm } = planted(300, 200, sigma, 31);
    const { s, method } = await singularValues(a, { route: 'gram' });
    assert.equal(method, 'gram');
    assert.equal(s.length, 200);
    for (let i = 1; i < s.length; i++) assert.ok(s[i - 1]! >= s[i]! && s[i]! >= 0);
    expectAllClose(s, sigma, { atol: gramFloor(200, sigma[0]!) + roundingNorm });
    // Large values to f32-level relative accuracy: eigenvalue error ≈ ε₃₂·σ₁², halved and divided by σ_i on taking √.
    for (let i = 0; i < 200 && sigma[i]! > 0.1 * sigma[0]!; i++) {
      assert.ok(
        Math.abs(s[i]! - sigma[i]!) <= 1e-5 * sigma[i]! * (sigma[0]! / sigma[i]!) ** 2,
        `σ_${i}: ${s[i]} vs ${sigma[i]}`,
      );
    }
  });

  it('planted flat, clustered and rank-deficient spectra; wide input; the oracle on a random one', async () => {
    const rank = [...descending(20, (i) => 5 - i / 10), ...descending(140, () => 0)];
    for (const [m, n, sigma] of [
      [160, 160, descending(160, () => 2)],
      [170, 250, descending(170, (i) => (i < 85 ? 1.5 : 0.5))],
      [200, 160, rank],
    ] as const) {
      const { a, roundingNorm } = planted(m, n, [...sigma], 41);
      const s = await gramOf(a);
      expectAllClose(s, sigma, { atol: gramFloor(n, sigma[0]!) + roundingNorm });
    }
    const next = gaussian(43);
    const a: Matrix = { rows: 150, cols: 140, data: Float32Array.from({ length: 150 * 140 }, next) };
    const oracle = oracleSingularValues(a);
    expectAllClose(await gramOf(a), oracle, { atol: gramFloor(140, oracle[0]!) });
  });

  it('zero, huge and tiny matrices: scaling keeps the Gram in f32 range', async () => {
    const zero: Matrix = { rows: 140, cols: 130, data: new Float32Array(140 * 130) };
    assert.deepEqual([...(await singularValues(zero)).s], new Array(130).fill(0));
    const sigma = descending(140, (i) => 1 / (1 + i));
    for (const factor of [1e30, 1e-30]) {
      const { a } = planted(
        150,
        140,
        sigma.map((x) => x * factor),
        51,
      );
      const s = await gramOf(a);
      expectAllClose(
        s,
        sigma.map((x) => x * factor),
        { atol: gramFloor(140, factor) },
      );
    }
  });
});

describe('exactIsCheaper', () => {
  it('prefers the randomized top-k for small k on large matrices, exact when k nears min(m, n)', () => {
    assert.equal(exactIsCheaper(4096, 4096, 64), false);
    assert.equal(exactIsCheaper(11008, 4096, 16), false);
    assert.equal(exactIsCheaper(4096, 4096, 4090), true);
    assert.equal(exactIsCheaper(64, 4096, 60), true);
  });

  it('with vectors, weighs Jacobi with vectors at every size (extraction asks this)', () => {
    // Values only: the Gram route beats a randomized sketch of 1010 columns, whose own small SVD is costly.
    assert.equal(exactIsCheaper(4096, 4096, 1000), true);
    // With vectors the exact route is Jacobi on 4096 columns: far dearer.
    assert.equal(exactIsCheaper(4096, 4096, 1000, { vectors: true }), false);
    assert.equal(exactIsCheaper(4096, 4096, 4090, { vectors: true }), true);
  });

  it('switches once as k grows (monotone), with and without vectors', () => {
    for (const vectors of [false, true]) {
      for (const [m, n] of [
        [1024, 1024],
        [4096, 4096],
        [11008, 4096],
        [200, 100],
      ] as const) {
        let switched = false;
        for (let k = 1; k <= Math.min(m, n); k++) {
          const cheaper = exactIsCheaper(m, n, k, { vectors });
          if (switched)
            assert.ok(cheaper, `${m}×${n}, vectors ${vectors}: exact cheaper at some k < ${k} but not at ${k}`);
          switched ||= cheaper;
        }
        assert.ok(switched);
      }
    }
  });
});
