/**
 * QR of tall-skinny blocks [m, k], k ≪ m: the orthonormalisation step of randomized SVD.
 *
 * `orthonormalizeRows` runs CholeskyQR through the GEMM engine (Fukaya, Nakatsukasa et al.
 * 2014): Gram YᵀY by one product, Cholesky in f64, then Y·R⁻¹ by a second product, repeated
 * until the columns are orthonormal (blocks are held transposed, see there). Columns are scaled
 * to unit norm first (the Gram's diagonal is taken in f64, where f32 sums of squares would lose
 * the most), and an ill-conditioned Gram gets a diagonal shift (shifted CholeskyQR3, Fukaya et
 * al. 2020), so a numerically rank-deficient block still converges: the shift bounds every
 * pass's condition number and the directions Y lacks are filled from its rounding noise, which
 * is as good as any orthonormal completion. Exactly degenerate blocks (a zero column, a Gram
 * that stays singular) fall back to Householder QR in f64.
 */
import { DeltarankError, ShapeError } from '../errors.js';
import { finishNow, turnDue } from '../yield.js';
import { matmul, matmul64, subtractProduct64 } from './gemm.js';
import { type Matrix, type Matrix64, transpose } from './matrix.js';
import { returnScratch64, takeScratch64 } from './scratch.js';
import { householderQrKernel, KERNEL_MAX_VALUES } from './wasm-kernels.js';

/** f32 unit roundoff. */
const EPS32 = 2 ** -24;
/** Passes before giving up on CholeskyQR: a rank-deficient block needs ≈ 6 (each shifted pass lifts a lacking direction by 1/√shift). */
const MAX_PASSES = 10;
/** A scaled Gram this close to I (max off-diagonal) is orthonormalised to f32 precision by one more pass. */
const LAST_PASS_OFF_DIAGONAL = 0.1;

/**
 * Householder QR in f64: a = q·r, q [m, k] with orthonormal columns (always, even for a
 * rank-deficient or zero `a`), r [k, k] upper triangular. Needs m ≥ k. Cost ≈ 4·m·k² flops in
 * plain TypeScript; a copy. The one Householder QR of this library (`householderQrColumns`),
 * laid out row-major.
 * @example const { q, r } = householderQr({ rows: 100, cols: 5, data });
 */
export function householderQr(a: Matrix | Matrix64): { q: Matrix64; r: Matrix64 } {
  const { rows: m, cols: k } = a;
  if (k > m) throw new ShapeError(`householderQr: needs rows ≥ cols, got ${m}×${k}`);
  // Column j of a as row j: every inner loop of the factorisation runs down one column.
  const cols = new Float64Array(k * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) cols[j * m + i] = a.data[i * k + j]!;
  const tau = householderQrColumns(cols, k, m);
  const r = new Float64Array(k * k);
  for (let c = 0; c < k; c++) for (let i = 0; i <= c; i++) r[i * k + c] = cols[c * m + i]!;
  // Q = H_0 ⋯ H_{k−1} [I; 0]: the reflectors applied to the first k unit vectors.
  const e = new Float64Array(k * m);
  for (let c = 0; c < k; c++) e[c * m + c] = 1;
  applyHouseholdersBack(cols, tau, k, m, e);
  const q = new Float64Array(m * k);
  for (let c = 0; c < k; c++) for (let i = 0; i < m; i++) q[i * k + c] = e[c * m + i]!;
  return { q: { rows: m, cols: k, data: q }, r: { rows: k, cols: k, data: r } };
}

/**
 * Householder QR of the len×p matrix X whose columns are the rows of `cols` ([p, len]), in
 * place: afterwards row k holds R's column k in entries 0..k and reflector k's tail (its
 * head is 1) in entries k+1..len. Returns the p reflector scalars τ (H_k = I − τ_k·v_k·v_kᵀ).
 * Column-wise backward stable, which keeps the relative accuracy of a Jacobi step that
 * follows. Cost 2·len·p² − ⅔·p³ flops.
 */
export function householderQrColumns(cols: Float64Array, p: number, len: number): Float64Array {
  return finishNow(householderQrColumnsSteps(cols, p, len));
}

