/**
 * First stage of the two-stage symmetric reduction (Haidar, Ltaief & Dongarra 2011; Bischof,
 * Lang & Sun 2000): a dense symmetric matrix to band form by Householder QR of b-column
 * panels. Each panel's two-sided update A ← Qᵀ·A·Q, Q = I − V·T·Vᵀ, is the symmetric
 * rank-2b correction A − W·Vᵀ − V·Wᵀ (LAPACK dsytrd's form). As in dsytrd/dlatrd, several
 * panels are reduced against the not-yet-updated matrix (their columns and products
 * corrected on the fly by the accumulated [W V]·[V W]ᵀ), and the trailing matrix is updated
 * once per block of panels: that pass over the matrix is memory-bound, the rest runs as
 * products through `matmul`. Panel QRs (n²·b flops) run here in f64.
 */

import { matmul } from './gemm.js';
import type { Matrix } from './matrix.js';
import { compactWyFactor, householderQrColumns } from './qr.js';
import { type LowerBand, lowerBand } from './tridiagonal-from-band.js';

/**
 * Panels reduced per trailing update. Each panel reads the whole trailing matrix once (its
 * A·V product) and each update reads it and writes it; more panels per update trade the
 * second for the first. At n = 2048 here 2 panels cost 25 % more CPU than 4, and 4 … 10 the same.
 */
const PANELS_PER_UPDATE = 6;

/** Rows [r0, r1) of a row-major [*, cols] f32 matrix, as a view. */
function rowsOf(data: Float32Array, cols: number, r0: number, r1: number): Matrix {
  return { rows: r1 - r0, cols, data: data.subarray(r0 * cols, r1 * cols) };
}

/**
 * Reduce the symmetric n×n `g` (f32, row-major; both triangles read, not changed) to an
 * orthogonally similar band matrix of bandwidth b, returned in a lower-band storage of width
 * 2b (in a SharedArrayBuffer) ready for `bandToTridiagonal` or its parallel form. Arithmetic
 * is that of the GEMM engine (f32): eigenvalue errors ≈ n^½·ε₃₂·‖g‖. Cost ≈ 2·n³ flops in
 * products, n²·b in f64 here, and one pass over the trailing matrix per PANELS_PER_UPDATE
 * panels; memory one n×n f32 copy plus a product's output.
 * @example const band = await denseToBand(gram, 32);
 */
