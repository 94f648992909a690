/**
 * Exact SVD: every singular value of a matrix (and the vectors on request), as opposed to
 * the randomized top-k. Two routes:
 * - `exact`: one-sided Jacobi in f64 on the smaller side (`exact-jacobi.ts`). Full relative
 *   precision: every σ of the f32 input, however small, to ≈ 1e-13 relative for graded
 *   matrices B·D (Demmel & Veselić 1992), ≈ 1e-15·σ₁ absolute in any case. Used for
 *   vectors and, for values, while min(m, n) ≤ JACOBI_MAX_VALUES.
 * - `bidiagonal`: two-stage bidiagonalisation in f64 (`exact-bidiagonal.ts`), products in the
 *   f64 GEMM engine: every σ to ≈ √(m·n)·ε₆₄·‖A‖ absolute, so within 1e-9 relative down to
 *   1e-6·σ₁. The default above JACOBI_MAX_VALUES.
 * - `gram`: eigenvalues of AᵀA (or AAᵀ) by a two-stage reduction whose bulk runs in the f32
 *   GEMM engine (`exact-gram.ts`). Values well above (n^½·ε₃₂)^½·σ₁ (≈ 1e-3·σ₁ at n = 256,
 *   2e-3·σ₁ at 4096) to f32-level relative accuracy, smaller ones only to that absolute
 *   error (they may read as 0). Faster; on request only (`route: 'gram'`).
 */
import { DeltarankError } from '../errors.js';
import { bidiagonalRoute } from './exact-bidiagonal.js';
import { gramSingularValues } from './exact-gram.js';
import { jacobiSvd } from './exact-jacobi.js';
import type { Matrix } from './matrix.js';

/**
 * Largest min(m, n) for which `singularValues` takes the Jacobi route: its ≈ 45·p³ scalar flops
 * stay under ≈ 0.1 s there, while the Gram route's fixed costs no longer dominate above it.
 */
export const JACOBI_MAX_VALUES = 128;

/** Scalar f64 flops per second of plain TypeScript loops, and f32 GEMM flops per second of the engine, on this 2-core machine. */
const SCALAR_RATE = 1e9;
const GEMM_RATE = 1.5e11;
/**
 * The bidiagonal route's cost on a quiet 2-core machine, fitted to its stages' times (dense → band
 * of 512² … 4096², the QR of 2048×256 … 11008×4096, chase and values of 512² … 4096²): f64 flops
 * per second of the engine's products (onnxruntime's double MatMul), and seconds per entry of
 * the plain-TypeScript work beside them (panel factorizations, forming reflectors, the passes that
 * subtract an update), per p² in the band stage and per q·p in the QR (that one shrinks as p
 * grows: ≈ 8e-8 at 2048×256, 1.7e-8 at 5632×2048, 0.9e-8 at 11008×4096 since the engine
 * subtracts the QR's updates itself; the constant keeps the small shapes', whose estimates decide
 * when analyze buys a complete spectrum at once). 4096²: 4.2 s dense → band (est. 4.2), 1.2 s
 * chase and 0.4 s values (est. 1.7); 256×2048: 51–58 ms in all (est. 59); 11008×4096: 8.1–10.7 s
 * in all (est. 14.1, high: a larger matrix than analyze's default route takes).
 */
const GEMM64_RATE = 7e10;
const BAND_SECONDS_PER_P2 = 95e-9;
const QR_SECONDS_PER_QP = 8e-8;
/**
 * Seconds per p² of the bulge chase and the bidiagonal values together: 86–120 ns measured at
 * 512² … 4096² with a band of 32, 67–92 ns at 2048² and 4096² with the band of 16 now taken, less
 * since dqds replaced the values' QR (4096²: 0.31 against 0.46 s). Kept at 100 ns: an estimate on
 * the high side never sends a tensor to the complete route on the strength of one machine's
 * faster figures.
 */
const BIDIAGONAL_SECONDS_PER_P2 = 1e-7;

export interface SingularValues {
  /** All min(m, n) singular values, descending. */
  s: Float64Array;
  /**
   * `exact`: one-sided Jacobi, full precision; `bidiagonal`: two-stage bidiagonalisation in f64,
   * ≈ √(m·n)·ε₆₄·‖A‖ absolute; `gram`: eigenvalues of the f32 Gram matrix, values below
   * ≈ (n^½·ε₃₂)^½·σ₁ ≈ 1e-3·σ₁ unresolved.
   */
  method: 'exact' | 'bidiagonal' | 'gram';
}

