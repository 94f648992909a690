/**
 * First stage of the two-stage bidiagonalisation (Großer & Lang 1999; Ltaief, Luszczek &
 * Dongarra 2013, the dense → band step of LAPACK's dgesvd2stage): a dense m×n matrix (m ≥ n)
 * to upper band form of bandwidth b by alternating Householder QR of b-column panels (reflectors
 * from the left) and LQ of b-row panels (from the right). A panel pair's update of the trailing
 * matrix, A ← (I − V·T·Vᵀ)ᵀ·A·(I − V_R·T_R·V_Rᵀ) (compact WY form, Schreiber & Van Loan 1989),
 * is A − [V | Z]·[W; V_Rᵀ]; `delay` pairs' factors are stacked into L·R and subtracted once, by
 * one product of inner size 2·b·delay and one pass here that also compacts the next trailing
 * matrix, while each panel sees its own columns and rows brought up to date by thin products.
 * All products are plain MatMuls of the f64 GEMM engine; the panel factorizations, ≈ 2·n²·b flops
 * in all, run here. Everything is f64, so the band's singular values are A's to
 * ≈ √(m·n)·ε₆₄·‖A‖ (backward stable, no squaring of the condition number).
 */

import { matmul64, OUTPUT_BLOCK_BYTES, subtractProduct64 } from './gemm.js';
import { type Matrix, type Matrix64, transpose } from './matrix.js';
import {
  compactWy,
  compactWyFactor,
  householderQrColumns,
  householderQrColumnsBlocked,
  reflectorMatrix,
  wyFactors,
} from './qr.js';
import { returnScratch64, takeScratch64 } from './scratch.js';

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
 * Panel pairs whose trailing update is delayed and applied in one product: the product's inner
 * size grows to 2·b·delay (the engine's f64 MatMul at 4096² runs ≈ 53 GFLOP/s at inner size 256
 * and ≈ 83 at 512) and the subtracting pass over the trailing matrix runs once per block.
 */
export const BAND_DELAY = 8;

/**
 * Reduce `a` (f64 [m, n] row-major, m ≥ n; overwritten with scratch) to an upper band matrix of
 * bandwidth b whose singular values are a's (orthogonal transformations from both sides).
 * Panels are taken `delay` at a time (LAPACK dlabrd's delayed update, by panels): within a
 * block the trailing matrix is S₀ − L·R, never formed; each panel's columns and rows are brought
 * up to date by thin products, and L·R is subtracted once at the block's end.
 * Cost ≈ 4·m·n² − 4/3·n³ flops in f64 products (plus ≈ 4·m·n·b·delay in the thin ones) and
 * 2·(m + n)·n·b and ≈ n³/(3·b·delay) subtractions here; memory the delayed update's factors,
 * 2·b·delay·(m + n) f64, and one block of the engine's output (`subtractCompacted`).
 * @example const band = await denseToUpperBand({ rows: m, cols: n, data }, 32);
 */
