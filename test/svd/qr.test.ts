import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import { matmulPlain64 } from '../../src/svd/gemm.js';
import { type Matrix, transpose } from '../../src/svd/matrix.js';
import {
  compactWyFactor,
  householderQr,
  householderQrColumns,
  householderQrColumnsBlocked,
  orthonormalizeRows,
  reflectorMatrix,
  transposeReflectors,
} from '../../src/svd/qr.js';
import { createRng } from '../../src/svd/random.js';
import { orthogonalityError, planted } from './planted.js';

/** max |yt − rᵀ·qt| / max |yt|, in f64. */
function reconstructionError(yt: Matrix, r: { data: Float64Array }, qt: Matrix): number {
  const { rows: k, cols: len } = yt;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < len; j++) {
      let x = 0;
      for (let p = 0; p <= i; p++) x += r.data[p * k + i]! * qt.data[p * len + j]!;
      worst = Math.max(worst, Math.abs(x - yt.data[i * len + j]!));
      scale = Math.max(scale, Math.abs(yt.data[i * len + j]!));
    }
  }
  return scale > 0 ? worst / scale : worst;
}

function rowsOf(a: Matrix): Matrix {
  return transpose(a);
}

function isUpper(r: { rows: number; data: Float64Array }): boolean {
  for (let i = 0; i < r.rows; i++) for (let j = 0; j < i; j++) if (r.data[i * r.rows + j] !== 0) return false;
  return true;
}

describe('householderQr', () => {
  it('factors a tall matrix: Q orthonormal to f64 precision, R upper, QR = A', () => {
    const rng = createRng(1);
    const a = { rows: 50, cols: 12, data: Float64Array.from({ length: 600 }, () => rng.normal()) };
    const { q, r } = householderQr(a);
    assert.ok(orthogonalityError(q) < 1e-13);
    assert.ok(isUpper(r));
    let worst = 0;
    for (let i = 0; i < 50; i++) {
      for (let j = 0; j < 12; j++) {
        let x = 0;
        for (let p = 0; p < 12; p++) x += q.data[i * 12 + p]! * r.data[p * 12 + j]!;
        worst = Math.max(worst, Math.abs(x - a.data[i * 12 + j]!));
      }
    }
    assert.ok(worst < 1e-12, `‖QR − A‖_max = ${worst}`);
  });

  it('gives an orthonormal Q for a zero or rank-deficient matrix', () => {
    assert.ok(orthogonalityError(householderQr({ rows: 7, cols: 3, data: new Float64Array(21) }).q) < 1e-15);
    const a = planted(30, 6, [1, 1e-3], 2);
    assert.ok(orthogonalityError(householderQr(a).q) < 1e-13);
  });

  it('refuses a wide matrix', () => {
    assert.throws(() => householderQr({ rows: 2, cols: 3, data: new Float64Array(6) }), ShapeError);
  });
});

describe('householderQrColumns', () => {
  it('takes the norm of columns whose squares overflow or underflow: |R₀₀| = ‖column 0‖, R₁₁ exact', () => {
    for (const unit of [1e200, 1e-200, 1]) {
      // Columns [3, 4, 0] and [1, 2, 2] (times unit): ‖c₀‖ = 5, R₀₁ = −11/5, |R₁₁| = √(9 − 121/25) = √104/5.
      const cols = Float64Array.of(3, 4, 0, 1, 2, 2).map((x) => x * unit);
      householderQrColumns(cols, 2, 3);
      assert.ok(Math.abs(Math.abs(cols[0]!) / unit - 5) < 1e-14, `R₀₀ = ${cols[0]} at ${unit}`);
      assert.ok(Math.abs(Math.abs(cols[3]!) / unit - 11 / 5) < 1e-14, `R₀₁ = ${cols[3]} at ${unit}`);
      assert.ok(Math.abs(Math.abs(cols[4]!) / unit - Math.sqrt(104) / 5) < 1e-14, `R₁₁ = ${cols[4]} at ${unit}`);
    }
  });
});

