/**
 * The noise baseline of the scree plots: the singular values a Gaussian random matrix of
 * the same shape and Frobenius norm would have, from the Marchenko–Pastur law
 * (Marchenko & Pastur 1967; Bai & Silverstein 2010, ch. 3).
 */

/** Midpoint-rule cells of the CDF table; the integrand is smooth in θ, so 4096 cells put the quantiles within ~1e-7. */
const CDF_CELLS = 4096;

/**
 * Quantiles of the Marchenko–Pastur law with ratio y = n/m ∈ (0, 1] and unit variance: the
 * limiting distribution of the eigenvalues of XᵀX/m for X [m, n] with iid N(0, 1) entries.
 * Support [a, b] = [(1−√y)², (1+√y)²], density √((b−x)(x−a)) / (2π·y·x).
 * With x = c − r·cos θ (c, r the support's centre and half-width) the density becomes the
 * smooth r²·sin²θ / (2π·y·x) on θ ∈ [0, π], free of the square-root edges; its CDF is
 * tabulated once and inverted by interpolation. Cost O(CDF_CELLS + p·log CDF_CELLS).
 *
 * @param probs probabilities in [0, 1], any order
 * @example marchenkoPasturQuantiles(1, [0.5]) // the median eigenvalue for a square matrix
 */
export function marchenkoPasturQuantiles(y: number, probs: ArrayLike<number>): Float64Array {
  if (!(y > 0 && y <= 1)) throw new RangeError(`Marchenko–Pastur ratio must be in (0, 1], got ${y}`);
  const sq = Math.sqrt(y);
  const a = (1 - sq) ** 2;
  const b = (1 + sq) ** 2;
  const c = (a + b) / 2;
  const r = (b - a) / 2;
  const h = Math.PI / CDF_CELLS;
  const cdf = new Float64Array(CDF_CELLS + 1);
  for (let j = 0; j < CDF_CELLS; j++) {
    const t = (j + 0.5) * h;
    const sin = Math.sin(t);
    cdf[j + 1] = cdf[j]! + ((r * r * sin * sin) / (2 * Math.PI * y * (c - r * Math.cos(t)))) * h;
  }
  const total = cdf[CDF_CELLS]!;
  const out = new Float64Array(probs.length);
  for (let i = 0; i < probs.length; i++) {
    const target = Math.min(1, Math.max(0, probs[i]!)) * total;
    let lo = 0;
    let hi = CDF_CELLS;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! <= target) lo = mid;
      else hi = mid;
    }
    const cell = cdf[hi]! - cdf[lo]!;
    const theta = (lo + (cell > 0 ? (target - cdf[lo]!) / cell : 0)) * h;
    out[i] = c - r * Math.cos(theta);
  }
  return out;
}

/**
 * Expected singular values, descending, of a [rows, cols] matrix with iid Gaussian entries
 * scaled so that Σσ_i² over all min(rows, cols) values equals frobNorm²: σ_i ∝ √x_i with x_i
 * the Marchenko–Pastur quantile at 1 − (i − ½)/n. The largest sits near (√m + √n)·s with
 * s = frobNorm / √(m·n), the smallest near (√m − √n)·s.
 * Cost O(n·log CDF_CELLS) for n = min(rows, cols), whatever `ranks` asks for.
 *
 * @param ranks 1-based indices to return (default: all 1..n)
 * @example randomSpectrumBaseline(4096, 4096, 0.71, [1, 2, 4, 8])
 */
export function randomSpectrumBaseline(
  rows: number,
  cols: number,
  frobNorm: number,
  ranks?: ArrayLike<number>,
): Float64Array {
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  if (!(n >= 1)) throw new RangeError(`random spectrum baseline needs a non-empty matrix, got [${rows}, ${cols}]`);
  const probs = new Float64Array(n);
  for (let i = 0; i < n; i++) probs[i] = 1 - (i + 0.5) / n;
  const x = marchenkoPasturQuantiles(n / m, probs);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i]!;
  const scale = sum > 0 ? frobNorm / Math.sqrt(sum) : 0;
  const want = ranks ?? Array.from({ length: n }, (_, i) => i + 1);
  const out = new Float64Array(want.length);
  for (let j = 0; j < want.length; j++) {
    const i = want[j]!;
    if (!(Number.isInteger(i) && i >= 1 && i <= n)) throw new RangeError(`rank ${i} outside 1..${n}`);
    out[j] = Math.sqrt(x[i - 1]!) * scale;
  }
  return out;
}
