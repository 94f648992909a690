/**
 * Fixed-accuracy truncated SVD: the smallest rank that reaches an energy or error target,
 * found by growing a QB factorisation in blocks (Yu, Gu & Li 2018, randQB_EI, with power
 * iterations and re-orthogonalisation against the basis so far).
 *
 * The indicator ‖A − QB‖_F² = ‖A‖_F² − ‖B‖_F² is exact for orthonormal Q and is accumulated in
 * f64, but B comes out of f32 products, so it can resolve a relative error down to about
 * √ε_f32 ≈ 3e-4 (an energy target up to 1 − 1e-7); tighter targets run into the cap.
 */
import { ShapeError } from '../errors.js';
import { matmul } from './gemm.js';
import { frobeniusSquared, type Matrix } from './matrix.js';
import { orthonormalizeRows } from './qr.js';
import { createRng, fillNormal, type Rng } from './random.js';
import { finishFromFactors, type Svd } from './randomized-svd.js';
import { smallSingularValues } from './small-svd.js';

/** Basis columns wanted beyond the rank found (or the cap), so that σ_r, and so the rank, is accurate. */
const MIN_OVERSAMPLE = 8;

export interface AdaptiveSvdOptions {
  /** Target energy E(r) = Σ_{i≤r} σᵢ² / ‖A‖_F², in (0, 1]. */
  energy?: number;
  /** Target relative error ‖A − A_r‖_F / ‖A‖_F, in [0, 1). With `energy` too, both must hold. */
  relError?: number;
  /** Cap on the rank returned (the basis grows to at most 8 more). */
  maxRank: number;
  /** Columns added per block. */
  blockSize?: number;
  /** Power iterations per block. */
  powerIters?: number;
  seed?: number;
  /** ‖A‖_F², when the caller has it already (saves one pass over A). */
  frobSquared?: number;
  /** Singular vectors too (default true); without them u and v come back with 0 columns and the core is not rotated. */
  vectors?: boolean;
}

/** An adaptive SVD: the rank-r truncation that meets the target, or the cap's. */
export interface AdaptiveSvd extends Svd {
  /** ‖A‖_F², f64 (as passed, or computed). */
  frobSquared: number;
  /** False when the cap stopped the growth before the target was met. */
  reached: boolean;
  /** All K Ritz values σ(QᵀA) of the final basis, descending: each a lower bound on σᵢ(A) (interlacing). */
  ritz: Float64Array;
  /** ‖A − QQᵀA‖_F² = ‖A‖_F² − ‖QᵀA‖_F², the energy the basis left out (f64 sums of the f32 blocks). */
  leftOutEnergy: number;
}

/**
 * The smallest r whose truncated SVD meets the target: E(r) ≥ `energy` and/or
 * ‖A − U S Vᵀ‖_F ≤ `relError`·‖A‖_F, with r ≤ `maxRank`. Grows the basis `blockSize` columns
 * at a time and stops at the first block that meets the target with at least 8 columns to
 * spare, so the basis ends within one block (plus those 8) of r.
 * Cost for a final basis of K columns: ≈ (2 + 2·powerIters)·2·m·n·K flops in products with A,
 * plus 8·(m + n)·K² for re-orthogonalisation, one f64 pass over A unless `frobSquared` is
 * given, and the K×K Jacobi core (≈ 30·K³ scalar flops: 0.01 s at K = 74, ≈ 1 s at K = 256, so
 * keep the cap in the hundreds). Memory: (m + n)·K f32 for Q and B.
 * Returns u [m, r], s [r] descending, v [n, r] (u and v without columns under `vectors: false`).
 * @example const { s, reached } = await adaptiveSvd(deltaW, { energy: 0.9, maxRank: 512 });
 */