export async function denseToUpperBand(
  a: Matrix64,
  b: number,
  delay = BAND_DELAY,
  outputBlock = UPDATE_BLOCK_VALUES,
): Promise<UpperBand> {
  const { rows: m, cols: n } = a;
  if (m < n) throw new RangeError(`denseToUpperBand: needs rows ≥ cols, got ${m}×${n}`);
  if (!Number.isInteger(b) || b < 1)
    throw new RangeError(`denseToUpperBand: bandwidth must be a positive integer, got ${b}`);
  if (!Number.isInteger(delay) || delay < 1)
    throw new RangeError(`denseToUpperBand: delay must be a positive integer, got ${delay}`);
  const band = upperBand(n, b);
  const W = band.width;
  const out = band.data;
  const put = (i: number, j: number, v: number) => {
    out[i * W + j - i + 1] = v;
  };
  const block = takeScratch64(updateBlockValues(m, n, outputBlock));
  // The delayed update S₀ − L·R: L [M0, q] holds each panel pair's [V | Z], R [q, N0] its
  // [W; V_Rᵀ]; columns of L and rows of R not yet used are zero, so every product may run over all q.
  const q = 2 * Math.min(b, n) * delay;
  const Lbuf = takeScratch64(m * q);
  const Rbuf = takeScratch64(q * n);
  let M0 = m;
  let N0 = n;
  let k = 0;
  try {
    for (;;) {
      // The trailing matrix at the block's start, rows and columns from global k on, contiguous [M0, N0].
      const s = a.data.subarray(0, M0 * N0);
      const L: Matrix64 = { rows: M0, cols: q, data: Lbuf.subarray(0, M0 * q) };
      const R: Matrix64 = { rows: q, cols: N0, data: Rbuf.subarray(0, q * N0) };
      L.data.fill(0);
      R.data.fill(0);
      let used = 0;
      let o = 0;
      for (let panel = 0; panel < delay; panel++) {
        const M = M0 - o;
        const N = N0 - o;
        const bb = Math.min(b, N);
        // Left: QR of the current column panel, S₀[o:, o:o+bb] − L[o:]·R[:, o:o+bb].
        const cols = await currentColumns(s, N0, o, M, bb, used > 0 ? rowsFrom(L, o) : null, R);
        const tau = householderQrColumns(cols, bb, M);
        for (let c = 0; c < bb; c++)
          for (let i = 0; i <= Math.min(c, M - 1); i++) put(k + o + i, k + o + c, cols[c * M + i]!);
        if (N === bb) return band;
        const p = tau.length;
        const { v, vt, t } = await compactWy(cols, tau, M);
        // W = Tᵀ·Vᵀ·(S₀[o:] − L[o:]·R) over all N0 columns (those left of o + bb are never read).
        // Vᵀ·S as (Sᵀ·V)ᵀ: the engine's Gemm reading S transposed runs this thin product in 8.8 ms
        // at 4096² against 13.2 for MatMul, which packs all of S.
        const x = transpose(
          await matmul64({ rows: M, cols: N0, data: s.subarray(o * N0) }, vt, { transA: true, transB: true }),
        );
        if (used > 0) subtractInPlace(x, await matmul64(await matmul64(vt, rowsFrom(L, o)), R));
        const w = await matmul64(transpose({ rows: p, cols: p, data: t }), x);
        // [V | ·] joins L from the panel's first row (its own rows are read in this panel only) and
        // W right of the panel joins R: from here L·R is the block's whole update so far, so each
        // correction below is one product where it was two.
        copyRows(v.data, p, L.data, o * q + used, q, M);
        for (let r = 0; r < p; r++) R.data.set(w.data.subarray(r * N0 + o + bb, r * N0 + N0), (used + r) * N0 + o + bb);
        // The panel's rows after the left update, to the right of the panel.
        const len = N - bb;
        const rowsT = new Float64Array(bb * len);
        const pending = (await matmul64(rowsFrom(L, o, bb), R)).data;
        for (let r = 0; r < bb; r++) {
          const so = (o + r) * N0 + o + bb;
          const po = r * N0 + o + bb;
          for (let c = 0; c < len; c++) rowsT[r * len + c] = s[so + c]! - pending[po + c]!;
        }
        // Right: LQ of the row panel, the QR of its transpose.
        const tauR = householderQrColumns(rowsT, bb, len);
        // The panel becomes [L 0], L = Rᵀ lower triangular: entry (r, c) = R(c, r), c ≤ r.
        for (let r = 0; r < bb; r++)
          for (let c = 0; c <= Math.min(r, len - 1); c++) put(k + o + r, k + o + bb + c, rowsT[r * len + c]!);
        const below = M - bb;
        if (below === 0) return band;
        const pR = tauR.length;
        // V_R over all N0 columns, zero left of o + bb, so whole rows of S₀ multiply it.
        const vR = reflectorMatrix(rowsT, tauR, len, pR, o + bb);
        const tR = await wyFactor({ rows: len, cols: pR, data: vR.data.subarray((o + bb) * pR) }, tauR);
        // Z = (S'·V_R)·T_R over the rows below the panel, S' = S₀ − L·R the left-updated current matrix.
        const sv = await matmul64({ rows: below, cols: N0, data: s.subarray((o + bb) * N0) }, vR);
        subtractInPlace(sv, await matmul64(rowsFrom(L, o + bb), await matmul64(R, vR)));
        const z = await matmul64(sv, tR);
        // Z joins L below the panel, V_Rᵀ joins R.
        copyRows(z.data, pR, L.data, (o + bb) * q + used + p, q, below);
        for (let c = 0; c < pR; c++) {
          if (tauR[c] === 0) continue;
          const ro = (used + p + c) * N0 + o + bb;
          R.data[ro + c] = 1;
          R.data.set(rowsT.subarray(c * len + c + 1, c * len + len), ro + c + 1);
        }
        used += p + pR;
        o += bb;
      }
      // The block's update, once: the next trailing matrix S₀[o:, o:] − L[o:]·R[:, o:], compacted.
      await subtractCompacted(s, s, N0, o, rowsFrom(L, o), columnsFrom(R, o), block);
      k += o;
      M0 -= o;
      N0 -= o;
    }
  } finally {
    returnScratch64(block, Lbuf, Rbuf);
  }
}

