/**
 * Intruder dimensions (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An Illusion of
 * Equivalence"), as PEFT's `reduce_intruder_dimension` finds them: among the top-k (10) left
 * singular vectors of the tuned W', those whose largest |cosine| with any left singular vector
 * of the base W (thin SVD, all min(out, in) of them) is below ε (0.5).
 */
import type { Matrix } from '../svd/index.js';
import { exactSvd, matmul, truncatedSvd } from '../svd/index.js';

/** PEFT's defaults (reduce_intruder_dimension: top_k = 10, threshold_epsilon = 0.5). */
export const INTRUDER_TOP_K = 10;
export const INTRUDER_THRESHOLD = 0.5;
/**
 * A randomized top-k vector u is accepted when ‖W'W'ᵀu − σ²u‖ ≤ this · σ₁²; else the layer's
 * tuned SVD is redone exactly. At 1e-4 of σ₁² the vector is within ~1e-4·σ₁²/gap of the exact
 * one, far inside the cosine margins that decide a count (a count whose nearest cosine lies within
 * `margin` of ε says so).
 */
const RESIDUAL_TOLERANCE = 1e-4;

export interface IntruderCount {
  /** Top-k tuned directions with max |cos| < ε against every base direction. */
  count: number;
  /** Max |cos| of each of the top-k tuned left singular vectors with the base's (descending σ order). */
  maxCos: number[];
  /** min over the k of |maxCos − ε|: how far the closest decision is from the threshold. */
  margin: number;
}

/** Left singular vectors [out, p] of the base W, exact (one-sided Jacobi): computed once per layer, reused for every tuned weight. */
export async function baseLeftVectors(w: Matrix): Promise<Matrix> {
  return (await exactSvd(w, { vectors: true })).u!;
}

/**
 * Intruder count of `tuned` [out, in] against `baseU` (from baseLeftVectors). The tuned top-k come
 * from a randomized SVD (sketch 2k, 4 power iterations) checked by its residual, with an exact SVD
 * where the check fails. Cost ≈ 12·out·in·2k flops + out·p·k for the cosines.
 * @example const { count } = await intruderCount(wTuned, await baseLeftVectors(wBase));
 */
export async function intruderCount(
  tuned: Matrix,
  baseU: Matrix,
  { topK = INTRUDER_TOP_K, threshold = INTRUDER_THRESHOLD, seed = 0 } = {},
): Promise<IntruderCount> {
  const k = Math.min(topK, tuned.rows, tuned.cols);
  const u = await accurateTopLeft(tuned, k, seed);
  // |Uᵀ_tuned U_base| [k, p], max over each row.
  const cos = await matmul(u, baseU, { transA: true });
  const maxCos: number[] = [];
  for (let i = 0; i < k; i++) {
    let best = 0;
    for (let j = 0; j < cos.cols; j++) best = Math.max(best, Math.abs(cos.data[i * cos.cols + j]!));
    maxCos.push(best);
  }
  return {
    count: maxCos.filter((c) => c < threshold).length,
    maxCos,
    margin: Math.min(...maxCos.map((c) => Math.abs(c - threshold))),
  };
}

/** Top-k left singular vectors [m, k]: randomized, verified by residual, exact where that fails. */
async function accurateTopLeft(a: Matrix, k: number, seed: number): Promise<Matrix> {
  const p = Math.min(a.rows, a.cols);
  if (2 * k < p) {
    const { u, s } = await truncatedSvd(a, { rank: k, oversample: k, powerIters: 4, seed });
    // r = A Aᵀ u − σ² u for each column.
    const atu = await matmul(a, u, { transA: true });
    const aatu = await matmul(a, atu);
    const s1 = s[0]! ** 2;
    let ok = s1 > 0;
    for (let c = 0; c < k && ok; c++) {
      let sq = 0;
      for (let i = 0; i < a.rows; i++) sq += (aatu.data[i * k + c]! - s[c]! ** 2 * u.data[i * k + c]!) ** 2;
      if (Math.sqrt(sq) > RESIDUAL_TOLERANCE * s1) ok = false;
    }
    if (ok) return u;
  }
  const full = (await exactSvd(a, { vectors: true })).u!;
  const out = new Float32Array(a.rows * k);
  for (let i = 0; i < a.rows; i++) for (let c = 0; c < k; c++) out[i * k + c] = full.data[i * full.cols + c]!;
  return { rows: a.rows, cols: k, data: out };
}

/**
 * Largest min(out, in) for which `analyze --intruders` takes the exact SVD of the base weight
 * that every left vector needs (one-sided Jacobi, ≈ 90·p³ flops with vectors: ≈ 10 s at 512 here).
 */
export const INTRUDER_EXACT_MAX = 512;

/** One tensor's intruder count in `analyze --intruders`, or why it has none. */
export interface TensorIntruders {
  name: string;
  count: number | null;
  margin?: number;
  skipped?: string;
}

/**
 * Intruder dimensions of `names` (2-D tensors present in both checkpoints) of `tunedPath` against
 * `basePath`. Tensors whose smaller side exceeds INTRUDER_EXACT_MAX are listed with `skipped`.
 * Reads each pair once; holds two tensors at a time.
 * @example const rows = await checkpointIntruders('base/', 'tuned/', ['model.layers.0.mlp.up_proj.weight']);
 */
export async function checkpointIntruders(
  basePath: string,
  tunedPath: string,
  names: string[],
  { seed = 0 } = {},
): Promise<TensorIntruders[]> {
  const { openCheckpoint } = await import('../io/index.js');
  const base = await openCheckpoint(basePath);
  const tuned = await openCheckpoint(tunedPath);
  try {
    const out: TensorIntruders[] = [];
    for (const name of names) {
      const shape = base.info(name).shape;
      const [rows, cols] = shape as [number, number];
      if (Math.min(rows, cols) > INTRUDER_EXACT_MAX) {
        out.push({
          name,
          count: null,
          skipped: `min side ${Math.min(rows, cols)} > ${INTRUDER_EXACT_MAX}: the exact SVD of W would take too long`,
        });
        continue;
      }
      const w = { rows, cols, data: await base.readFloat32(name) };
      const t = { rows, cols, data: await tuned.readFloat32(name) };
      const c = await intruderCount(t, await baseLeftVectors(w), { seed });
      out.push({ name, count: c.count, margin: c.margin });
    }
    return out;
  } finally {
    await base.close();
    await tuned.close();
  }
}