describe('householderQrColumnsBlocked (recursive panels through the GEMM engine)', () => {
  /** p columns of len entries each; `deficient` plants an exactly zero column and a repeated one. */
  function columns(p: number, len: number, seed: number, deficient: boolean): Float64Array {
    const rng = createRng(seed);
    const cols = Float64Array.from({ length: p * len }, () => rng.normal());
    if (deficient) {
      cols.fill(0, 5 * len, 6 * len);
      cols.copyWithin(20 * len, 3 * len, 4 * len);
    }
    return cols;
  }

  for (const [p, len, leaf, deficient] of [
    [40, 90, 16, false],
    [37, 37, 8, false],
    [50, 120, 4, true],
    // A right half too large for the WebAssembly kernel (32 × 69968 values > 2^21), factored from a copy.
    [64, 70000, 32, false],
  ] as const) {
    it(`p=${p} len=${len} leaf=${leaf}${deficient ? ' (a zero and a repeated column)' : ''}: RᵀR = AᵀA, and the plain kernel's R and τ when of full rank`, async () => {
      const a = columns(p, len, p + len, deficient);
      const plain = a.slice();
      const blocked = a.slice();
      const tauPlain = householderQrColumns(plain, p, len);
      const tauBlocked = await householderQrColumnsBlocked(blocked, p, len, leaf);
      let scale = 0;
      for (const x of a) scale = Math.max(scale, Math.abs(x));
      // RᵀR = AᵀA holds for any QR; past a rank drop R itself is not unique (the reflector built
      // from rounding noise points anywhere), so the entrywise match is asked of full-rank panels only.
      let worstGram = 0;
      for (let j = 0; j < p; j++) {
        for (let k = 0; k <= j; k++) {
          let rr = 0;
          let aa = 0;
          for (let i = 0; i <= k; i++) rr += blocked[j * len + i]! * blocked[k * len + i]!;
          for (let i = 0; i < len; i++) aa += a[j * len + i]! * a[k * len + i]!;
          worstGram = Math.max(worstGram, Math.abs(rr - aa));
        }
      }
      assert.ok(worstGram < 1e-12 * len * scale * scale, `RᵀR − AᵀA = ${worstGram}`);
      if (deficient) {
        // The zero column meets no reflector that could fill it: both kernels skip it exactly.
        assert.equal(tauPlain[5], 0);
        assert.equal(tauBlocked[5], 0);
        // The repeated column's remainder is rounding noise in both: R's diagonal there is tiny.
        assert.ok(Math.abs(blocked[20 * len + 20]!) < 1e-12 * scale);
      } else {
        let worstR = 0;
        for (let c = 0; c < p; c++) {
          for (let i = 0; i <= c; i++) worstR = Math.max(worstR, Math.abs(plain[c * len + i]! - blocked[c * len + i]!));
        }
        assert.ok(worstR < 1e-12 * scale, `R differs by ${worstR}`);
        for (let c = 0; c < p; c++) assert.ok(Math.abs(tauPlain[c]! - tauBlocked[c]!) < 1e-12, `τ[${c}]`);
        for (let c = 0; c < p; c++) {
          for (let i = c + 1; i < len; i++) assert.ok(Math.abs(plain[c * len + i]! - blocked[c * len + i]!) < 1e-10);
        }
      }
    });
  }
});

describe('compactWyFactor (recursive halving, corners through the GEMM engine)', () => {
  // Widths below, at and past the plain loops' 32, split unevenly (100 = 64 + 36), and a τ = 0.
  for (const [p, len] of [
    [7, 30],
    [32, 60],
    [100, 180],
    [256, 400],
  ] as const) {
    it(`p=${p} len=${len}: (I − V·T·Vᵀ)·x = H₀⋯H_{p−1}·x, reflector by reflector`, async () => {
      const rng = createRng(p * 7 + len);
      const cols = Float64Array.from({ length: p * len }, () => rng.normal());
      const tau = householderQrColumns(cols, p, len);
      tau[Math.floor(p / 2)] = 0;
      const vt = transposeReflectors(cols, tau, len);
      const vv = matmulPlain64(vt, vt, { transB: true }).data;
      const t = await compactWyFactor(vv, tau, p);
      for (let r = 0; r < p; r++)
        for (let c = 0; c < r; c++) assert.equal(t[r * p + c], 0, `T[${r}, ${c}] below the diagonal`);
      const x = Float64Array.from({ length: len }, () => rng.normal());
      // H₀⋯H_{p−1}·x: the last reflector first, H_c = I − τ_c·v_c·v_cᵀ.
      const direct = x.slice();
      for (let c = p - 1; c >= 0; c--) {
        let dot = 0;
        for (let k = 0; k < len; k++) dot += vt.data[c * len + k]! * direct[k]!;
        for (let k = 0; k < len; k++) direct[k]! -= tau[c]! * dot * vt.data[c * len + k]!;
      }
      const y = new Float64Array(p);
      for (let c = 0; c < p; c++) for (let k = 0; k < len; k++) y[c]! += vt.data[c * len + k]! * x[k]!;
      const ty = new Float64Array(p);
      for (let r = 0; r < p; r++) for (let c = r; c < p; c++) ty[r]! += t[r * p + c]! * y[c]!;
      let worst = 0;
      for (let k = 0; k < len; k++) {
        let vty = 0;
        for (let c = 0; c < p; c++) vty += vt.data[c * len + k]! * ty[c]!;
        worst = Math.max(worst, Math.abs(x[k]! - vty - direct[k]!));
      }
      assert.ok(worst < 1e-12 * Math.sqrt(len), `|(I − V·T·Vᵀ)·x − H₀⋯H_{p−1}·x| = ${worst}`);
    });
  }
});