/**
 * All min(m, n) singular values of `a` (f32 [m, n], not changed), descending: Jacobi when
 * min(m, n) ≤ JACOBI_MAX_VALUES, else the bidiagonal route, or the Gram route when asked (see
 * `method` for what each guarantees). Cost: ≈ 45·p³ scalar flops (Jacobi); ≈ 4·q·p² − 4/3·p³
 * f64 GEMM flops plus ≈ 300·p² scalar ones (bidiagonal); ≈ 2·q·p² + 2·p³ f32 GEMM flops plus
 * ≈ 7·16·p² scalar ones (Gram); p = min(m, n), q = max(m, n). `completeCostSeconds` estimates them.
 * Throws DeltarankError on a NaN or infinite entry.
 * @example const { s, method } = await singularValues(delta);
 */
export async function singularValues(
  a: Matrix,
  { route = 'auto' }: { route?: 'auto' | 'bidiagonal' | 'gram' } = {},
): Promise<SingularValues> {
  const maxAbs = checkedMaxAbs(a, 'singularValues');
  const p = Math.min(a.rows, a.cols);
  if (route === 'auto' && p <= JACOBI_MAX_VALUES)
    return {
      s: (await jacobiSvd(smallerSideColumns(a), p, Math.max(a.rows, a.cols), { vectors: false })).s,
      method: 'exact',
    };
  if (route === 'gram') return { s: await gramSingularValues(a, { maxAbs }), method: 'gram' };
  return { s: await bidiagonalRoute(a), method: 'bidiagonal' };
}

/**
 * Full-precision SVD a = u·diag(s)·vᵀ by one-sided Jacobi in f64 on the smaller side:
 * s [p] descending (p = min(m, n)), and with `vectors` u [m, p], v [n, p] (f32, orthonormal
 * columns; those of zero singular values complete the basis). Cost ≈ 2·q·p² + 45·p³ flops
 * in plain TypeScript (q = max(m, n)), twice that with vectors: meant for small and
 * medium matrices (≈ 0.1 s at 128², ≈ 0.6 s at 256²). Throws DeltarankError on a NaN or
 * infinite entry.
 * @example const { s, u, v } = await exactSvd(small, { vectors: true });
 */
export async function exactSvd(
  a: Matrix,
  { vectors = false }: { vectors?: boolean } = {},
): Promise<{ s: Float64Array; u?: Matrix; v?: Matrix }> {
  checkedMaxAbs(a, 'exactSvd');
  const { rows: m, cols: n } = a;
  const p = Math.min(m, n);
  const q = Math.max(m, n);
  const res = await jacobiSvd(smallerSideColumns(a), p, q, { vectors });
  if (!vectors) return { s: res.s };
  // Jacobi factored X = L·diag(s)·Rᵀ, X = A when m ≥ n and Aᵀ otherwise; L's vectors have length q.
  const long = columnsToMatrix(res.left!, p, q);
  const short = columnsToMatrix(res.right!, p, p);
  return m >= n ? { s: res.s, u: long, v: short } : { s: res.s, u: short, v: long };
}

/**
 * Estimated seconds of `singularValues` on an m×n matrix on this machine, by the flop counts of
 * the route it takes and the rates above: what `analyze` weighs against its refinement cap.
 * @example completeCostSeconds(4096, 4096) // ≈ 5.9
 */
export function completeCostSeconds(m: number, n: number): number {
  const p = Math.min(m, n);
  const q = Math.max(m, n);
  if (p <= JACOBI_MAX_VALUES) return (2 * q * p * p + 45 * p ** 3) / SCALAR_RATE;
  const p2 = p * p;
  // Through the QR first when the long side is 5/3 of the short one or more (exact-bidiagonal.ts).
  const qr = q >= (5 / 3) * p ? (2 * q * p2 - (2 / 3) * p ** 3) / GEMM64_RATE + QR_SECONDS_PER_QP * q * p : 0;
  const bandRows = qr > 0 ? p : q;
  const band = (4 * bandRows * p2 - (4 / 3) * p ** 3) / GEMM64_RATE + BAND_SECONDS_PER_P2 * p2;
  return qr + band + BIDIAGONAL_SECONDS_PER_P2 * p2;
}