/**
 * Panel width below which `householderQrColumnsBlocked` runs the plain kernel (WebAssembly, see
 * wasm-kernels.ts). A 256×11008 panel (the tall QR's): 65–69 ms at 16, 63–66 at 32, 71–75 at
 * 8; 256×32000: 174–183 ms at 16, 188–196 at 32, 188–208 at 8. (In TypeScript the kernel was
 * slower and 8 was best: 87 ms, against 101 at 16.)
 */
const QR_LEAF = 16;

/**
 * `householderQrColumns` by recursive halving (Elmroth & Gustavson 2000): the left half's
 * reflectors are applied to the right half as three products through the f64 GEMM engine
 * (compact WY), and only panels of `leaf` columns run the plain kernel, so its
 * 2·len·p² flops in plain TypeScript fall to 2·len·p·leaf. Same layout, result and τ as
 * `householderQrColumns` (to rounding); needs p ≤ len.
 * @example const tau = await householderQrColumnsBlocked(cols, 128, 4096);
 */
export async function householderQrColumnsBlocked(
  cols: Float64Array,
  p: number,
  len: number,
  leaf = QR_LEAF,
): Promise<Float64Array> {
  if (p > len) return householderQrColumns(cols, p, len);
  return qrColumnsFrom(cols, p, len, 0, leaf);
}

/**
 * The recursion of `householderQrColumnsBlocked` on rows `start` … len − 1 of the p columns
 * (rows above are R's, finished, and left alone; p ≤ len − start, which both halves inherit:
 * p₂ ≤ len − start − p₁). The right half is factored where it lies,
 * from row start + p₁ on: its reflectors, as Vᵀ with zeros up to their first row, span the
 * whole column length, so every product runs on whole columns (≤ start + p extra rows of len)
 * and no half is copied out and back (a 256×11008 panel: ≈ 6 copies of 11 MB fewer).
 */
async function qrColumnsFrom(
  cols: Float64Array,
  p: number,
  len: number,
  start: number,
  leaf: number,
): Promise<Float64Array> {
  if (p <= leaf) return householderQrKernelFrom(cols, p, len, start);
  const p1 = leaf * Math.ceil(p / 2 / leaf);
  const p2 = p - p1;
  const left = cols.subarray(0, p1 * len);
  const tau1 = await qrColumnsFrom(left, p1, len, start, leaf);
  // Qᵀ·X₂ = X₂ − V·Tᵀ·Vᵀ·X₂ for the right columns X₂, held transposed as rows: X₂ᵀ −= (X₂ᵀ·V)·T·Vᵀ.
  // Rows above `start` meet V's zeros and come out unchanged. Work arrays from the pool (see
  // wyFactors), handed back before the recursion takes its own.
  const { vt, t: tData } = await wyFactors(left, tau1, len, takeScratch64(p1 * len), start);
  const t: Matrix64 = { rows: p1, cols: p1, data: tData };
  const right: Matrix64 = { rows: p2, cols: len, data: cols.subarray(p1 * len, p * len) };
  const into = takeScratch64(p2 * len);
  const xv = await matmul64(right, vt, { transB: true });
  // The engine subtracts the product (one session call), into a work array copied back:
  // a native copy in place of a plain-TypeScript pass over both.
  await subtractProduct64(right, await matmul64(xv, t), vt, { into });
  right.data.set(into);
  returnScratch64(vt.data, into);
  const tau2 = await qrColumnsFrom(right.data, p2, len, start + p1, leaf);
  const tau = new Float64Array(p);
  tau.set(tau1);
  tau.set(tau2, p1);
  return tau;
}

/**
 * `householderQrColumns` of rows start … len − 1 of the p columns (column c at cols[c·len …]):
 * the WebAssembly kernel reads them where they lie; a panel too large for it is copied out.
 */
function householderQrKernelFrom(cols: Float64Array, p: number, len: number, start: number): Float64Array {
  const rest = len - start;
  if (start === 0) return householderQrColumns(cols, p, len);
  if (kernelTakes(p, rest)) return householderQrKernel(cols, p, rest, len, start);
  const sub = new Float64Array(p * rest);
  for (let c = 0; c < p; c++) sub.set(cols.subarray(c * len + start, (c + 1) * len), c * rest);
  const tau = householderQrColumns(sub, p, rest);
  for (let c = 0; c < p; c++) cols.set(sub.subarray(c * rest, (c + 1) * rest), c * len + start);
  return tau;
}