/** Rows `from` … `from + count` (default: to the end) of a row-major matrix, as a matrix sharing its storage. */
function rowsFrom(x: Matrix64, from: number, count = x.rows - from): Matrix64 {
  return { rows: count, cols: x.cols, data: x.data.subarray(from * x.cols, (from + count) * x.cols) };
}

/**
 * Rows of `width` values from `src` (contiguous) into `dst` at `at`, `at + pitch`, …: a panel's
 * 16 columns per row, where a `set` per row costs more than the copy.
 */
function copyRows(src: Float64Array, width: number, dst: Float64Array, at: number, pitch: number, rows: number): void {
  for (let i = 0, from = 0, to = at; i < rows; i++, to += pitch)
    for (let c = 0; c < width; c++, from++) dst[to + c] = src[from]!;
}

/** x ← x − y, elementwise (same shape). */
function subtractInPlace(x: Matrix64, y: Matrix64): void {
  const a = x.data;
  const d = y.data;
  for (let i = 0; i < a.length; i++) a[i]! -= d[i]!;
}

/**
 * The column panel S₀[o:o+M, o:o+bb] − L[o:]·R[:, o:o+bb] of the block's current matrix, in
 * householderQrColumns' layout (column c in cols[c·M …]); `lo` = L[o:], null before any update.
 */
async function currentColumns(
  s: Float64Array,
  N0: number,
  o: number,
  M: number,
  bb: number,
  lo: Matrix64 | null,
  R: Matrix64,
): Promise<Float64Array> {
  const cols = new Float64Array(bb * M);
  let p: Float64Array | null = null;
  if (lo !== null) {
    const rc = new Float64Array(R.rows * bb);
    for (let r = 0; r < R.rows; r++) rc.set(R.data.subarray(r * R.cols + o, r * R.cols + o + bb), r * bb);
    p = (await matmul64(lo, { rows: R.rows, cols: bb, data: rc })).data;
  }
  for (let i = 0; i < M; i++) {
    const at = (o + i) * N0 + o;
    if (p === null) for (let c = 0; c < bb; c++) cols[c * M + i] = s[at + c]!;
    else for (let c = 0; c < bb; c++) cols[c * M + i] = s[at + c]! - p[i * bb + c]!;
  }
  return cols;
}

/**
 * R of the QR factorisation a = Q·R of a tall `a` (f64 [m, n], m ≥ n), by the same left panels as
 * `denseToUpperBand` without the right ones, as J·R: R's rows in reverse order (the same singular
 * values), [n, n] in the last n² values of a's array, whose other values are left as scratch.
 * Once the K rows of R up to a panel's end are known, the trailing matrix ends at
 * (m − K)·(n − K) ≤ (m − K)·n, where row K − 1 of R begins: so R takes no array of its own
 * (134 MB at n = 4096, each page a fault on first use). Taken first when m is well above n, where it
 * halves the passes over the long side. Cost ≈ 2·m·n² − ⅔·n³ flops in f64 products; memory the
 * panel's reflectors (≈ 3·m·b f64), its rows of R and one block of the engine's output.
 * With `source` (f32, m×n), a's values are not read: the first panel is taken from source, whose
 * rows are widened to f64 a block at a time as the products need them, and its update writes the
 * first trailing matrix into a. So a's pages are first touched by the engine's threads, not by a
 * copy on this one (11008×4096 on a process's first call: ≈ 0.4 s less).
 * @example const jr = await blockedQrR({ rows: 4096, cols: 512, data }, 32);
 */
