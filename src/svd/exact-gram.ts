/**
 * All singular values of a large matrix through its Gram matrix: σ_i = √λ_i(AᵀA) (AAᵀ when
 * wide). The Gram product and the dense → band reduction run in the f32 GEMM engine, so
 * the eigenvalues carry absolute errors of about n^½·ε₃₂·σ₁², and a singular value is
 * only resolved when σ_i ≳ (n^½·ε₃₂)^½·σ₁ (≈ 1e-3·σ₁ at n = 256, 2e-3·σ₁ at 4096): enough
 * for energy curves and ranks, not for tiny singular values (the Jacobi route keeps those).
 */
import { matmul } from './gemm.js';
import type { Matrix } from './matrix.js';
import { symmetricEigenvalues } from './symmetric-eigenvalues.js';

/** Entries within [2^-40, 2^40] square safely in f32 (whose range is 2^±126) even when summed over many terms. */
const SAFE_MAGNITUDE_LOG2 = 40;

/**
 * All min(m, n) singular values of `a` (f32 [m, n], not changed), descending, by the Gram
 * route. Absolute error ≈ (n^½·ε₃₂)^½·σ₁ on the smallest values, relative ≈ ε₃₂·σ₁²/σ_i²
 * on the others. `maxAbs` is max |a_ij| (the caller has scanned for it). Cost ≈ 2·m·n·p + 2·p³ flops in products (p = min(m, n)) plus ≈ 7·p²·32 in
 * plain TypeScript; memory two p×p f32 matrices.
 * @example const s = await gramSingularValues(delta); // s[0] ≥ s[1] ≥ … ≥ 0
 */
export async function gramSingularValues(a: Matrix, { maxAbs }: { maxAbs: number }): Promise<Float64Array> {
  const p = Math.min(a.rows, a.cols);
  if (p === 0 || maxAbs === 0) return new Float64Array(p);
  // A power of two keeps the scaling exact while bringing the squares into f32's range.
  const shift = -Math.round(Math.log2(maxAbs));
  const scaled = Math.abs(shift) > SAFE_MAGNITUDE_LOG2 ? scale(a, 2 ** shift) : a;
  const gram = await matmul(scaled, scaled, a.rows >= a.cols ? { transA: true } : { transB: true });
  const lambda = await symmetricEigenvalues(gram);
  const unscale = scaled === a ? 1 : 2 ** -shift;
  const s = new Float64Array(p);
  for (let i = 0; i < p; i++) s[i] = Math.sqrt(Math.max(lambda[i]!, 0)) * unscale;
  return s;
}

function scale(a: Matrix, factor: number): Matrix {
  const data = new Float32Array(a.data.length);
  for (let i = 0; i < data.length; i++) data[i] = a.data[i]! * factor;
  return { rows: a.rows, cols: a.cols, data };
}