export async function adaptiveSvd(
  a: Matrix,
  {
    energy,
    relError,
    maxRank,
    blockSize = 32,
    powerIters = 2,
    seed = 0,
    frobSquared,
    vectors = true,
  }: AdaptiveSvdOptions,
): Promise<AdaptiveSvd> {
  const { rows: m, cols: n } = a;
  const p = Math.min(m, n);
  if (a.data.length !== m * n)
    throw new ShapeError(`adaptiveSvd: data length ${a.data.length} does not match ${m}×${n}`);
  if (energy === undefined && relError === undefined)
    throw new RangeError('adaptiveSvd: give an energy or a relError target');
  if (energy !== undefined && !(energy > 0 && energy <= 1))
    throw new RangeError(`adaptiveSvd: energy must be in (0, 1], got ${energy}`);
  if (relError !== undefined && !(relError >= 0 && relError < 1))
    throw new RangeError(`adaptiveSvd: relError must be in [0, 1), got ${relError}`);
  if (!Number.isInteger(maxRank) || maxRank < 1)
    throw new RangeError(`adaptiveSvd: maxRank must be a positive integer, got ${maxRank}`);
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new RangeError(`adaptiveSvd: blockSize must be a positive integer, got ${blockSize}`);
  const frob = frobSquared ?? frobeniusSquared(a);
  // The residual allowed by each target, as a fraction of ‖A‖_F²; the stricter one rules.
  const allowed = Math.min(energy === undefined ? 1 : 1 - energy, relError === undefined ? 1 : relError * relError);
  const rankCap = Math.min(maxRank, p);
  const cap = Math.min(maxRank + MIN_OVERSAMPLE, p);
  // Block 0 comes from the shared sketch; a later block continues the same stream past it.
  let rng: Rng | null = null;
  let firstDraws = 0;
  // Qᵀ and B grow by rows, so each block is appended in place and every prefix is a matrix;
  // capacity doubles as needed rather than reserving the cap up front.
  let capacity = Math.min(cap, 4 * blockSize);
  let qtAll = new Float32Array(capacity * m);
  let bAll = new Float32Array(capacity * n);
  let K = 0;
  let residual = frob;
  const grow = async (): Promise<void> => {
    const b = Math.min(blockSize, cap - K);
    let omegaT: Matrix;
    if (K === 0) {
      omegaT = { rows: b, cols: n, data: firstSketch(seed, b, n) };
      firstDraws = b * n;
    } else {
      if (!rng) {
        rng = createRng(seed);
        fillNormal(new Float32Array(firstDraws), rng);
      }
      omegaT = { rows: b, cols: n, data: new Float32Array(b * n) };
      fillNormal(omegaT.data, rng);
    }
    const qt: Matrix = { rows: K, cols: m, data: qtAll.subarray(0, K * m) };
    // Loose bases between products (only their span is used); the last one is made exact below.
    let qi = await orthonormalizeRows(await projectOut(await matmul(omegaT, a, { transB: true }), qt), { loose: true });
    for (let i = 0; i < powerIters; i++) {
      const pi = await orthonormalizeRows(await matmul(qi.qt, a), { loose: true });
      qi = await orthonormalizeRows(await projectOut(await matmul(pi.qt, a, { transB: true }), qt), { loose: true });
    }
    // Rounding in the products lets Q_i drift back toward Q; once more restores orthogonality.
    qi = await orthonormalizeRows(await projectOut(qi.qt, qt));
    const bi = await matmul(qi.qt, a);
    if (K + b > capacity) {
      capacity = Math.min(cap, Math.max(2 * capacity, K + b));
      const qtGrown = new Float32Array(capacity * m);
      qtGrown.set(qtAll.subarray(0, K * m));
      qtAll = qtGrown;
      const bGrown = new Float32Array(capacity * n);
      bGrown.set(bAll.subarray(0, K * n));
      bAll = bGrown;
    }
    qtAll.set(qi.qt.data, K * m);
    bAll.set(bi.data, K * n);
    residual -= frobeniusSquared(bi);
    K += b;
  };
  for (;;) {
    while (K < cap && residual > allowed * frob) await grow();
    if (K === 0) {
      const none = { rows: 0, cols: 0, data: new Float32Array(0) };
      return {
        u: { ...none, rows: m },
        s: new Float64Array(0),
        v: { ...none, rows: n },
        frobSquared: frob,
        reached: true,
        ritz: new Float64Array(0),
        leftOutEnergy: Math.max(0, residual),
      };
    }
    const qt: Matrix = { rows: K, cols: m, data: qtAll.subarray(0, K * m) };
    const { qt: pt, r } = await orthonormalizeRows({ rows: K, cols: n, data: bAll.subarray(0, K * n) });
    // A ≈ Q·Rᵀ·Pᵀ with Q, P orthonormal: σ(A's approximation) = σ(R).
    const full = vectors
      ? await finishFromFactors(qt, r, pt, K)
      : {
          u: { rows: m, cols: 0, data: new Float32Array(0) },
          s: smallSingularValues(r),
          v: { rows: n, cols: 0, data: new Float32Array(0) },
        };
    // ‖A − A_r‖_F² = ‖A‖_F² − Σ_{i≤r} σᵢ² exactly, since A_r lies in the range of the orthonormal Q.
    let rank = Math.min(K, rankCap);
    let reached = false;
    let captured = 0;
    for (let i = 0; i < Math.min(K, rankCap); i++) {
      captured += full.s[i]! * full.s[i]!;
      if (frob - captured <= allowed * frob) {
        rank = i + 1;
        reached = true;
        break;
      }
    }
    // σ_r of QB is only accurate with some basis beyond r (and rounding can leave the SVD just
    // short of a target the indicator met): one more block settles either.
    if (K < cap && (!reached || K - rank < MIN_OVERSAMPLE)) {
      await grow();
      continue;
    }
    const truncated = vectors ? truncate(full, rank) : { ...full, s: full.s.slice(0, rank) };
    return { ...truncated, frobSquared: frob, reached, ritz: full.s, leftOutEnergy: Math.max(0, residual) };
  }
}

