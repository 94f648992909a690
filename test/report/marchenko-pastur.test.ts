import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Matrix, SVD } from 'ml-matrix';
import { marchenkoPasturQuantiles, randomSpectrumBaseline } from '../../src/report/marchenko-pastur.js';

function midpoints(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (i + 0.5) / n);
}

test('Marchenko–Pastur quantiles reproduce the law’s moments and support', () => {
  for (const y of [1, 0.25, 0.05]) {
    const x = marchenkoPasturQuantiles(y, midpoints(20000));
    let m1 = 0;
    let m2 = 0;
    for (const v of x) {
      m1 += v / x.length;
      m2 += (v * v) / x.length;
    }
    // E[x] = 1, E[x²] = 1 + y for unit variance (Bai & Silverstein 2010, §3.1)
    assert.ok(Math.abs(m1 - 1) < 1e-3, `y=${y}: mean ${m1}`);
    assert.ok(Math.abs(m2 - (1 + y)) < 2e-3, `y=${y}: second moment ${m2}`);
    const [lo, hi] = marchenkoPasturQuantiles(y, [0, 1]);
    assert.ok(Math.abs(lo! - (1 - Math.sqrt(y)) ** 2) < 1e-12, `lower edge ${lo}`);
    assert.ok(Math.abs(hi! - (1 + Math.sqrt(y)) ** 2) < 1e-12, `upper edge ${hi}`);
  }
});

test('square case matches the quarter-circle law of singular values in closed form', () => {
  // y = 1: σ = √x has density √(4 − σ²)/π on [0, 2], CDF (σ√(4 − σ²)/2 + 2·asin(σ/2))/π
  const probs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99];
  const x = marchenkoPasturQuantiles(1, probs);
  probs.forEach((p, i) => {
    const s = Math.sqrt(x[i]!);
    const cdf = ((s * Math.sqrt(4 - s * s)) / 2 + 2 * Math.asin(s / 2)) / Math.PI;
    assert.ok(Math.abs(cdf - p) < 1e-6, `p=${p}: CDF at the quantile is ${cdf}`);
  });
});

test('baseline keeps the Frobenius norm and sits at the known edges', () => {
  for (const [m, n] of [
    [1000, 1000],
    [4000, 1000],
    [256, 2048],
  ] as const) {
    const frob = 3.7;
    const s = randomSpectrumBaseline(m, n, frob);
    assert.equal(s.length, Math.min(m, n));
    let sum = 0;
    for (let i = 0; i < s.length; i++) {
      sum += s[i]! ** 2;
      if (i > 0) assert.ok(s[i]! <= s[i - 1]!, 'descending');
    }
    assert.ok(Math.abs(sum - frob * frob) < 1e-9 * frob * frob, `Σσ² = ${sum}`);
    const entry = frob / Math.sqrt(m * n);
    const top = (Math.sqrt(m) + Math.sqrt(n)) * entry;
    const bottom = Math.abs(Math.sqrt(m) - Math.sqrt(n)) * entry;
    assert.ok(Math.abs(s[0]! / top - 1) < 0.02, `[${m}, ${n}] largest ${s[0]} vs edge ${top}`);
    if (m !== n)
      assert.ok(
        Math.abs(s[s.length - 1]! / bottom - 1) < 0.03,
        `[${m}, ${n}] smallest ${s[s.length - 1]} vs edge ${bottom}`,
      );
    const picked = randomSpectrumBaseline(m, n, frob, [1, 7, s.length]);
    assert.deepEqual(Array.from(picked), [s[0], s[6], s[s.length - 1]]);
  }
});

test('baseline matches the singular values of a sampled Gaussian matrix', () => {
  let seed = 12345;
  const uniform = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const m = 600;
  const n = 240;
  const rows = Array.from({ length: m }, () => Array.from({ length: n }, gauss));
  const sampled = new SVD(new Matrix(rows), { computeLeftSingularVectors: false, computeRightSingularVectors: false })
    .diagonal;
  const frob = Math.sqrt(sampled.reduce((a, v) => a + v * v, 0));
  const base = randomSpectrumBaseline(m, n, frob);
  // The bulk is rigid at this size; the values nearest the lower edge carry the largest finite-size shift.
  let bulk = 0;
  let all = 0;
  for (let i = 0; i < n; i++) {
    const gap = Math.abs(base[i]! / sampled[i]! - 1);
    all = Math.max(all, gap);
    if (i < 0.9 * n) bulk = Math.max(bulk, gap);
  }
  assert.ok(bulk < 0.03, `largest relative gap over the top 90 %: ${bulk}`);
  assert.ok(all < 0.05, `largest relative gap: ${all}`);
});

test('bad arguments are refused', () => {
  assert.throws(() => marchenkoPasturQuantiles(0, [0.5]), RangeError);
  assert.throws(() => marchenkoPasturQuantiles(1.5, [0.5]), RangeError);
  assert.throws(() => randomSpectrumBaseline(10, 4, 1, [5]), RangeError);
  assert.throws(() => randomSpectrumBaseline(10, 4, 1, [0]), RangeError);
});
