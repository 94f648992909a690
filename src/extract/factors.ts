/**
 * From an SVD of ΔW to LoRA factors, and the error of the factors as written.
 */
import type { DType } from '../io/index.js';
import { fromFloat32, toFloat32 } from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import { frobeniusSquared, residualSquares } from '../svd/index.js';

/**
 * Split the singular values evenly: B = U_r Σ_r^{1/2} [out, r], A = Σ_r^{1/2} V_rᵀ [r, in],
 * so that B·A = U_r Σ_r V_rᵀ (PEFT's lora_B / lora_A). `u` [out, ≥r], `v` [in, ≥r].
 * For an embedding (ΔW [vocab, dim] = (B·A)ᵀ) pass `embedding`: A = Σ^{1/2} U_rᵀ [r, vocab], B = V_r Σ^{1/2} [dim, r].
 */
export function splitFactors(
  u: Matrix,
  s: ArrayLike<number>,
  v: Matrix,
  r: number,
  embedding = false,
): { a: Float32Array; b: Float32Array } {
  const left = embedding ? v : u; // rows of B
  const right = embedding ? u : v; // columns of A
  const b = new Float32Array(left.rows * r);
  const a = new Float32Array(r * right.rows);
  const root = Array.from({ length: r }, (_, j) => Math.sqrt(Math.max(0, s[j]!)));
  for (let i = 0; i < left.rows; i++)
    for (let j = 0; j < r; j++) b[i * r + j] = left.data[i * left.cols + j]! * root[j]!;
  for (let k = 0; k < right.rows; k++)
    for (let j = 0; j < r; j++) a[j * right.rows + k] = right.data[k * right.cols + j]! * root[j]!;
  return { a, b };
}

/** Round f32 values to what `dtype` stores (a copy), so errors are measured on the factors as written. */
export function roundTo(dtype: DType, data: Float32Array): Float32Array {
  return dtype === 'F32' ? data : toFloat32(dtype, fromFloat32(dtype, data));
}

/** Values of ΔW handed to one residual product: 32 MB of f32, so the product's memory stays bounded whatever the module's size. */
const RESIDUAL_BLOCK_VALUES = 8 * 1024 * 1024;

/**
 * ‖ΔW − scale·B·A‖_F (f64 over rows) for ΔW [out, in] and factors B [out, r], A [r, in];
 * with `embedding`, ΔW [vocab, dim] is compared with scale·(B·A)ᵀ. One block of rows at a time,
 * the product subtracted as the GEMM forms it (residualSquares), so it is never handed back.
 */
export async function residualNorm(
  delta: Matrix,
  a: Float32Array,
  b: Float32Array,
  r: number,
  scale: number,
  embedding = false,
): Promise<number> {
  const { rows, cols } = delta;
  if (r === 0) return Math.sqrt(frobeniusSquared(delta));
  // The scale goes on the smaller factor's copy; B·A is formed unscaled when scale is 1.
  const scaled = scale === 1 ? b : b.map((x) => x * scale);
  const block = Math.max(1, Math.floor(RESIDUAL_BLOCK_VALUES / cols));
  let sq = 0;
  for (let i0 = 0; i0 < rows; i0 += block) {
    const rb = Math.min(block, rows - i0);
    const target: Matrix = { rows: rb, cols, data: delta.data.subarray(i0 * cols, (i0 + rb) * cols) };
    if (embedding) {
      // Rows i0..i0+rb of (B·A)ᵀ = A[:, i0..]ᵀ·Bᵀ, with A [r, vocab] and B [dim, r].
      const slice = new Float32Array(r * rb);
      for (let k = 0; k < r; k++) slice.set(a.subarray(k * rows + i0, k * rows + i0 + rb), k * rb);
      sq += await residualSquares(
        target,
        { rows: r, cols: rb, data: slice },
        { rows: cols, cols: r, data: scaled },
        { transA: true, transB: true },
      );
    } else {
      sq += await residualSquares(
        target,
        { rows: rb, cols: r, data: scaled.subarray(i0 * r, (i0 + rb) * r) },
        { rows: r, cols, data: a },
      );
    }
  }
  return Math.sqrt(sq);
}