/** First-block sketches kept, most recent last: a model has a handful of distinct widths. */
const SKETCHES_KEPT = 4;
const sketches = new Map<string, Float32Array>();

/**
 * The first block Ωᵀ [b, n] of seed `seed`'s stream (read only). analyze sketches every tensor with
 * the same seed, so tensors of one width share it instead of drawing it again (≈ 3 ms per 72×5632).
 */
function firstSketch(seed: number, b: number, n: number): Float32Array {
  const key = `${seed}:${b}:${n}`;
  let data = sketches.get(key);
  if (data) sketches.delete(key);
  else {
    data = new Float32Array(b * n);
    fillNormal(data, createRng(seed));
  }
  sketches.set(key, data);
  if (sketches.size > SKETCHES_KEPT) sketches.delete(sketches.keys().next().value!);
  return data;
}

/** yt − (yt·Qᵀ_basisᵀ)·Qᵀ_basis, twice ("twice is enough", Giraud et al. 2005): rows of yt made orthogonal to the basis rows. */
async function projectOut(yt: Matrix, basisT: Matrix): Promise<Matrix> {
  if (basisT.rows === 0) return yt;
  let cur = yt;
  for (let pass = 0; pass < 2; pass++) {
    const c = await matmul(cur, basisT, { transB: true });
    const proj = await matmul(c, basisT);
    const out = new Float32Array(cur.data.length);
    for (let i = 0; i < out.length; i++) out[i] = cur.data[i]! - proj.data[i]!;
    cur = { rows: cur.rows, cols: cur.cols, data: out };
  }
  return cur;
}

/** The first `rank` triplets (copies). */
function truncate(svd: Svd, rank: number): Svd {
  const take = (x: Matrix): Matrix => {
    if (x.cols === rank) return x;
    const out = new Float32Array(x.rows * rank);
    for (let i = 0; i < x.rows; i++) out.set(x.data.subarray(i * x.cols, i * x.cols + rank), i * rank);
    return { rows: x.rows, cols: rank, data: out };
  };
  return { u: take(svd.u), s: svd.s.slice(0, rank), v: take(svd.v) };
}
