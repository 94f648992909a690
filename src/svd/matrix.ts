/**
 * Dense matrices: `{ rows, cols, data }`, row-major, contiguous.
 * `Matrix` holds f32 (the compute type of big products); `Matrix64` holds f64
 * (small cores, Gram matrices, anything where precision matters more than speed).
 */
export interface Matrix {
  rows: number;
  cols: number;
  /** rows × cols values, row-major. */
  data: Float32Array;
}

export interface Matrix64 {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** Transposed copy [cols, rows]. O(mn); prefer the transA/transB flags of `matmul`. */
export function transpose<M extends Matrix | Matrix64>(a: M): M {
  const out = new (a.data.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(a.data.length);
  transposeInto(a, out);
  return { rows: a.cols, cols: a.rows, data: out } as M;
}

/** aᵀ written into `out` (row-major [cols, rows], of either precision). */
export function transposeInto(a: Matrix | Matrix64, out: Float32Array | Float64Array): void {
  const { rows, cols, data } = a;
  // Blocked so that both the reads and the writes stay in cache.
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = data[i * cols + j]!;
    }
  }
}

/** ‖a‖_F², accumulated in f64. */
export function frobeniusSquared(a: { data: ArrayLike<number> }): number {
  let s = 0;
  const d = a.data;
  for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
  return s;
}

/** The first k columns of `a` [rows, ≥ k] as a new [rows, k] matrix (`a` itself when k = cols). */
export function leadingColumns<M extends Matrix | Matrix64>(a: M, k: number): M {
  if (k === a.cols) return a;
  if (k > a.cols) throw new RangeError(`leadingColumns: ${k} columns asked of a matrix with ${a.cols}`);
  const out = new (a.data.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(a.rows * k);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols, i * a.cols + k), i * k);
  return { rows: a.rows, cols: k, data: out } as M;
}