/**
 * Flops of a panel the WebAssembly kernel takes in one call (≈ 2·len·p²): at its 4–6 GFLOP/s, a
 * call of at most ≈ 50–70 ms, so that a signal still waits no longer than between two turns
 * (src/yield.ts). Larger panels run in TypeScript, yielding.
 */
const KERNEL_MAX_FLOPS = 2 ** 28;

/** Whether the WebAssembly kernel takes a panel of p columns of len entries in one call. */
function kernelTakes(p: number, len: number): boolean {
  return p * len <= KERNEL_MAX_VALUES && 2 * len * p * p <= KERNEL_MAX_FLOPS;
}

/** `householderQrColumns` as a generator kernel that yields when a turn of the event loop is due (src/yield.ts). */
export function* householderQrColumnsSteps(
  cols: Float64Array,
  p: number,
  len: number,
): Generator<void, Float64Array, undefined> {
  if (kernelTakes(p, len)) return householderQrKernel(cols, p, len);
  return yield* householderQrColumnsPlainSteps(cols, p, len);
}

/**
 * The same arithmetic in TypeScript (wasm-kernels.wat's, to rounding: sums in another order),
 * yielding when a turn is due: panels too large for the WebAssembly kernel.
 */
export function* householderQrColumnsPlainSteps(
  cols: Float64Array,
  p: number,
  len: number,
): Generator<void, Float64Array, undefined> {
  const reflectors = Math.min(p, len);
  const tau = new Float64Array(reflectors);
  for (let k = 0; k < reflectors; k++) {
    if (turnDue()) yield;
    const row = k * len;
    // ‖x‖ in one pass where no square can overflow or underflow, by a scaled pass otherwise.
    let scale = 0;
    let norm2 = 0;
    for (let i = k; i < len; i++) {
      const x = cols[row + i]!;
      scale = Math.max(scale, Math.abs(x));
      norm2 += x * x;
    }
    if (scale === 0) continue;
    let norm = Math.sqrt(norm2);
    if (!(scale < 1e150 && scale > 1e-150)) {
      const inv = 1 / scale;
      norm2 = 0;
      for (let i = k; i < len; i++) {
        const x = cols[row + i]! * inv;
        norm2 += x * x;
      }
      norm = scale * Math.sqrt(norm2);
    }
    const alpha = cols[row + k]!;
    const beta = -Math.sign(alpha || 1) * norm;
    // v = [1, x_{k+1..}/(α − β)], τ = (β − α)/β: H·x = β·e_k.
    const inv = 1 / (alpha - beta);
    for (let i = k + 1; i < len; i++) cols[row + i]! *= inv;
    const t = (beta - alpha) / beta;
    tau[k] = t;
    cols[row + k] = beta;
    // Four columns per pass over the reflector: a quarter of its loads, and four independent
    // sums in flight (this loop is the panel QR's cost).
    let j = k + 1;
    for (; j + 3 < p; j += 4) {
      const r1 = j * len;
      const r2 = r1 + len;
      const r3 = r2 + len;
      const r4 = r3 + len;
      let d1 = cols[r1 + k]!;
      let d2 = cols[r2 + k]!;
      let d3 = cols[r3 + k]!;
      let d4 = cols[r4 + k]!;
      for (let i = k + 1; i < len; i++) {
        const h = cols[row + i]!;
        d1 += h * cols[r1 + i]!;
        d2 += h * cols[r2 + i]!;
        d3 += h * cols[r3 + i]!;
        d4 += h * cols[r4 + i]!;
      }
      d1 *= t;
      d2 *= t;
      d3 *= t;
      d4 *= t;
      cols[r1 + k]! -= d1;
      cols[r2 + k]! -= d2;
      cols[r3 + k]! -= d3;
      cols[r4 + k]! -= d4;
      for (let i = k + 1; i < len; i++) {
        const h = cols[row + i]!;
        cols[r1 + i]! -= d1 * h;
        cols[r2 + i]! -= d2 * h;
        cols[r3 + i]! -= d3 * h;
        cols[r4 + i]! -= d4 * h;
      }
    }
    for (; j < p; j++) {
      const rj = j * len;
      let dot = cols[rj + k]!;
      for (let i = k + 1; i < len; i++) dot += cols[row + i]! * cols[rj + i]!;
      dot *= t;
      cols[rj + k]! -= dot;
      for (let i = k + 1; i < len; i++) cols[rj + i]! -= dot * cols[row + i]!;
    }
  }
  return tau;
}

