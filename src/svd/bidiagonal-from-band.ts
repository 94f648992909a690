/**
 * Second stage of the two-stage bidiagonalisation: an upper band matrix of bandwidth b to upper
 * bidiagonal form by Givens rotations with bulge chasing (Kaufman 1984; Schwarz 1968; LAPACK
 * dgbbrd). Row i's entries beyond the super-diagonal are annihilated from the outside in, each
 * by a rotation of two columns; the entry that rotation creates below the diagonal is removed
 * by a rotation of two rows, which creates one beyond the band b columns on, and so on down.
 * f64 throughout; each rotation is orthogonal, so the singular values are kept to ≈ n·ε₆₄·‖B‖.
 */
import { turnDue } from '../yield.js';
import type { UpperBand } from './bidiagonal-band.js';
import { bandChaseKernel, KERNEL_MAX_VALUES } from './wasm-kernels.js';

/**
 * Entry updates (≈ 2·(n − i)·(b + 2) per sweep i) the WebAssembly chase takes per call: about
 * 10–20 ms, after which the event loop may turn; each call copies the band in and out (0.6 MB at
 * 4096² and b = 16, ≈ 0.1 ms).
 */
const CHASE_CALL_UPDATES = 2e7;

/**
 * The upper bidiagonal matrix with the singular values of `band` (overwritten): diagonal d [n],
 * super-diagonal e [n − 1]. Cost ≈ 6·n²·(b + 2) flops, in WebAssembly (`bandChaseKernel`, 4096²
 * at b = 16: ≈ 0.5 s) or, for a band beyond its memory, in TypeScript (`chaseSweepsPlain`, about
 * twice that); no allocation beyond d, e.
 * A generator kernel: it yields when a turn of the event loop is due (src/yield.ts), so run it
 * with `finishCooperatively` (or `finishNow`).
 * @example const { d, e } = await finishCooperatively(bandToBidiagonalSteps(await denseToUpperBand(a, 16)));
 */
export function* bandToBidiagonalSteps(
  band: UpperBand,
): Generator<void, { d: Float64Array; e: Float64Array }, undefined> {
  const { n, b, width: W, data: a } = band;
  const kernel = n * W <= KERNEL_MAX_VALUES;
  for (let i = 0; i + 2 < n && b >= 2; ) {
    if (turnDue()) yield;
    if (!kernel) {
      chaseSweepsPlain(band, i, i + 1);
      i++;
      continue;
    }
    let to = i;
    for (let updates = 0; to + 2 < n && updates < CHASE_CALL_UPDATES; to++) updates += 2 * (n - to) * (b + 2);
    bandChaseKernel(a, n, b, W, i, to);
    i = to;
  }
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) d[i] = a[i * W + 1]!;
  for (let i = 0; i + 1 < n; i++) e[i] = a[i * W + 2]!;
  return { d, e };
}

/**
 * Sweeps from … to − 1 of the chase on `band`, in TypeScript: sweep i zeroes row i beyond the
 * super-diagonal, each entry by a rotation of two columns whose fill below the diagonal a rotation
 * of two rows removes, which fills an entry b columns on, chased down to the end.
 */
export function chaseSweepsPlain(band: UpperBand, from: number, to: number): void {
  const { n, b, width: W, data: a } = band;
  // Entry (i, j) lives at i·W + j − i + 1.
  for (let i = from; i < to; i++) {
    for (let j = Math.min(i + b, n - 1); j >= i + 2; j--) {
      // Zero (i, j) with a rotation of columns j − 1, j, over the rows that hold either.
      let row = i;
      let col = j;
      for (;;) {
        const x = a[row * W + col - 1 - row + 1]!;
        const y = a[row * W + col - row + 1]!;
        if (y === 0) break;
        const r = norm2(x, y);
        const c = x / r;
        const s = y / r;
        const r0 = row;
        const r1 = Math.min(col, n - 1);
        // Row t's entry (t, col − 1) sits at t·(W − 1) + col: one stride of W − 1 between rows.
        for (let k = r0 * (W - 1) + col, end = r1 * (W - 1) + col; k <= end; k += W - 1) {
          const p = a[k]!;
          const q = a[k + 1]!;
          a[k] = c * p + s * q;
          a[k + 1] = c * q - s * p;
        }
        a[row * W + col - row + 1] = 0;
        // The rotation filled (col, col − 1): zero it with a rotation of rows col − 1, col.
        const fill = a[col * W + 0]!;
        if (fill === 0) break;
        const top = (col - 1) * W + 1;
        const x2 = a[top]!;
        const r2 = norm2(x2, fill);
        const c2 = x2 / r2;
        const s2 = fill / r2;
        const last = Math.min(n - 1, col + b);
        const u = (col - 1) * W - (col - 1) + 1;
        const v = col * W - col + 1;
        for (let t = col - 1; t <= last; t++) {
          const p = a[u + t]!;
          const q = a[v + t]!;
          a[u + t] = c2 * p + s2 * q;
          a[v + t] = c2 * q - s2 * p;
        }
        a[v + col - 1] = 0;
        // That rotation filled (col − 1, col + b) when it exists: chase it on.
        if (col + b > n - 1) break;
        row = col - 1;
        col = col + b;
      }
    }
  }
}

/** √(x² + y²): the plain square root where the squares can neither overflow nor underflow, Math.hypot (several times slower) otherwise. */
function norm2(x: number, y: number): number {
  const big = Math.max(Math.abs(x), Math.abs(y));
  return big < 1e150 && big > 1e-150 ? Math.sqrt(x * x + y * y) : Math.hypot(x, y);
}