export async function blockedQrR(
  a: Matrix64,
  b: number,
  outputBlock = UPDATE_BLOCK_VALUES,
  source?: Matrix,
): Promise<Matrix64> {
  const { rows: m, cols: n } = a;
  if (m < n) throw new RangeError(`blockedQrR: needs rows ≥ cols, got ${m}×${n}`);
  if (source && (source.rows !== m || source.cols !== n))
    throw new RangeError(`blockedQrR: a source of ${source.rows}×${source.cols} for ${m}×${n}`);
  const block = takeScratch64(updateBlockValues(m, n, outputBlock));
  const rowsR = takeScratch64(Math.min(b, n) * n);
  let M = m;
  let N = n;
  let k = 0;
  try {
    while (N > 0) {
      // The trailing matrix, contiguous [M, N] at the start of a's array; the first one `source`'s, when given.
      const s = a.data.subarray(0, M * N);
      const from = k === 0 && source ? source.data : s;
      const bb = Math.min(b, N);
      const { cols, tau } = await panelQr(from, M, N, bb);
      // R's rows k … k + bb from column k on, [bb, N]: the panel's triangle, and right of it the
      // updated panel rows; they go to their place once the trailing matrix has moved out of it.
      for (let q = 0; q < bb; q++) for (let c = 0; c < bb; c++) rowsR[q * N + c] = c < q ? 0 : cols[c * M + q]!;
      if (N > bb) {
        const { v, w } = await leftUpdateFactors(from, M, N, cols, tau, block);
        const size = N - bb;
        const right = columnsFrom(w, bb);
        const head = (await matmul64(rowsFrom(v, 0, bb), right)).data;
        for (let q = 0; q < bb; q++) {
          const o = q * N + bb;
          for (let c = 0; c < size; c++) rowsR[o + c] = from[o + c]! - head[q * size + c]!;
        }
        await subtractCompacted(from, s, N, bb, rowsFrom(v, bb), right, block);
        returnScratch64(v.data);
      }
      for (let q = 0; q < bb; q++) {
        const at = (m - k - q - 1) * n;
        a.data.fill(0, at, at + k);
        a.data.set(rowsR.subarray(q * N, (q + 1) * N), at + k);
      }
      // The panel's arrays go back to the pool: the next, smaller panel reuses them.
      returnScratch64(cols);
      k += bb;
      M -= bb;
      N -= bb;
    }
  } finally {
    returnScratch64(block, rowsR);
  }
  return { rows: n, cols: n, data: a.data.subarray((m - n) * n, m * n) };
}

/**
 * The left update S ← (I − V·T·Vᵀ)ᵀ·S = S − V·W of the trailing matrix s [M, N] by the panel's
 * reflectors (`cols`, `tau` of `panelQr`, R's entries already copied out: `cols` becomes Vᵀ):
 * V [M, p] and W = Tᵀ·(Vᵀ·S) [p, N], not applied. V is formed, so that V·W is a plain MatMul
 * in row blocks of V (the engine's double Gemm transposing its big operand runs at a third to a
 * sixth of its MatMul rate here); it is from the scratch pool, and the caller hands it back.
 * An f32 s is widened a row block at a time into `block` (`rowsProduct`).
 */
async function leftUpdateFactors(
  s: Float32Array | Float64Array,
  M: number,
  N: number,
  cols: Float64Array,
  tau: Float64Array,
  block: Float64Array,
): Promise<{ v: Matrix64; w: Matrix64 }> {
  const p = tau.length;
  const v = reflectorMatrix(cols, tau, M, p, 0, takeScratch64(M * p));
  const { vt, t } = await wyFactors(cols, tau, M, cols);
  const x =
    s instanceof Float64Array ? await matmul64(vt, { rows: M, cols: N, data: s }) : await rowsProduct(vt, s, N, block);
  const w = await matmul64(transpose({ rows: p, cols: p, data: t }), x);
  return { v, w };
}

/**
 * X·S for X [p, M] and an f32 S [M, N] (row-major, M = X's columns), in f64: S's rows are widened
 * into `block` a block at a time and each block's product is added by the engine (X·S = −(0 −
 * Σ X[:, blk]·S[blk])), so no f64 copy of S is made.
 */
async function rowsProduct(x: Matrix64, s: Float32Array, N: number, block: Float64Array): Promise<Matrix64> {
  const { rows: p, cols: M } = x;
  const step = Math.max(1, Math.floor(block.length / N));
  let sum = new Float64Array(p * N);
  let next = new Float64Array(p * N);
  const part = new Float64Array(p * Math.min(step, M));
  for (let i0 = 0; i0 < M; i0 += step) {
    const rows = Math.min(step, M - i0);
    block.set(s.subarray(i0 * N, (i0 + rows) * N));
    for (let r = 0; r < p; r++) part.set(x.data.subarray(r * M + i0, r * M + i0 + rows), r * rows);
    const xs: Matrix64 = { rows: p, cols: rows, data: part.subarray(0, p * rows) };
    await subtractProduct64(
      { rows: p, cols: N, data: sum },
      xs,
      { rows, cols: N, data: block.subarray(0, rows * N) },
      { into: next },
    );
    [sum, next] = [next, sum];
  }
  for (let i = 0; i < sum.length; i++) sum[i] = -sum[i]!;
  return { rows: p, cols: N, data: sum };
}