/** left (rows of length len, each a vector) ← Q·left, with Q = H₀·H₁·…·H_{p−1} as left by `householderQrColumns`. */
export function applyHouseholdersBack(
  cols: Float64Array,
  tau: Float64Array,
  p: number,
  len: number,
  left: Float64Array,
): void {
  finishNow(applyHouseholdersBackSteps(cols, tau, p, len, left));
}

/** `applyHouseholdersBack` as a generator kernel that yields when a turn of the event loop is due (src/yield.ts). */
export function* applyHouseholdersBackSteps(
  cols: Float64Array,
  tau: Float64Array,
  p: number,
  len: number,
  left: Float64Array,
): Generator<void, void, undefined> {
  // tau holds min(p, len) reflectors: a wide block (p > len) has fewer than its columns.
  for (let k = tau.length - 1; k >= 0; k--) {
    if (turnDue()) yield;
    const t = tau[k]!;
    if (t === 0) continue;
    const row = k * len;
    for (let j = 0; j < p; j++) {
      const rj = j * len;
      let dot = left[rj + k]!;
      for (let i = k + 1; i < len; i++) dot += cols[row + i]! * left[rj + i]!;
      dot *= t;
      left[rj + k]! -= dot;
      for (let i = k + 1; i < len; i++) left[rj + i]! -= dot * cols[row + i]!;
    }
  }
}

/**
 * Cholesky factor R (upper, G + shift·I = RᵀR) of a symmetric k×k f64 matrix, a new array.
 * Null when a pivot is not positive; `minPivot2` is the smallest squared pivot.
 */
function cholesky(g: Float64Array, k: number, shift: number): { r: Float64Array; minPivot2: number } | null {
  const r = new Float64Array(k * k);
  let minPivot2 = Infinity;
  for (let j = 0; j < k; j++) {
    let d = g[j * k + j]! + shift;
    for (let p = 0; p < j; p++) d -= r[p * k + j]! * r[p * k + j]!;
    if (!(d > 0)) return null;
    minPivot2 = Math.min(minPivot2, d);
    const rjj = Math.sqrt(d);
    r[j * k + j] = rjj;
    for (let l = j + 1; l < k; l++) {
      let s = g[j * k + l]!;
      for (let p = 0; p < j; p++) s -= r[p * k + j]! * r[p * k + l]!;
      r[j * k + l] = s / rjj;
    }
  }
  return { r, minPivot2 };
}

/** Σ x² over data[start, end) in f64; four accumulators let the loop pipeline (1.8× one). */
function sumSquares(data: Float32Array, start: number, end: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = start;
  for (const end4 = start + ((end - start) & ~3); i < end4; i += 4) {
    const a = data[i]!;
    const b = data[i + 1]!;
    const c = data[i + 2]!;
    const d = data[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (; i < end; i++) s0 += data[i]! * data[i]!;
  return s0 + s1 + s2 + s3;
}

/** Inverse of an upper-triangular k×k f64 matrix with a non-zero diagonal. */
function invertUpper(r: Float64Array, k: number): Float64Array {
  const inv = new Float64Array(k * k);
  for (let j = k - 1; j >= 0; j--) {
    inv[j * k + j] = 1 / r[j * k + j]!;
    for (let i = j - 1; i >= 0; i--) {
      let s = 0;
      for (let p = i + 1; p <= j; p++) s += r[i * k + p]! * inv[p * k + j]!;
      inv[i * k + j] = -s / r[i * k + i]!;
    }
  }
  return inv;
}

/** c = a·b for upper-triangular k×k f64 matrices. */
function multiplyUpper(a: Float64Array, b: Float64Array, k: number): Float64Array {
  const c = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let p = i; p < k; p++) {
      const aip = a[i * k + p]!;
      if (aip === 0) continue;
      for (let j = p; j < k; j++) c[i * k + j]! += aip * b[p * k + j]!;
    }
  }
  return c;
}

