/**
 * All eigenvalues of a dense symmetric matrix by the two-stage reduction: dense → band
 * (`denseToBand`, products in the GEMM engine), band → tridiagonal (bulge chasing, sweeps
 * pipelined over worker threads on machines of 4 cores or more), then implicit QL on the
 * tridiagonal.
 */
import type { Matrix } from './matrix.js';
import { denseToBand } from './symmetric-eigen-band.js';
import { bandToTridiagonalParallel } from './tridiagonal-from-band.js';
import { tridiagonalEigenvalues } from './tridiagonal-eigenvalues.js';

/**
 * Bandwidth of the intermediate band. Stage 1 wants it wide (each panel reads the whole
 * trailing matrix once, and its products are b wide), stage 2 narrow (6·n²·b flops in plain
 * TypeScript). At n = 2048 on this machine b = 16 … 48 cost the same within noise; 32 keeps
 * the products efficient.
 */
export const DEFAULT_BANDWIDTH = 32;

/**
 * Eigenvalues of the symmetric n×n `g` (f32, row-major, not changed), descending, as f64.
 * Errors ≈ n^½·ε₃₂·‖g‖ (the reduction runs in f32 products). Cost ≈ 2·n³ flops in matrix
 * products plus ≈ 7·n²·b + 30·n² in plain TypeScript (the chase's 6·n²·b spread over the
 * cores from n = 1536 on, where there are 4 or more); memory ≈ 3·n² f32.
 * @example const lambda = await symmetricEigenvalues(gram);
 */
export async function symmetricEigenvalues(g: Matrix, { bandwidth = DEFAULT_BANDWIDTH }: { bandwidth?: number } = {}): Promise<Float64Array> {
  if (g.rows !== g.cols) throw new RangeError(`symmetricEigenvalues: needs a square matrix, got ${g.rows}×${g.cols}`);
  if (!Number.isInteger(bandwidth) || bandwidth < 1) throw new RangeError(`symmetricEigenvalues: bandwidth must be a positive integer, got ${bandwidth}`);
  const band = await denseToBand(g, bandwidth);
  const { d, e } = await bandToTridiagonalParallel(band, bandwidth);
  return tridiagonalEigenvalues(d, e);
}
