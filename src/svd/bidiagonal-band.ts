/**
 * First stage of the two-stage bidiagonalisation (Großer & Lang 1999; Ltaief, Luszczek &
 * Dongarra 2013, the dense → band step of LAPACK's dgesvd2stage): a dense m×n matrix (m ≥ n)
 * to upper band form of bandwidth b by alternating Householder QR of b-column panels (reflectors
 * from the left) and LQ of b-row panels (from the right). A panel pair's updates of the trailing
 * matrix, A ← (I − V·T·Vᵀ)ᵀ·A·(I − V_R·T_R·V_Rᵀ) (compact WY form, Schreiber & Van Loan 1989),
 * are three plain MatMuls of the f64 GEMM engine (Vᵀ·A, A·V_R and one product of inner size
 * 2b for both) and one pass here that subtracts it while compacting the next trailing matrix;
 * the panel factorizations, n·b² flops in all, run here. Everything is f64, so the band's singular values are A's to
 * ≈ √(m·n)·ε₆₄·‖A‖ (backward stable, no squaring of the condition number).
 */

import { matmul64 } from './gemm.js';
import type { Matrix64 } from './matrix.js';
import { compactWyFactor, householderQrColumns } from './qr.js';

/**
 * An upper band matrix of bandwidth b with room for the chase that follows: entry (i, j),
 * i − 1 ≤ j ≤ i + b + 1, at data[i·width + j − i + 1], width = b + 3 (one sub-diagonal and one
 * diagonal beyond the band hold the bulges).
 */
export interface UpperBand {
  n: number;
  b: number;
  width: number;
  data: Float64Array;
}

/** An empty upper band storage for an n×n matrix of bandwidth b. */
export function upperBand(n: number, b: number): UpperBand {
  const width = b + 3;
  return { n, b, width, data: new Float64Array(n * width) };
}

/**
 * Reduce `a` (f64 [m, n] row-major, m ≥ n; overwritten with scratch) to an upper band matrix of
 * bandwidth b whose singular values are a's (orthogonal transformations from both sides).
 * Cost ≈ 4·m·n² − 4/3·n³ flops in f64 products plus 2·(m + n)·n·b and ≈ n³/(3b) subtractions
 * here; memory two more m×n f64 arrays (the next trailing matrix and the engine's output,
 * both reused from panel to panel).
 * @example const band = await denseToUpperBand({ rows: m, cols: n, data }, 32);
 */