/** What `orthonormalizeRows` returns: yt = rᵀ·qt, i.e. the thin QR y = q·r of y = ytᵀ. */
export interface ThinQr {
  /** [k, len], orthonormal rows (to ≈ 1e-6 in f32): the transposed Q. */
  qt: Matrix;
  /** [k, k] upper triangular, f64. */
  r: Matrix64;
  /** CholeskyQR passes run; 0 when Householder QR did the work. */
  passes: number;
}

/**
 * Orthonormal basis of the rows of yt [k, len] (k ≤ len): the QR of the tall-skinny y = ytᵀ held
 * transposed, the layout in which both products with a big A run as plain row-major GEMMs
 * (Qᵀ·A, and Pᵀ·Aᵀ via the transB flag) and every sum over a row here is sequential.
 * Returns qt [k, len] f32 (a new matrix, yt is untouched) and r [k, k] upper triangular f64 with
 * yt = rᵀ·qt. Cost per CholeskyQR pass: 2·len·k² flops through the GEMM engine plus O(k³) in
 * f64; 1–3 passes on well-conditioned blocks, up to ≈ 6 on rank-deficient ones, Householder
 * (4·len·k², plain TypeScript) on exactly degenerate ones. `loose` stops after the first
 * unshifted pass: the rows then span the same space and are orthonormal only to ≈ 1e-2, which
 * is all a basis between power iterations needs (its span is what the next product uses).
 * @example const { qt } = await orthonormalizeRows(await matmul(omegaT, a, { transB: true })); // Qᵀ, Q a basis of range(A·Ω)
 */
export async function orthonormalizeRows(yt: Matrix, { loose = false }: { loose?: boolean } = {}): Promise<ThinQr> {
  const { rows: k, cols: len } = yt;
  if (k > len) throw new ShapeError(`orthonormalizeRows: needs rows ≤ cols, got ${k}×${len}`);
  if (k === 0)
    return {
      qt: { rows: 0, cols: len, data: new Float32Array(0) },
      r: { rows: 0, cols: 0, data: new Float64Array(0) },
      passes: 0,
    };
  // Larger than the f32 rounding of the scaled Gram (≈ ε·√len per entry, √k entries' worth in norm).
  const shift = 8 * EPS32 * Math.sqrt(len) * Math.sqrt(k);
  let cur = yt;
  let rTotal: Float64Array = new Float64Array(0);
  const norms2 = new Float64Array(k);
  const invNorms = new Float64Array(k);
  const g = new Float64Array(k * k);
  for (let pass = 1; pass <= MAX_PASSES; pass++) {
    const gram = await matmul(cur, cur, { transB: true });
    const cd = cur.data;
    let degenerate = false;
    for (let j = 0; j < k; j++) {
      const s = sumSquares(cd, j * len, (j + 1) * len);
      if (!Number.isFinite(s)) throw new DeltarankError('orthonormalizeRows: the block holds non-finite values');
      if (s === 0) degenerate = true;
      norms2[j] = s;
    }
    if (degenerate) break;
    for (let j = 0; j < k; j++) invNorms[j] = 1 / Math.sqrt(norms2[j]!);
    let offMax = 0;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const v = i === j ? 1 : gram.data[i * k + j]! * invNorms[i]! * invNorms[j]!;
        g[i * k + j] = v;
        if (i !== j) offMax = Math.max(offMax, Math.abs(v));
      }
    }
    let chol = cholesky(g, k, 0);
    const shifted = chol === null || chol.minPivot2 < shift;
    if (shifted) chol = cholesky(g, k, shift);
    if (chol === null) break;
    const rInv = invertUpper(chol.r, k);
    // Rows of the new block: Tᵀ·cur with T = D⁻¹·R⁻¹, D the row norms; Tᵀ is lower triangular.
    const tt = new Float32Array(k * k);
    for (let i = 0; i < k; i++) for (let j = i; j < k; j++) tt[j * k + i] = rInv[i * k + j]! * invNorms[i]!;
    cur = await matmul({ rows: k, cols: k, data: tt }, cur);
    // y_old = y_new · R·D, so the factors accumulate on the left.
    const rd = chol.r;
    for (let i = 0; i < k; i++) for (let j = i; j < k; j++) rd[i * k + j]! *= Math.sqrt(norms2[j]!);
    rTotal = pass === 1 ? rd : multiplyUpper(rd, rTotal, k);
    if (!shifted && (loose || offMax < LAST_PASS_OFF_DIAGONAL))
      return { qt: cur, r: { rows: k, cols: k, data: rTotal }, passes: pass };
  }
  const { q, r } = householderQr(transpose(yt));
  return { qt: { rows: k, cols: len, data: Float32Array.from(transpose(q).data) }, r, passes: 0 };
}

