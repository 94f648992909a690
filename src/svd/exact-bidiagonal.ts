/**
 * All singular values by two-stage bidiagonalisation in f64: dense → band (`denseToUpperBand`,
 * blocked Householder, products through the f64 GEMM engine), band → bidiagonal (`bandToBidiagonalSteps`,
 * Givens bulge chasing), bidiagonal → values (`bidiagonalSingularValues`, dqds).
 * Unlike the Gram route it never forms AᵀA, so the condition number is not squared: every value
 * comes with an absolute error ≈ √(m·n)·ε₆₄·‖A‖, i.e. within 1e-9 relative of LAPACK down to
 * 1e-6·σ₁.
 */

import { finishCooperatively, yieldIfDue } from '../yield.js';
import {
  BAND_DELAY,
  blockedQrR,
  denseToUpperBand,
  UPDATE_BLOCK_VALUES,
  type UpperBand,
  updateBlockValues,
} from './bidiagonal-band.js';
import { bandToBidiagonalSteps } from './bidiagonal-from-band.js';
import { bidiagonalSingularValuesSteps } from './bidiagonal-values.js';
import type { Matrix } from './matrix.js';
import { returnScratch64, takeScratch64 } from './scratch.js';

/**
 * Bandwidth between the stages. Stage 1 reads the trailing matrix twice per panel (wider panels,
 * fewer passes), stage 2 costs ≈ 6·n²·b in plain TypeScript. Once stage 1's products stopped
 * paying page faults for their outputs, 16 beat 32 (whole route, same runs, 2 cores of an AMD
 * EPYC: 1024² 0.86×, 2048² 0.88–0.93×, 5632×2048 0.92–1.0×, 4096² 0.91–1.02×; at 4096² the chase
 * falls from 1.36 to 0.89 s and stage 1 grows by about as much).
 */
const BIDIAGONAL_BANDWIDTH = 16;
/**
 * Take the QR first when the long side is at least this many times the short one: the QR costs
 * 2·q·p² and the bidiagonalisation of R 8/3·p³, against 4·q·p² − 4/3·p³ directly (equal at q = 5/3·p).
 */
const QR_FIRST_RATIO = 5 / 3;
/**
 * Panel width of that QR: p/8 within [64, 256]. Wider panels make its products larger (fewer
 * passes over the long side); the panels themselves are factored by recursive halving
 * (`householderQrColumnsBlocked`), so width no longer costs plain-TypeScript flops. Whole route,
 * quiet 2 cores: 11008×4096 19.1 s at w = 128, 16.6 s at 256, 15.9 s at 384, 16.3 s at 512;
 * 5632×2048 2.9–3.5 s at 128, 2.9 s at 256; a 256×2048 k/v projection 51–58 ms at 64 to 256.
 */
function qrPanelWidth(p: number): number {
  return Math.min(256, Math.max(64, Math.floor(p / 8)));
}

/**
 * Bytes `bidiagonalRoute` holds for an m×n matrix: its f64 copy, the QR's panel and a panel's rows
 * of R when the QR comes first (R itself lies in the copy), the delayed update's factors and a
 * block of the engine's output (see its memory note).
 * @example bidiagonalRouteBytes(4096, 4096) // ≈ 159e6
 */
export function bidiagonalRouteBytes(m: number, n: number): number {
  const q = Math.max(m, n);
  const p = Math.min(m, n);
  const b = Math.max(1, Math.min(BIDIAGONAL_BANDWIDTH, p - 1));
  const qrFirst = q >= QR_FIRST_RATIO * p;
  // A panel's rows of R, and three panels' worth of work arrays (the panel, which becomes Vᵀ, V,
  // and its recursive factorization's).
  const qr = qrFirst ? qrPanelWidth(p) * (p + 3 * q) : 0;
  return 8 * (q * p + qr + 2 * b * BAND_DELAY * ((qrFirst ? p : q) + p) + updateBlockValues(q, p));
}

/**
 * All min(m, n) singular values of `a` (f32 [m, n], not changed), descending, in f64. Cost
 * ≈ 4·q·p² − 4/3·p³ f64 GEMM flops (q = max(m, n), p = min(m, n); 2·q·p² + 8/3·p³ through the
 * QR when q ≥ 5/3·p) plus ≈ 6·p²·b flops and ≈ 2·p² dqds steps in WebAssembly and plain TypeScript (4096²: ≈ 4–5 s on 2 cores);
 * memory the f64 copy, which both stages reduce in place (the QR, when it comes first, leaves R
 * in the copy's last p² values), the delayed update's factors, 2·b·delay·(q + p) f64, and one
 * 8 MB block of the engine's output (`bidiagonalRouteBytes`: 1.2 times the f64 copy at 4096², 1.3 at
 * 11008×4096).
 * @example const s = await bidiagonalRoute(delta);
 */
export async function bidiagonalRoute(
  a: Matrix,
  {
    bandwidth = BIDIAGONAL_BANDWIDTH,
    qrPanel = qrPanelWidth(Math.min(a.rows, a.cols)),
    delay = BAND_DELAY,
    outputBlock = UPDATE_BLOCK_VALUES,
  }: { bandwidth?: number; qrPanel?: number; delay?: number; outputBlock?: number } = {},
): Promise<Float64Array> {
  const { rows: m, cols: n } = a;
  const p = Math.min(m, n);
  if (p === 0) return new Float64Array(0);
  // Tall orientation (rows ≥ cols): Aᵀ has the same singular values.
  const rows = Math.max(m, n);
  const qrFirst = rows >= QR_FIRST_RATIO * p;
  const w = takeScratch64(m * n);
  // A tall matrix going through the QR is read by its first panel where it lies (blockedQrR's `source`).
  const source = qrFirst && m >= n ? a : undefined;
  if (!source) await tallCopyInto(a, w);
  const b = Math.max(1, Math.min(bandwidth, p - 1));
  const tall = { rows, cols: p, data: w };
  let band: UpperBand;
  try {
    // The QR's R (rows reversed) lies in w's last p² values.
    const square = qrFirst ? await blockedQrR(tall, qrPanel, outputBlock, source) : tall;
    band = await denseToUpperBand(square, b, delay, outputBlock);
  } finally {
    returnScratch64(w);
  }
  // Both stages run seconds at p in the thousands: they let the event loop turn (src/yield.ts).
  const { d, e } = await finishCooperatively(bandToBidiagonalSteps(band));
  return finishCooperatively(bidiagonalSingularValuesSteps(d, e));
}

/** Rows of `a` copied between two checks for a turn of the event loop. */
const COPY_SLAB = 64;

/**
 * w ← a as f64, in tall orientation (aᵀ when a is wide), a slab of rows at a time with a turn of the
 * event loop when one is due: a first call faults w's pages in as it writes (0.35 s at 4096²).
 * Not for a tall matrix going through the QR, whose first panel reads a itself.
 */
async function tallCopyInto(a: Matrix, w: Float64Array): Promise<void> {
  const { rows: m, cols: n, data } = a;
  for (let i0 = 0; i0 < m; i0 += COPY_SLAB) {
    await yieldIfDue();
    const i1 = Math.min(m, i0 + COPY_SLAB);
    if (m >= n) w.set(data.subarray(i0 * n, i1 * n), i0 * n);
    // Down the slab for each column: the writes run along w's rows, the slab's rows stay in cache.
    else for (let j = 0; j < n; j++) for (let i = i0; i < i1; i++) w[j * m + i] = data[i * n + j]!;
  }
}
