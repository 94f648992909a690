/**
 * Fixed-rank truncated SVD by randomized subspace iteration: Halko, Martinsson & Tropp 2011,
 * Alg. 4.4 (re-orthonormalise after every product) then Alg. 5.1 (SVD of the small B = QᵀA).
 * The big products go through the GEMM engine; the QR of each tall-skinny block is CholeskyQR
 * (`qr.ts`), also products; only k×k work runs in plain f64.
 */
import { ShapeError } from '../errors.js';
import { matmul } from './gemm.js';
import type { Matrix, Matrix64 } from './matrix.js';
import { orthonormalizeRows } from './qr.js';
import { gaussianMatrix } from './random.js';
import { rightVectorsCooperative, smallSvdLeft } from './small-svd.js';

/** A truncated SVD: a ≈ u·diag(s)·vᵀ. */
export interface Svd {
  /** [m, r], orthonormal columns. */
  u: Matrix;
  /** r values, descending, ≥ 0. */
  s: Float64Array;
  /** [n, r], orthonormal columns. */
  v: Matrix;
}

export interface TruncatedSvdOptions {
  /** Singular triplets wanted, 0 ≤ rank ≤ min(m, n). */
  rank: number;
  /** Extra sketch columns; the sketch has min(rank + oversample, min(m, n)) columns. */
  oversample?: number;
  /** Power (subspace) iterations; each costs two more products with A. */
  powerIters?: number;
  /** Seed of the Gaussian sketch. */
  seed?: number;
}

/**
 * Top-`rank` singular triplets of a [m, n] f32 matrix. With k = rank + oversample the cost is
 * (2 + 2·powerIters)·2·m·n·k flops in products with A plus O((m + n)·k²) for the QRs.
 * Expected error ‖A − U S Vᵀ‖_F is close to the Eckart–Young optimum (Σ_{i>rank} σᵢ²)^{1/2}
 * (HMT 2011 Thm. 10.5, sharpened by each power iteration); singular values are accurate to
 * about 1e-4 relative down to σ₁·1e-3 on decaying spectra.
 * @example const { u, s, v } = await truncatedSvd(deltaW, { rank: 64 }); // 4096×4096 on 2 cores: 0.2 s, 3/4 of it the products
 */
export async function truncatedSvd(
  a: Matrix,
  { rank, oversample = 10, powerIters = 2, seed = 0 }: TruncatedSvdOptions,
): Promise<Svd> {
  const { rows: m, cols: n } = a;
  const p = Math.min(m, n);
  if (!Number.isInteger(rank) || rank < 0 || rank > p)
    throw new ShapeError(`truncatedSvd: rank ${rank} is not in 0..${p} for a ${m}×${n} matrix`);
  if (!Number.isInteger(oversample) || oversample < 0)
    throw new RangeError(`truncatedSvd: oversample must be a non-negative integer, got ${oversample}`);
  if (!Number.isInteger(powerIters) || powerIters < 0)
    throw new RangeError(`truncatedSvd: powerIters must be a non-negative integer, got ${powerIters}`);
  if (a.data.length !== m * n)
    throw new ShapeError(`truncatedSvd: data length ${a.data.length} does not match ${m}×${n}`);
  if (rank === 0)
    return {
      u: { rows: m, cols: 0, data: new Float32Array(0) },
      s: new Float64Array(0),
      v: { rows: n, cols: 0, data: new Float32Array(0) },
    };
  const k = Math.min(rank + oversample, p);
  // Thin blocks are kept transposed ([k, m], [k, n]) so both products with A are row-major GEMMs.
  const omegaT = gaussianMatrix(k, n, seed);
  // Between products only the span matters, so those bases may be loosely orthonormal; the last
  // Q, which B and U are built from, is orthonormalised fully.
  let qt = (await orthonormalizeRows(await matmul(omegaT, a, { transB: true }), { loose: powerIters > 0 })).qt;
  for (let i = 0; i < powerIters; i++) {
    const pt = (await orthonormalizeRows(await matmul(qt, a), { loose: true })).qt;
    qt = (await orthonormalizeRows(await matmul(pt, a, { transB: true }), { loose: i < powerIters - 1 })).qt;
  }
  // B = Qᵀ·A = Rᵀ·Pᵀ, so A ≈ Q·Rᵀ·Pᵀ and the SVD of the k×k Rᵀ finishes the job.
  const { qt: pt, r } = await orthonormalizeRows(await matmul(qt, a));
  return finishFromFactors(qt, r, pt, rank);
}

/**
 * Given A ≈ Q·Rᵀ·Pᵀ with Qᵀ [k, m], Pᵀ [k, n] orthonormal rows and R [k, k] upper triangular
 * (f64), the rank-`rank` SVD of A: Rᵀ = W·S·Zᵀ by Jacobi (left vectors only; Z's first `rank`
 * columns follow as R·W·S⁻¹), U = Q·W, V = P·Z.
 */
export async function finishFromFactors(qt: Matrix, r: Matrix64, pt: Matrix, rank: number): Promise<Svd> {
  const k = r.rows;
  const rt = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = i; j < k; j++) rt[j * k + i] = r.data[i * k + j]!;
  const core = { rows: k, cols: k, data: rt };
  const { u: wAll, s } = await smallSvdLeft(core);
  const zRank = await rightVectorsCooperative(core, wAll, s, rank);
  const w = new Float32Array(k * rank);
  for (let i = 0; i < k; i++) for (let j = 0; j < rank; j++) w[i * rank + j] = wAll.data[i * k + j]!;
  const u = await matmul(qt, { rows: k, cols: rank, data: w }, { transA: true });
  const v = await matmul(pt, { rows: k, cols: rank, data: Float32Array.from(zRank.data) }, { transA: true });
  return { u, s: s.slice(0, rank), v };
}