/**
 * The upper-triangular T [p, p] of the compact WY form Q = H₀⋯H_{p−1} = I − V·T·Vᵀ, from
 * vv = VᵀV ([p, p] row-major, symmetric) and the reflectors' τ (Schreiber & Van Loan 1989;
 * LAPACK dlarft, forward). Halves recursively: with V = [V₁ V₂],
 * T = [T₁ −T₁·(V₁ᵀV₂)·T₂; 0 T₂], the corner by two products through the GEMM engine, so that
 * of its p³/3 flops only those of blocks up to COMPACT_WY_LEAF columns run here (at p = 256:
 * 1.8 ms against 8.9 for the loops alone, once compiled). A new array.
 */
export async function compactWyFactor(
  vv: Float32Array | Float64Array,
  tau: Float64Array,
  p: number,
): Promise<Float64Array> {
  const t = new Float64Array(p * p);
  await compactWyBlock(vv, tau, p, 0, p, t);
  return t;
}

/** Widths up to which `compactWyFactor` runs the plain loops (the engine wins from ≈ 16³ products on). */
const COMPACT_WY_LEAF = 32;

/** T's diagonal block over reflectors c0 … c1 − 1, written into t (both [p, p] row-major). */
async function compactWyBlock(
  vv: Float32Array | Float64Array,
  tau: Float64Array,
  p: number,
  c0: number,
  c1: number,
  t: Float64Array,
): Promise<void> {
  const w = c1 - c0;
  if (w <= COMPACT_WY_LEAF) {
    for (let c = c0; c < c1; c++) {
      const tc = tau[c]!;
      t[c * p + c] = tc;
      // T[c0:c, c] = −τ_c · T[c0:c, c0:c] · (V[:, c0:c]ᵀ·v_c), the latter read as row c of the
      // symmetric VᵀV: both operands of each sum contiguous.
      const row = c * p;
      for (let r = c0; r < c; r++) {
        let acc = 0;
        for (let q = r; q < c; q++) acc += t[r * p + q]! * vv[row + q]!;
        t[r * p + c] = -tc * acc;
      }
    }
    return;
  }
  const h = c0 + Math.ceil(w / 2 / COMPACT_WY_LEAF) * COMPACT_WY_LEAF;
  await compactWyBlock(vv, tau, p, c0, h, t);
  await compactWyBlock(vv, tau, p, h, c1, t);
  const block = (from: Float32Array | Float64Array, r0: number, r1: number, k0: number, k1: number): Matrix64 => {
    const cols = k1 - k0;
    const data = new Float64Array((r1 - r0) * cols);
    for (let r = r0; r < r1; r++) for (let k = k0; k < k1; k++) data[(r - r0) * cols + k - k0] = from[r * p + k]!;
    return { rows: r1 - r0, cols, data };
  };
  const corner = await matmul64(
    await matmul64(block(t, c0, h, c0, h), block(vv, c0, h, h, c1)),
    block(t, h, c1, h, c1),
  );
  for (let r = c0; r < h; r++) for (let c = h; c < c1; c++) t[r * p + c] = -corner.data[(r - c0) * (c1 - h) + c - h]!;
}