export async function denseToBand(g: Matrix, b: number): Promise<LowerBand> {
  const n = g.rows;
  if (g.cols !== n) throw new RangeError(`denseToBand: needs a square matrix, got ${g.rows}×${g.cols}`);
  const band = lowerBand(n, 2 * b, { shared: true });
  const W = band.width;
  const out = band.data;
  // s: the trailing matrix (from global row and column k on), contiguous, as of the last update.
  const s = Float32Array.from(g.data);
  let N = n;
  let k = 0;
  while (N > b + 1) {
    const panels = Math.min(PANELS_PER_UPDATE, Math.ceil((N - b - 1) / b));
    const nb = panels * b;
    // Pending update of s: s − L·Rᵀ with L = [W₀ … | V₀ …], R = [V₀ … | W₀ …], [N, 2·nb].
    const L = new Float32Array(N * 2 * nb);
    const R = new Float32Array(N * 2 * nb);
    for (let j = 0; j < panels; j++) {
      const c0 = j * b;
      const r0 = c0 + b;
      const M = N - r0;
      // Columns c0 … c0+b of the current matrix, rows c0 … N, with the pending update applied.
      const block = new Float64Array((N - c0) * b);
      for (let i = c0; i < N; i++) for (let c = 0; c < b; c++) block[(i - c0) * b + c] = s[i * N + c0 + c]!;
      if (j > 0) {
        const corr = (await matmul(rowsOf(L, 2 * nb, c0, N), rowsOf(R, 2 * nb, c0, r0), { transB: true })).data;
        for (let i = 0; i < block.length; i++) block[i]! -= corr[i]!;
      }
      for (let i = 0; i < b; i++)
        for (let c = 0; c <= i; c++) out[(k + c0 + i) * W + W + k + c0 + c] = block[i * b + c]!;
      // The panel below the diagonal block becomes R (upper trapezoidal, inside the band).
      const cols = new Float64Array(b * M);
      for (let i = 0; i < M; i++) for (let c = 0; c < b; c++) cols[c * M + i] = block[(b + i) * b + c]!;
      const tau = householderQrColumns(cols, b, M);
      const p = tau.length;
      for (let c = 0; c < b; c++)
        for (let i = 0; i <= Math.min(c, M - 1); i++) out[(k + r0 + i) * W + W + k + c0 + c] = cols[c * M + i]!;
      // V, zero-padded to all N rows so that the product with whole rows of s needs no column slice.
      const vPad = new Float32Array(N * p);
      for (let c = 0; c < p; c++) {
        vPad[(r0 + c) * p + c] = 1;
        for (let i = c + 1; i < M; i++) vPad[(r0 + i) * p + c] = cols[c * M + i]!;
      }
      const v: Matrix = { rows: M, cols: p, data: vPad.subarray(r0 * p) };
      // A·V for the current A = s − L·Rᵀ, rows r0 … N.
      const av = (await matmul(rowsOf(s, N, r0, N), { rows: N, cols: p, data: vPad })).data;
      if (j > 0) {
        const rv = await matmul(rowsOf(R, 2 * nb, r0, N), v, { transA: true });
        const lrv = (await matmul(rowsOf(L, 2 * nb, r0, N), rv)).data;
        for (let i = 0; i < av.length; i++) av[i]! -= lrv[i]!;
      }
      const w = await updateFactor(v, av, tau);
      for (let i = 0; i < M; i++) {
        const o = (r0 + i) * 2 * nb;
        for (let c = 0; c < p; c++) {
          const wi = w[i * p + c]!;
          const vi = v.data[i * p + c]!;
          L[o + c0 + c] = wi;
          L[o + nb + c0 + c] = vi;
          R[o + c0 + c] = vi;
          R[o + nb + c0 + c] = wi;
        }
      }
    }
    // s ← (s − L·Rᵀ)[nb:, nb:], compacted in place (each write lands at or before its read).
    const upd = (await matmul(rowsOf(L, 2 * nb, nb, N), rowsOf(R, 2 * nb, nb, N), { transB: true })).data;
    const size = N - nb;
    for (let i = 0; i < size; i++) {
      const src = (nb + i) * N + nb;
      const dst = i * size;
      for (let c = 0; c < size; c++) s[dst + c] = s[src + c]! - upd[dst + c]!;
    }
    N = size;
    k += nb;
  }
  // What is left lies inside the band already.
  for (let i = 0; i < N; i++) for (let c = 0; c <= i; c++) out[(k + i) * W + W + k + c] = s[i * N + c]!;
  return band;
}

/**
 * W = Y − ½·V·(Tᵀ·Vᵀ·Y) with Y = A·V·T, from av = A·V ([M, p]), V ([M, p], unit lower
 * trapezoidal) and τ; T is the compact-WY factor of Q = I − V·T·Vᵀ. Then
 * Qᵀ·A·Q = A − W·Vᵀ − V·Wᵀ. Returns W, [M, p].
 */
async function updateFactor(v: Matrix, av: Float32Array, tau: Float64Array): Promise<Float32Array> {
  const M = v.rows;
  const p = v.cols;
  const t = await compactWyFactor((await matmul(v, v, { transA: true })).data, tau, p);
  const y = (await matmul({ rows: M, cols: p, data: av }, { rows: p, cols: p, data: Float32Array.from(t) })).data;
  const vy = (await matmul(v, { rows: M, cols: p, data: y }, { transA: true })).data;
  // z = ½·Tᵀ·(VᵀY), symmetric in exact arithmetic.
  const z = new Float32Array(p * p);
  for (let r = 0; r < p; r++) {
    for (let c = 0; c < p; c++) {
      let acc = 0;
      for (let q = 0; q <= r; q++) acc += t[q * p + r]! * vy[q * p + c]!;
      z[r * p + c] = 0.5 * acc;
    }
  }
  const vz = (await matmul(v, { rows: p, cols: p, data: z })).data;
  for (let i = 0; i < M * p; i++) y[i]! -= vz[i]!;
  return y;
}