export async function denseToUpperBand(a: Matrix64, b: number): Promise<UpperBand> {
  const { rows: m, cols: n } = a;
  if (m < n) throw new RangeError(`denseToUpperBand: needs rows ≥ cols, got ${m}×${n}`);
  if (!Number.isInteger(b) || b < 1)
    throw new RangeError(`denseToUpperBand: bandwidth must be a positive integer, got ${b}`);
  const band = upperBand(n, b);
  const W = band.width;
  const out = band.data;
  const put = (i: number, j: number, v: number) => {
    out[i * W + j - i + 1] = v;
  };
  // s: the trailing matrix, rows and columns from global k on, contiguous [M, N].
  let s: Float64Array = a.data;
  // The trailing matrices alternate between a's array and this one: fresh arrays each panel
  // cost more in page faults than the pass that fills them.
  let spare: Float64Array = new Float64Array(m * n);
  // The big product of each panel, written here by the engine.
  const product = new Float64Array(Math.max(0, m - Math.min(b, n)) * Math.max(0, n - Math.min(b, n)));
  let M = m;
  let N = n;
  let k = 0;
  while (N > 0) {
    const bb = Math.min(b, N);
    // Left: QR of the column panel s[:, 0:bb].
    const { cols, tau } = panelQr(s, M, N, bb);
    for (let c = 0; c < bb; c++) for (let i = 0; i <= Math.min(c, M - 1); i++) put(k + i, k + c, cols[c * M + i]!);
    if (N === bb) break;
    const { v, w } = await leftUpdateFactors(s, M, N, cols, tau);
    const p = tau.length;
    // The panel's rows after the left update, s[0:bb] − V[0:bb]·W, to the right of the panel.
    const len = N - bb;
    const head = (await matmul64({ rows: bb, cols: p, data: v.data.subarray(0, bb * p) }, w)).data;
    const rowsT = new Float64Array(bb * len);
    for (let r = 0; r < bb; r++) {
      const o = r * N + bb;
      for (let c = 0; c < len; c++) rowsT[r * len + c] = s[o + c]! - head[o + c]!;
    }
    // Right: LQ of the row panel, the QR of its transpose.
    const tauR = householderQrColumns(rowsT, bb, len);
    // The panel becomes [L 0], L = Rᵀ lower triangular: entry (r, c) = R(c, r), c ≤ r.
    for (let r = 0; r < bb; r++)
      for (let c = 0; c <= Math.min(r, len - 1); c++) put(k + r, k + bb + c, rowsT[r * len + c]!);
    const below = M - bb;
    if (below === 0) break;
    const pR = tauR.length;
    // V_R padded with bb zero rows on top, so whole rows of s multiply it without a column slice.
    const vR = reflectorMatrix(rowsT, tauR, len, pR, N, bb);
    const tR = await wyFactor({ rows: len, cols: pR, data: vR.data.subarray(bb * pR) }, tauR);
    // Both updates of the rows below the panel in one product (the left one is not yet applied
    // there): S' = S − V·W, then S'' = S' − (S'·V_R·T_R)·V_Rᵀ with S'·V_R = S·V_R − V·(W·V_R), so
    // S'' = S − [V | Z]·[W; V_Rᵀ], Z = (S·V_R − V·(W·V_R))·T_R: one pass over s in all.
    const vBelow: Matrix64 = { rows: below, cols: p, data: v.data.subarray(bb * p) };
    const sv = await matmul64({ rows: below, cols: N, data: s.subarray(bb * N) }, vR);
    const vwv = await matmul64(vBelow, await matmul64(w, vR));
    for (let i = 0; i < sv.data.length; i++) sv.data[i]! -= vwv.data[i]!;
    const z = await matmul64(sv, tR);
    const left = new Float64Array(below * (p + pR));
    for (let i = 0; i < below; i++) {
      left.set(vBelow.data.subarray(i * p, i * p + p), i * (p + pR));
      left.set(z.data.subarray(i * pR, i * pR + pR), i * (p + pR) + p);
    }
    // [W[:, bb:]; V_Rᵀ] [p + pR, len]: V_Rᵀ's rows are rowsT's with the unit diagonal and zeros above.
    const right = new Float64Array((p + pR) * len);
    for (let r = 0; r < p; r++) right.set(w.data.subarray(r * N + bb, r * N + N), r * len);
    for (let c = 0; c < pR; c++) {
      if (tauR[c] === 0) continue;
      const o = (p + c) * len;
      right[o + c] = 1;
      right.set(rowsT.subarray(c * len + c + 1, c * len + len), o + c + 1);
    }
    const prod = (
      await matmul64(
        { rows: below, cols: p + pR, data: left },
        { rows: p + pR, cols: len, data: right },
        { into: product },
      )
    ).data;
    const next = subtractCompacted(s, N, bb, prod, below, len, spare);
    spare = s;
    s = next;
    k += bb;
    M -= bb;
    N -= bb;
  }
  return band;
}

/**
 * R of the QR factorisation a = Q·R of a tall `a` (f64 [m, n], m ≥ n; overwritten with scratch),
 * by the same left panels as `denseToUpperBand` without the right ones: [n, n] upper triangular,
 * with a's singular values. Taken first when m is well above n, where it halves the passes over
 * the long side. Cost ≈ 2·m·n² − ⅔·n³ flops in f64 products; memory two more m×n f64 arrays.
 * @example const r = await blockedQrR({ rows: 4096, cols: 512, data }, 32);
 */
export async function blockedQrR(a: Matrix64, b: number): Promise<Matrix64> {
  const { rows: m, cols: n } = a;
  if (m < n) throw new RangeError(`blockedQrR: needs rows ≥ cols, got ${m}×${n}`);
  const r = new Float64Array(n * n);
  let s: Float64Array = a.data;
  let spare: Float64Array = new Float64Array(m * n);
  const product = new Float64Array(m * n);
  let M = m;
  let N = n;
  let k = 0;
  while (N > 0) {
    const bb = Math.min(b, N);
    const { cols, tau } = panelQr(s, M, N, bb);
    for (let c = 0; c < bb; c++)
      for (let i = 0; i <= Math.min(c, M - 1); i++) r[(k + i) * n + k + c] = cols[c * M + i]!;
    if (N === bb) break;
    const { v, w } = await leftUpdateFactors(s, M, N, cols, tau);
    const prod = (await matmul64(v, w, { into: product })).data;
    const size = N - bb;
    // R's rows k … k + bb to the right of the panel, then the trailing matrix, compacted.
    for (let q = 0; q < bb; q++) {
      const o = q * N + bb;
      const ro = (k + q) * n + k + bb;
      for (let c = 0; c < size; c++) r[ro + c] = s[o + c]! - prod[o + c]!;
    }
    const next = subtractCompacted(s, N, bb, prod.subarray(bb * N), M - bb, size, spare, N);
    spare = s;
    s = next;
    k += bb;
    M -= bb;
    N -= bb;
  }
  return { rows: n, cols: n, data: r };
}