/** Rows of V `reflectorMatrix` writes per pass over the reflectors (64 rows of 256 f64: 128 KiB). */
const REFLECTOR_ROW_BLOCK = 64;

/**
 * The reflectors of `householderQrColumns` (p of them, over `len` entries, stored in `cols` rows)
 * as a row-major [offset + len, p] matrix V with unit diagonal, placed from row `offset` (zeros
 * above), in `into` (every entry written) or a new array.
 */
export function reflectorMatrix(
  cols: Float64Array,
  tau: Float64Array,
  len: number,
  p: number,
  offset: number,
  into?: Float64Array,
): Matrix64 {
  const rows = offset + len;
  const data = into?.subarray(0, rows * p) ?? new Float64Array(rows * p);
  if (into) data.fill(0, 0, offset * p);
  // A transpose, by blocks of rows so that the rows written stay in cache while each column is read.
  for (let i0 = 0; i0 < len; i0 += REFLECTOR_ROW_BLOCK) {
    const i1 = Math.min(len, i0 + REFLECTOR_ROW_BLOCK);
    for (let c = 0; c < p; c++) {
      const from = c * len;
      let o = (offset + i0) * p + c;
      let i = i0;
      // Above and on the diagonal (the first p rows only), and all of a column without a reflector.
      const reflector = tau[c] !== 0;
      for (const head = reflector ? Math.min(i1, c + 1) : i1; i < head; i++, o += p)
        data[o] = reflector && i === c ? 1 : 0;
      for (; i < i1; i++, o += p) data[o] = cols[from + i]!;
    }
  }
  return { rows, cols: p, data };
}

/**
 * Vᵀ [p, len] of the reflectors in `cols` (householderQrColumns' layout), unit diagonal, zeros
 * left of it, in `into` or a new array; `into` may be `cols` itself (R's entries are then lost).
 * With `start`, reflector c begins at row start + c (`qrColumnsFrom`'s), zeros before it.
 */
export function transposeReflectors(
  cols: Float64Array,
  tau: Float64Array,
  len: number,
  into?: Float64Array,
  start = 0,
): Matrix64 {
  const p = tau.length;
  const vt = into?.subarray(0, p * len) ?? new Float64Array(p * len);
  for (let c = 0; c < p; c++) {
    if (tau[c] === 0) {
      if (into) vt.fill(0, c * len, (c + 1) * len);
      continue;
    }
    const head = c * len + start + c;
    if (into) vt.fill(0, c * len, head);
    vt[head] = 1;
    if (into !== cols) vt.set(cols.subarray(head + 1, (c + 1) * len), head + 1);
  }
  return { rows: p, cols: len, data: vt };
}

/**
 * Vᵀ [p, len] and T (row-major [p, p]) of the compact WY form Q = I − V·T·Vᵀ of the reflectors in
 * `cols` (householderQrColumns' layout, over `len` entries), T from one product (VᵀV as Vᵀ·(Vᵀ)ᵀ:
 * the engine's Gemm with transB is as fast as MatMul on such thin products, 97–120 GFLOP/s at
 * 11008 × 32 to 128, so V need not be formed). Vᵀ goes to `into` (a panel of a tall QR is tens
 * of MB, and a fresh array of that size costs a page fault per 4 KiB each time; it may be `cols`,
 * see `transposeReflectors`) or a new array; `start` as there.
 */
export async function wyFactors(
  cols: Float64Array,
  tau: Float64Array,
  len: number,
  into?: Float64Array,
  start = 0,
): Promise<{ vt: Matrix64; t: Float64Array }> {
  const p = tau.length;
  const vt = transposeReflectors(cols, tau, len, into, start);
  return { vt, t: await compactWyFactor((await matmul64(vt, vt, { transB: true })).data, tau, p) };
}

/** `wyFactors` and V [len, p] itself, new arrays, for products that need it row-major. */
export async function compactWy(
  cols: Float64Array,
  tau: Float64Array,
  len: number,
): Promise<{ v: Matrix64; vt: Matrix64; t: Float64Array }> {
  return { v: reflectorMatrix(cols, tau, len, tau.length, 0), ...(await wyFactors(cols, tau, len)) };
}