/**
 * Estimated seconds of a randomized range of K columns with `powerIters` power iterations on an
 * m×n matrix (products with A, re-orthonormalisation, the K×K Jacobi core).
 * @example randomizedCostSeconds(4096, 4096, 74, 2) // ≈ 0.06
 */
export function randomizedCostSeconds(m: number, n: number, K: number, powerIters: number): number {
  const q = Math.max(m, n);
  return ((2 + 2 * powerIters) * 2 * m * n * K + 12 * q * K * K) / GEMM_RATE + (30 * K ** 3) / SCALAR_RATE;
}

/**
 * Whether all singular values of an m×n matrix cost less than a randomized top-k with
 * oversampling 10 and two power iterations (Halko–Martinsson–Tropp 2011, Alg. 4.4), by the
 * flop counts of each route at this machine's GEMM and scalar rates. With `vectors`, the
 * question is `exactSvd(a, { vectors: true })` (Jacobi, whatever the size) against a
 * randomized SVD with vectors. True when k reaches min(m, n) − 10, where the randomized
 * sketch is no smaller than the matrix.
 * @example exactIsCheaper(4096, 4096, 64); // false
 */
export function exactIsCheaper(
  m: number,
  n: number,
  k: number,
  { vectors = false }: { vectors?: boolean } = {},
): boolean {
  const p = Math.min(m, n);
  const q = Math.max(m, n);
  const l = k + 10;
  if (l >= p) return true;
  // One-sided Jacobi of an a×b matrix (a ≥ b): the QR, then ≈ 9 sweeps of 5·b³; vectors double both.
  const jacobi = (a: number, b: number) => ((vectors ? 4 : 2) * a * b * b + (vectors ? 90 : 45) * b ** 3) / SCALAR_RATE;
  const exact = vectors || p <= JACOBI_MAX_VALUES ? jacobi(q, p) : completeCostSeconds(m, n);
  // Six products with the matrix (range finder and two power iterations), re-orthonormalisations of q×l blocks, the small SVD of l×p.
  const randomized = (12 * m * n * l + 12 * q * l * l) / GEMM_RATE + jacobi(p, l);
  return exact <= randomized;
}

/** max |a_ij|, or a DeltarankError naming the first non-finite entry. */
function checkedMaxAbs(a: Matrix, fn: string): number {
  const { rows, cols, data } = a;
  if (data.length !== rows * cols)
    throw new DeltarankError(`${fn}: a ${rows}×${cols} matrix needs ${rows * cols} values, got ${data.length}`);
  // Four running maxima, so that no comparison waits on the one before (2.4× faster at 11008×4096);
  // Math.max passes a NaN on, so one check at the end finds any non-finite entry.
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  let i = 0;
  for (const end = data.length - 3; i < end; i += 4) {
    m0 = Math.max(m0, Math.abs(data[i]!));
    m1 = Math.max(m1, Math.abs(data[i + 1]!));
    m2 = Math.max(m2, Math.abs(data[i + 2]!));
    m3 = Math.max(m3, Math.abs(data[i + 3]!));
  }
  for (; i < data.length; i++) m0 = Math.max(m0, Math.abs(data[i]!));
  const max = Math.max(m0, m1, m2, m3);
  if (max < Infinity) return max;
  const at = data.findIndex((x) => !Number.isFinite(x));
  throw new DeltarankError(
    `${fn}: the ${rows}×${cols} matrix has a non-finite entry (${data[at]}) at row ${Math.floor(at / cols)}, column ${at % cols}`,
  );
}

/** The p columns of the len×p matrix Jacobi works on (A when m ≥ n, else Aᵀ), as the rows of an f64 [p, len] array. */
function smallerSideColumns(a: Matrix): Float64Array {
  const { rows: m, cols: n, data } = a;
  const out = new Float64Array(m * n);
  if (m < n) {
    out.set(data);
    return out;
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = data[i * n + j]!;
  return out;
}

/** The p vectors held as rows of `rowsData` ([p, len]) as the columns of an f32 [len, p] matrix. */
function columnsToMatrix(rowsData: Float64Array, p: number, len: number): Matrix {
  const data = new Float32Array(len * p);
  for (let j = 0; j < p; j++) for (let i = 0; i < len; i++) data[i * p + j] = rowsData[j * len + i]!;
  return { rows: len, cols: p, data };
}
