/**
 * Matrix products C = op(A)·op(B) on row-major f32 matrices.
 * (Engine selection — onnxruntime-node first, this plain loop as fallback — is added here.)
 */
import { ShapeError } from '../errors.js';
import type { Matrix } from './matrix.js';

export interface MatmulOptions {
  /** Use Aᵀ in place of A (no copy is made). */
  transA?: boolean;
  /** Use Bᵀ in place of B (no copy is made). */
  transB?: boolean;
}

/**
 * C = op(A)·op(B), f32, a new matrix [m, n]. Cost 2·m·n·k flops.
 * @example const c = await matmul(a, b, { transA: true }); // Aᵀ·B
 */
export async function matmul(a: Matrix, b: Matrix, { transA = false, transB = false }: MatmulOptions = {}): Promise<Matrix> {
  return matmulPlain(a, b, { transA, transB });
}

/** The plain-JS product: exact reference and fallback. Accumulates in f64 per output row block. */
export function matmulPlain(a: Matrix, b: Matrix, { transA = false, transB = false }: MatmulOptions = {}): Matrix {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const kb = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (k !== kb) throw new ShapeError(`matmul: inner sizes differ (${m}×${k} by ${kb}×${n})`);
  const out = new Float32Array(m * n);
  const row = new Float64Array(n);
  const A = a.data;
  const Bd = b.data;
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const aip = transA ? A[p * a.cols + i]! : A[i * a.cols + p]!;
      if (aip === 0) continue;
      if (transB) {
        for (let j = 0; j < n; j++) row[j]! += aip * Bd[j * b.cols + p]!;
      } else {
        const off = p * b.cols;
        for (let j = 0; j < n; j++) row[j]! += aip * Bd[off + j]!;
      }
    }
    out.set(row, i * n);
  }
  return { rows: m, cols: n, data: out };
}
