/**
 * All eigenvalues of a dense symmetric matrix by the two-stage reduction: dense → band
 * (`denseToBand`, products in the GEMM engine), band → tridiagonal (bulge chasing, sweeps
 * pipelined over worker threads on machines of 4 cores or more), then implicit QL on the
 * tridiagonal.
 */

import { finishCooperatively } from '../yield.js';
import type { Matrix } from './matrix.js';
import { denseToBand } from './symmetric-eigen-band.js';
import { tridiagonalEigenvaluesSteps } from './tridiagonal-eigenvalues.js';
import { bandToTridiagonalParallel } from './tridiagonal-from-band.js';

/**
 * Bandwidth of the intermediate band. Stage 1 wants it wide (each panel reads the whole
 * trailing matrix once, and its products are b wide), stage 2 narrow (6·n²·b flops in plain
 * TypeScript). Measured on 2 cores (median of 3, Gaussian Gram matrices), b = 16 against 32:
 * n = 1024 0.172 vs 0.208 s, 2048 0.78 vs 0.93 s, 4096 4.1–4.3 vs 4.5–4.8 s; b = 8 and 12 are no faster.
 */
export const DEFAULT_BANDWIDTH = 16;

/**
 * Eigenvalues of the symmetric n×n `g` (f32, row-major, not changed), descending, as f64.
 * Errors ≈ n^½·ε₃₂·‖g‖ (the reduction runs in f32 products). Cost ≈ 2·n³ flops in matrix
 * products plus ≈ 7·n²·b + 30·n² in plain TypeScript (the chase's 6·n²·b spread over the
 * cores from n = 1536 on, where there are 4 or more); memory ≈ 3·n² f32.
 * @example const lambda = await symmetricEigenvalues(gram);
 */
export async function symmetricEigenvalues(
  g: Matrix,
  { bandwidth = DEFAULT_BANDWIDTH }: { bandwidth?: number } = {},
): Promise<Float64Array> {
  if (g.rows !== g.cols) throw new RangeError(`symmetricEigenvalues: needs a square matrix, got ${g.rows}×${g.cols}`);
  if (!Number.isInteger(bandwidth) || bandwidth < 1)
    throw new RangeError(`symmetricEigenvalues: bandwidth must be a positive integer, got ${bandwidth}`);
  const band = await denseToBand(g, bandwidth);
  const { d, e } = await bandToTridiagonalParallel(band, bandwidth);
  return finishCooperatively(tridiagonalEigenvaluesSteps(d, e));
}