/**
 * The left update S ← (I − V·T·Vᵀ)ᵀ·S = S − V·W of the trailing matrix s [M, N] by the panel's
 * reflectors (`cols`, `tau` of `panelQr`): V [M, p] and W = Tᵀ·(Vᵀ·S) [p, N], not applied.
 * Vᵀ is formed too, so that every product is a plain MatMul (the engine's double Gemm with a
 * transpose or an added C runs at a third to a sixth of its MatMul rate here).
 */
async function leftUpdateFactors(
  s: Float64Array,
  M: number,
  N: number,
  cols: Float64Array,
  tau: Float64Array,
): Promise<{ v: Matrix64; w: Matrix64 }> {
  const p = tau.length;
  const vt = new Float64Array(p * M);
  for (let c = 0; c < p; c++) {
    if (tau[c] === 0) continue;
    vt[c * M + c] = 1;
    vt.set(cols.subarray(c * M + c + 1, c * M + M), c * M + c + 1);
  }
  const v = reflectorMatrix(cols, tau, M, p, M, 0);
  const t = compactWyFactor((await matmul64({ rows: p, cols: M, data: vt }, v)).data, tau, p);
  const x = await matmul64({ rows: p, cols: M, data: vt }, { rows: M, cols: N, data: s });
  const w = await matmul64({ rows: p, cols: p, data: transposeSmall(t, p) }, x);
  return { v, w };
}

/** Tᵀ of a p×p row-major matrix. */
function transposeSmall(t: Float64Array, p: number): Float64Array {
  const out = new Float64Array(p * p);
  for (let r = 0; r < p; r++) for (let c = 0; c < p; c++) out[c * p + r] = t[r * p + c]!;
  return out;
}

/**
 * The new trailing matrix s[bb:, bb:] − prod, contiguous [rows, size] at the start of `into`
 * (another array than s), in one pass; s is [·, N], prod [rows, size] (or row stride
 * `prodStride` with the same column offset bb).
 */
function subtractCompacted(
  s: Float64Array,
  N: number,
  bb: number,
  prod: Float64Array,
  rows: number,
  size: number,
  into: Float64Array,
  prodStride = 0,
): Float64Array {
  const next = into.subarray(0, rows * size);
  for (let i = 0; i < rows; i++) {
    const so = (i + bb) * N + bb;
    const po = prodStride ? i * prodStride + bb : i * size;
    const no = i * size;
    for (let c = 0; c < size; c++) next[no + c] = s[so + c]! - prod[po + c]!;
  }
  return next;
}

/**
 * The reflectors of `householderQrColumns` (p of them, over `len` entries, stored in `cols` rows)
 * as a row-major [rows, p] matrix V with unit diagonal, placed from row `offset` (zeros above).
 */
function reflectorMatrix(
  cols: Float64Array,
  tau: Float64Array,
  len: number,
  p: number,
  rows: number,
  offset: number,
): Matrix64 {
  const data = new Float64Array(rows * p);
  for (let c = 0; c < p; c++) {
    if (tau[c] === 0) continue;
    data[(offset + c) * p + c] = 1;
    for (let i = c + 1; i < len; i++) data[(offset + i) * p + c] = cols[c * len + i]!;
  }
  return { rows, cols: p, data };
}

/** Householder QR of the leading `bb` columns of `s` [M, N] row-major: the reflectors as rows of `cols` [bb, M] (householderQrColumns' layout) and their τ. */
function panelQr(s: Float64Array, M: number, N: number, bb: number): { cols: Float64Array; tau: Float64Array } {
  const cols = new Float64Array(bb * M);
  for (let i = 0; i < M; i++) for (let c = 0; c < bb; c++) cols[c * M + i] = s[i * N + c]!;
  return { cols, tau: householderQrColumns(cols, bb, M) };
}

/** The T of Q = H₀⋯H_{p−1} = I − V·T·Vᵀ for the reflectors V [len, p] (qr.ts's compactWyFactor), [p, p]. */
async function wyFactor(v: Matrix64, tau: Float64Array): Promise<Matrix64> {
  const p = v.cols;
  return { rows: p, cols: p, data: compactWyFactor((await matmul64(v, v, { transA: true })).data, tau, p) };
}
