/**
 * First stage of the two-stage bidiagonalisation (Großer & Lang 1999; Ltaief, Luszczek &
 * Dongarra 2013, the dense → band step of LAPACK's dgesvd2stage): a dense m×n matrix (m ≥ n)
 * to upper band form of bandwidth b by alternating Householder QR of b-column panels (reflectors
 * from the left) and LQ of b-row panels (from the right). Each panel's update of the trailing
 * matrix, A ← (I − V·T·Vᵀ)ᵀ·A or A·(I − V·T·Vᵀ), is two products and one C − X·Y pass through
 * the f64 GEMM engine (compact WY form, Schreiber & Van Loan 1989); the panel factorizations,
 * n·b² flops in all, run here. Everything is f64, so the band's singular values are A's to
 * ≈ √(m·n)·ε₆₄·‖A‖ (backward stable, no squaring of the condition number).
 */

import { matmul64, subtractProduct64 } from './gemm.js';
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
 * Cost ≈ 4·m·n² − 4/3·n³ flops in f64 products plus 2·(m + n)·n·b here; memory one more m×n
 * f64 array at a time (the engine's output), the input's own array is released as it shrinks.
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
  let s = a.data;
  let M = m;
  let N = n;
  let k = 0;
  while (N > 0) {
    const bb = Math.min(b, N);
    // Left: QR of the column panel s[:, 0:bb].
    const { cols, tau } = panelQr(s, M, N, bb);
    for (let c = 0; c < bb; c++) for (let i = 0; i <= Math.min(c, M - 1); i++) put(k + i, k + c, cols[c * M + i]!);
    if (N === bb) break;
    const p = tau.length;
    const v = reflectorMatrix(cols, tau, M, p, M, 0);
    const t = await wyFactor(v, tau);
    // s ← s − V·(Tᵀ·(Vᵀ·s)); the panel's own columns come out as [R; 0], unused.
    const vts = await matmul64(v, { rows: M, cols: N, data: s }, { transA: true });
    const w = (await matmul64(t, vts, { transA: true })).data;
    // Handed over transposed ([N, p]): the engine's double Gemm runs C − X·Yᵀ several times faster than C − X·Y here.
    const wt = new Float64Array(N * p);
    for (let r = 0; r < p; r++) for (let c = 0; c < N; c++) wt[c * p + r] = w[r * N + c]!;
    s = (await subtractProduct64({ rows: M, cols: N, data: s }, v, { rows: N, cols: p, data: wt }, { transB: true }))
      .data;
    // Right: LQ of the row panel s[0:bb, bb:N], the QR of its transpose.
    const len = N - bb;
    const rowsT = new Float64Array(bb * len);
    for (let r = 0; r < bb; r++) rowsT.set(s.subarray(r * N + bb, r * N + N), r * len);
    const tauR = householderQrColumns(rowsT, bb, len);
    // The panel becomes [L 0], L = Rᵀ lower triangular: entry (r, c) = R(c, r), c ≤ r.
    for (let r = 0; r < bb; r++)
      for (let c = 0; c <= Math.min(r, len - 1); c++) put(k + r, k + bb + c, rowsT[r * len + c]!);
    const below = M - bb;
    if (below > 0) {
      const pR = tauR.length;
      // V_R padded with bb zero rows on top, so whole rows of s multiply it without a column slice.
      const vR = reflectorMatrix(rowsT, tauR, len, pR, N, bb);
      const tR = await wyFactor({ rows: len, cols: pR, data: vR.data.subarray(bb * pR) }, tauR);
      const rest: Matrix64 = { rows: below, cols: N, data: s.subarray(bb * N) };
      const z = await matmul64(await matmul64(rest, vR), tR);
      const updated = (await subtractProduct64(rest, z, vR, { transB: true })).data;
      // The new trailing matrix: columns bb … N of the rows below the panel, compacted.
      const size = N - bb;
      const next = new Float64Array(below * size);
      for (let i = 0; i < below; i++) next.set(updated.subarray(i * N + bb, i * N + N), i * size);
      s = next;
    } else s = new Float64Array(0);
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
 * the long side. Cost ≈ 2·m·n² − ⅔·n³ flops in f64 products.
 * @example const r = await blockedQrR({ rows: 4096, cols: 512, data }, 32);
 */
export async function blockedQrR(a: Matrix64, b: number): Promise<Matrix64> {
  const { rows: m, cols: n } = a;
  if (m < n) throw new RangeError(`blockedQrR: needs rows ≥ cols, got ${m}×${n}`);
  const r = new Float64Array(n * n);
  let s = a.data;
  let M = m;
  let N = n;
  let k = 0;
  while (N > 0) {
    const bb = Math.min(b, N);
    const { cols, tau } = panelQr(s, M, N, bb);
    for (let c = 0; c < bb; c++)
      for (let i = 0; i <= Math.min(c, M - 1); i++) r[(k + i) * n + k + c] = cols[c * M + i]!;
    if (N === bb) break;
    const p = tau.length;
    const v = reflectorMatrix(cols, tau, M, p, M, 0);
    const t = await wyFactor(v, tau);
    const w = (await matmul64(t, await matmul64(v, { rows: M, cols: N, data: s }, { transA: true }), { transA: true }))
      .data;
    const wt = new Float64Array(N * p);
    for (let q = 0; q < p; q++) for (let c = 0; c < N; c++) wt[c * p + q] = w[q * N + c]!;
    const updated = (
      await subtractProduct64({ rows: M, cols: N, data: s }, v, { rows: N, cols: p, data: wt }, { transB: true })
    ).data;
    // R's rows k … k + bb to the right of the panel, then the trailing matrix, compacted.
    for (let q = 0; q < bb; q++) r.set(updated.subarray(q * N + bb, q * N + N), (k + q) * n + k + bb);
    const size = N - bb;
    const next = new Float64Array(Math.max(0, M - bb) * size);
    for (let i = bb; i < M; i++) next.set(updated.subarray(i * N + bb, i * N + N), (i - bb) * size);
    s = next;
    k += bb;
    M -= bb;
    N -= bb;
  }
  return { rows: n, cols: n, data: r };
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