/** Values in one block of `subtractCompacted` (its rows of s, then the engine's output): the most the engine hands back per call. */
export const UPDATE_BLOCK_VALUES = OUTPUT_BLOCK_BYTES / 8;

/** Values of the output block a reduction of an m×n matrix (m ≥ n) takes: at least a row. */
export function updateBlockValues(m: number, n: number, block = UPDATE_BLOCK_VALUES): number {
  return Math.min(m * n, Math.max(block, n));
}

/**
 * Columns `from` … of a row-major matrix, as a new contiguous matrix.
 */
function columnsFrom(x: Matrix64, from: number): Matrix64 {
  const cols = x.cols - from;
  const data = new Float64Array(x.rows * cols);
  for (let r = 0; r < x.rows; r++) data.set(x.data.subarray(r * x.cols + from, (r + 1) * x.cols), r * cols);
  return { rows: x.rows, cols, data };
}

/**
 * The next trailing matrix src[from:, from:] − L·R, compacted to the start of s: src is row-major
 * with N columns, s itself or (the tall QR's first panel) its f32 source, L [rows, q] (its row i
 * belongs to src's row from + i) and R [q, N − from]. In row blocks: the block's rows of src are
 * gathered into `block` (widened to f64), and the engine writes block − L·R (one session call,
 * `subtractProduct64`) straight to where they go, so nothing of the trailing matrix's size is held
 * beside s (two such arrays before: 1.1 GB more at 11008×4096, each page of it a fault on first
 * use). Row i of the result lands at i·(N − from), before where row from + i is read, and blocks
 * go in order, so nothing is overwritten before it is gathered. (Against forming L·R and
 * subtracting it here: 235 against 315 ms for the first update of an 11008×4096 QR, whose
 * product alone is ≈ 210 ms.)
 */
async function subtractCompacted(
  src: Float32Array | Float64Array,
  s: Float64Array,
  N: number,
  from: number,
  l: Matrix64,
  r: Matrix64,
  block: Float64Array,
): Promise<void> {
  const size = N - from;
  const step = Math.max(1, Math.floor(block.length / size));
  for (let i0 = 0; i0 < l.rows; i0 += step) {
    const rows = Math.min(step, l.rows - i0);
    for (let i = 0; i < rows; i++) {
      const so = (from + i0 + i) * N + from;
      block.set(src.subarray(so, so + size), i * size);
    }
    const c = { rows, cols: size, data: block.subarray(0, rows * size) };
    await subtractProduct64(c, rowsFrom(l, i0, rows), r, { into: s.subarray(i0 * size, (i0 + rows) * size) });
  }
}

/** Rows of the panel `panelQr` transposes per pass (64 rows of 256 f64: 128 KiB). */
const PANEL_ROW_BLOCK = 64;

/**
 * Householder QR of the leading `bb` columns of `s` [M, N] row-major (f64, or f32 widened): the reflectors as rows of
 * `cols` [bb, M] (householderQrColumns' layout, from the scratch pool: the caller hands it back) and their τ.
 */
async function panelQr(
  s: Float32Array | Float64Array,
  M: number,
  N: number,
  bb: number,
): Promise<{ cols: Float64Array; tau: Float64Array }> {
  const cols = takeScratch64(bb * M);
  // A transpose by slabs of rows, so that the rows read stay in cache while each column is written.
  for (let i0 = 0; i0 < M; i0 += PANEL_ROW_BLOCK) {
    const i1 = Math.min(M, i0 + PANEL_ROW_BLOCK);
    for (let c = 0; c < bb; c++) for (let i = i0; i < i1; i++) cols[c * M + i] = s[i * N + c]!;
  }
  return { cols, tau: await householderQrColumnsBlocked(cols, bb, M) };
}

/** The T of Q = H₀⋯H_{p−1} = I − V·T·Vᵀ for the reflectors V [len, p] (qr.ts's compactWyFactor), [p, p]. */
async function wyFactor(v: Matrix64, tau: Float64Array): Promise<Matrix64> {
  const p = v.cols;
  return { rows: p, cols: p, data: await compactWyFactor((await matmul64(v, v, { transA: true })).data, tau, p) };
}
