/**
 * All singular values by two-stage bidiagonalisation in f64: dense → band (`denseToUpperBand`,
 * blocked Householder, products through the f64 GEMM engine), band → bidiagonal (`bandToBidiagonal`,
 * Givens bulge chasing), bidiagonal → values (`bidiagonalSingularValues`, implicit-shift QR).
 * Unlike the Gram route it never forms AᵀA, so the condition number is not squared: every value
 * comes with an absolute error ≈ √(m·n)·ε₆₄·‖A‖, i.e. within 1e-9 relative of LAPACK down to
 * 1e-6·σ₁.
 */

import { finishCooperatively } from '../yield.js';
import { blockedQrR, denseToUpperBand } from './bidiagonal-band.js';
import { bandToBidiagonalSteps } from './bidiagonal-from-band.js';
import { bidiagonalSingularValuesSteps } from './bidiagonal-values.js';
import type { Matrix } from './matrix.js';

/**
 * Bandwidth between the stages. Stage 1 reads the trailing matrix twice per panel (wider panels,
 * fewer passes), stage 2 costs ≈ 6·n²·b in plain TypeScript.
 */
export const BIDIAGONAL_BANDWIDTH = 32;
/**
 * Take the QR first when the long side is at least this many times the short one: the QR costs
 * 2·q·p² and the bidiagonalisation of R 8/3·p³, against 4·q·p² − 4/3·p³ directly (equal at q = 5/3·p).
 */
const QR_FIRST_RATIO = 5 / 3;
/**
 * Panel width of that QR, independent of the band: p/32 within [32, 128]. Wider panels make its
 * products larger (fewer passes over the long side) but its panel factorizations, 2·q·p·w flops in
 * plain TypeScript, grow with w and dominate when p is small. R of 11008×4096: 41 s at w = 32,
 * 26.5 s at 64, 20 s at 128 (load ≈ 3.5–4.4 on 2 cores); a 256×2048 k/v projection's values:
 * 72–90 ms at 32 against 107–113 ms at 128 (quiet).
 */
function qrPanelWidth(p: number): number {
  return Math.min(128, Math.max(32, Math.floor(p / 32)));
}

/**
 * All min(m, n) singular values of `a` (f32 [m, n], not changed), descending, in f64. Cost
 * ≈ 4·q·p² − 4/3·p³ f64 GEMM flops (q = max(m, n), p = min(m, n); 2·q·p² + 8/3·p³ through the
 * QR when q ≥ 5/3·p) plus ≈ 6·p²·b + 25·p² in
 * plain TypeScript; memory three q×p f64 arrays (the f64 copy and two that stage 1 reuses panel to panel).
 * @example const s = await bidiagonalRoute(delta);
 */
export async function bidiagonalRoute(
  a: Matrix,
  {
    bandwidth = BIDIAGONAL_BANDWIDTH,
    qrPanel = qrPanelWidth(Math.min(a.rows, a.cols)),
  }: { bandwidth?: number; qrPanel?: number } = {},
): Promise<Float64Array> {
  const { rows: m, cols: n, data } = a;
  const p = Math.min(m, n);
  if (p === 0) return new Float64Array(0);
  // Tall orientation (rows ≥ cols): Aᵀ has the same singular values.
  const rows = Math.max(m, n);
  const w = new Float64Array(m * n);
  if (m >= n) for (let i = 0; i < w.length; i++) w[i] = data[i]!;
  else for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[j * m + i] = data[i * n + j]!;
  const b = Math.max(1, Math.min(bandwidth, p - 1));
  const tall = { rows, cols: p, data: w };
  const band = await denseToUpperBand(rows >= QR_FIRST_RATIO * p ? await blockedQrR(tall, qrPanel) : tall, b);
  // Both stages run seconds at p in the thousands: they let the event loop turn (src/yield.ts).
  const { d, e } = await finishCooperatively(bandToBidiagonalSteps(band));
  return finishCooperatively(bidiagonalSingularValuesSteps(d, e));
}
