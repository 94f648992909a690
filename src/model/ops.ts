/**
 * The small kernels of a decoder layer on row-major f32 activations [tokens, width]:
 * RMSNorm, the MLP activations and causal attention with grouped-query heads, sliding window
 * and soft-capping. The two products of attention go through the GEMM engine; the rest are
 * loops over memory in order, with sums of squares and softmax denominators in f64.
 */
import { type Matrix, matmul } from '../svd/index.js';

/**
 * RMSNorm (Zhang & Sennrich 2019) of each row of `x` [rows, width] (or of each `width`-wide
 * group when width divides the row, for per-head q/k norms): x / √(mean(x²) + eps) · w, or
 * · (1 + w) when `plusOne` (Gemma). A new array.
 */
export function rmsNorm(
  x: Float32Array,
  width: number,
  weight: Float32Array,
  eps: number,
  plusOne: boolean,
): Float32Array {
  const out = new Float32Array(x.length);
  const scale = plusOne ? weight.map((w) => 1 + w) : weight;
  for (let off = 0; off < x.length; off += width) {
    let sq = 0;
    for (let i = 0; i < width; i++) sq += x[off + i]! * x[off + i]!;
    const inv = Math.fround(1 / Math.sqrt(Math.fround(sq / width) + eps));
    for (let i = 0; i < width; i++) out[off + i] = Math.fround(x[off + i]! * inv) * scale[i]!;
  }
  return out;
}

/** act(gate) ⊙ up in place on `gate`: SiLU x·σ(x), or GELU's tanh approximation. */
export function gatedActivation(gate: Float32Array, up: Float32Array, activation: 'silu' | 'gelu_tanh'): Float32Array {
  if (activation === 'silu') {
    for (let i = 0; i < gate.length; i++) {
      const g = gate[i]!;
      gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  } else {
    const c = Math.sqrt(2 / Math.PI);
    for (let i = 0; i < gate.length; i++) {
      const g = gate[i]!;
      gate[i] = 0.5 * g * (1 + Math.tanh(c * (g + 0.044715 * g * g * g))) * up[i]!;
    }
  }
  return gate;
}

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  scale: number;
  softcap: number | null;
  /** Keys at distance ≥ window are masked; null: causal only. */
  window: number | null;
}

/**
 * Causal self-attention of each sequence: q [N, H·d], k and v [N, Hkv·d] (N tokens, sequences
 * back to back, `starts` their first rows plus N at the end). The query heads that share a
 * key/value head are stacked so each sequence takes 2·Hkv products. A new array [N, H·d].
 * Cost 4·N·T·H·d flops for sequences of length T, plus T² exponentials per head.
 */
export async function causalAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  starts: number[],
  s: AttentionShape,
): Promise<Float32Array> {
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = s;
  const rep = H / Hkv;
  const qw = H * d;
  const kw = Hkv * d;
  const out = new Float32Array(q.length);
  for (let seq = 0; seq + 1 < starts.length; seq++) {
    const t0 = starts[seq]!;
    const T = starts[seq + 1]! - t0;
    for (let g = 0; g < Hkv; g++) {
      // Q_g [rep·T, d]: head-major rows; K_g, V_g [T, d].
      const qg = new Float32Array(rep * T * d);
      for (let r = 0; r < rep; r++) {
        const h = g * rep + r;
        for (let t = 0; t < T; t++)
          qg.set(q.subarray((t0 + t) * qw + h * d, (t0 + t) * qw + h * d + d), (r * T + t) * d);
      }
      const kg = new Float32Array(T * d);
      const vg = new Float32Array(T * d);
      for (let t = 0; t < T; t++) {
        kg.set(k.subarray((t0 + t) * kw + g * d, (t0 + t) * kw + g * d + d), t * d);
        vg.set(v.subarray((t0 + t) * kw + g * d, (t0 + t) * kw + g * d + d), t * d);
      }
      const scores = (
        await matmul({ rows: rep * T, cols: d, data: qg }, { rows: T, cols: d, data: kg }, { transB: true })
      ).data;
      for (let row = 0; row < rep * T; row++) {
        const t = row % T;
        const lo = s.window === null ? 0 : Math.max(0, t - s.window + 1);
        const off = row * T;
        let max = -Infinity;
        for (let j = lo; j <= t; j++) {
          let x = scores[off + j]! * s.scale;
          if (s.softcap !== null) x = Math.tanh(x / s.softcap) * s.softcap;
          scores[off + j] = x;
          if (x > max) max = x;
        }
        let sum = 0;
        for (let j = lo; j <= t; j++) {
          const e = Math.exp(scores[off + j]! - max);
          scores[off + j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = 0; j < T; j++) scores[off + j] = j >= lo && j <= t ? scores[off + j]! * inv : 0;
      }
      const ctx = (await matmul({ rows: rep * T, cols: T, data: scores }, { rows: T, cols: d, data: vg })).data;
      for (let r = 0; r < rep; r++) {
        const h = g * rep + r;
        for (let t = 0; t < T; t++) out.set(ctx.subarray((r * T + t) * d, (r * T + t) * d + d), (t0 + t) * qw + h * d);
      }
    }
  }
  return out;
}

/** Columns [c0, c0 + width) of x [rows, cols] as a new [rows, width] array (splitting fused projections). */
export function sliceColumns(x: Matrix, c0: number, width: number): Float32Array {
  const out = new Float32Array(x.rows * width);
  for (let i = 0; i < x.rows; i++) out.set(x.data.subarray(i * x.cols + c0, i * x.cols + c0 + width), i * width);
  return out;
}

/** a += b elementwise, in place on `a`. */
export function addInPlace(a: Float32Array, b: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
  return a;
}