describe('reflectorMatrix and transposeReflectors into a used array', () => {
  it('write every entry: V and Vᵀ in an array full of NaN equal those in a new one, a column without a reflector zero', () => {
    const [p, len, offset] = [5, 9, 3];
    const rng = createRng(8);
    const cols = Float64Array.from({ length: p * len }, () => rng.normal());
    // A reflector with τ = 0 (H = I) stands for nothing: its column of V is zero, diagonal too.
    const tau = Float64Array.from([0.7, 0, 1.2, 0.4, 0.9]);
    const dirty = () => new Float64Array(200).fill(Number.NaN);
    const v = reflectorMatrix(cols, tau, len, p, offset);
    assert.deepEqual(reflectorMatrix(cols, tau, len, p, offset, dirty()).data, v.data);
    for (let i = 0; i < offset + len; i++) assert.equal(v.data[i * p + 1], 0, `V[${i}, 1]`);
    for (let c = 0; c < p; c++) {
      if (c !== 1) assert.equal(v.data[(offset + c) * p + c], 1, `V's unit diagonal at column ${c}`);
      for (let i = 0; i < offset + c; i++) assert.equal(v.data[i * p + c], 0, `V[${i}, ${c}] above the diagonal`);
    }
    const vt = transposeReflectors(cols, tau, len);
    assert.deepEqual(transposeReflectors(cols, tau, len, dirty()).data, vt.data);
    // In place, `cols` itself becomes Vᵀ.
    const own = cols.slice();
    assert.deepEqual(transposeReflectors(own, tau, len, own).data, vt.data);
    for (let i = 0; i < len; i++)
      for (let c = 0; c < p; c++) assert.equal(vt.data[c * len + i], v.data[(offset + i) * p + c], `Vᵀ[${c}, ${i}]`);
  });
});

describe('orthonormalizeRows (CholeskyQR through the GEMM engine)', () => {
  const cases: { name: string; sigma: number[] }[] = [
    { name: 'well conditioned', sigma: Array.from({ length: 40 }, (_, i) => 1 + i / 40) },
    { name: 'condition 1e6', sigma: Array.from({ length: 40 }, (_, i) => 10 ** ((-6 * i) / 39)) },
    { name: 'numerically rank-deficient (rank 3 of 40)', sigma: [3, 2, 1] },
  ];
  for (const { name, sigma } of cases) {
    it(`${name}: orthonormal rows and yt = rᵀ·qt`, async () => {
      // A [2000, 40] with the planted spectrum, held transposed as the routine expects.
      const yt = rowsOf(planted(2000, 40, sigma, 4));
      const { qt, r, passes } = await orthonormalizeRows(yt);
      assert.ok(orthogonalityError(transpose(qt)) <= 2e-6, `QᵀQ − I: ${orthogonalityError(transpose(qt))}`);
      assert.ok(isUpper(r));
      assert.ok(reconstructionError(yt, r, qt) <= 1e-5, `reconstruction ${reconstructionError(yt, r, qt)}`);
      assert.ok(passes >= 1, 'CholeskyQR should handle this block without Householder');
    });
  }

  it('loose: one pass on a moderately conditioned block, same span, orthonormal to 1e-2', async () => {
    const yt = rowsOf(
      planted(
        2000,
        40,
        Array.from({ length: 40 }, (_, i) => 10 ** ((-2 * i) / 39)),
        6,
      ),
    );
    const { qt, r, passes } = await orthonormalizeRows(yt, { loose: true });
    assert.equal(passes, 1);
    assert.ok(orthogonalityError(transpose(qt)) <= 1e-2);
    assert.ok(reconstructionError(yt, r, qt) <= 1e-5);
  });

  it('falls back to Householder on exactly degenerate blocks (a zero row) and still factors them', async () => {
    const rng = createRng(3);
    const yt = { rows: 5, cols: 300, data: Float32Array.from({ length: 1500 }, () => rng.normal()) };
    yt.data.fill(0, 600, 900);
    const { qt, r, passes } = await orthonormalizeRows(yt);
    assert.equal(passes, 0);
    assert.ok(orthogonalityError(transpose(qt)) <= 1e-6);
    assert.ok(reconstructionError(yt, r, qt) <= 1e-6);
  });

  it('leaves its input untouched and refuses more rows than columns', async () => {
    const yt = rowsOf(
      planted(
        500,
        10,
        Array.from({ length: 10 }, (_, i) => 1 / (i + 1)),
        9,
      ),
    );
    const copy = yt.data.slice();
    await orthonormalizeRows(yt);
    assert.deepEqual(yt.data, copy);
    await assert.rejects(orthonormalizeRows({ rows: 4, cols: 3, data: new Float32Array(12) }), ShapeError);
  });
});
