/**
 * Linear layers with a LoRA or DoRA adapter, applied unmerged (y = W·x + b + s·B·(A·x), as
 * PEFT's LoraLayer with dropout 0) or merged (W + s·B·A formed first), every product through
 * the GEMM engine.
 */
import { type Adapter, loraScale, readAdapter } from '../io/index.js';
import { type Matrix, matmul } from '../svd/index.js';

/** One module's adapter: ΔW = scale·B·A; DoRA rescales each output row to `magnitude`. */
export interface LoraDelta {
  /** [r, in] (embedding: [r, vocab]). */
  a: Matrix;
  /** [out, r] (embedding: [dim, r]). */
  b: Matrix;
  scale: number;
  /** DoRA (Liu et al. 2024): the learned norm of each row of W + s·B·A, [out]. */
  magnitude?: Float32Array;
  /** PEFT's lora_bias: lora_B's own bias [out], scaled by s like the product. */
  bias?: Float32Array;
}

/** An adapter ready to apply: factors by module path, whole replacement weights by tensor name. */
export interface AppliedAdapter {
  lora: Map<string, LoraDelta>;
  full: Map<string, Float32Array>;
}

/**
 * Read a PEFT adapter folder for the forward pass (readAdapter: factors, lora_B.bias, DoRA's
 * magnitude vectors and saved weights). Holds every factor in memory: adapters are small.
 * @example const adapter = await loadAdapter('lora/'); adapter.lora.get('model.layers.0.self_attn.q_proj')
 */
export async function loadAdapter(dir: string): Promise<AppliedAdapter> {
  return appliedAdapter(await readAdapter(dir));
}

/** The same from an adapter read already. */
export function appliedAdapter(adapter: Adapter): AppliedAdapter {
  const useRslora = adapter.config['use_rslora'] === true;
  const lora = new Map<string, LoraDelta>();
  for (const m of adapter.modules) {
    lora.set(m.module, {
      a: { rows: m.rank, cols: m.inFeatures, data: m.a },
      b: { rows: m.outFeatures, cols: m.rank, data: m.b },
      scale: loraScale(m, useRslora),
      ...(m.magnitude ? { magnitude: m.magnitude } : {}),
      ...(m.bias ? { bias: m.bias } : {}),
    });
  }
  const full = new Map<string, Float32Array>();
  for (const w of adapter.fullWeights) full.set(w.name, w.data);
  return { lora, full };
}

/** A linear layer: W [out, in], optional bias [out], optional adapter. */
export interface LinearWeights {
  w: Matrix;
  bias?: Float32Array;
  lora?: LoraDelta;
}

/** s·B·A [out, in], a new matrix. */
export async function loraProduct(l: LoraDelta): Promise<Float32Array> {
  const p = (await matmul(l.b, l.a)).data;
  if (l.scale !== 1) for (let i = 0; i < p.length; i++) p[i]! *= l.scale;
  return p;
}

/**
 * DoRA's per-row factor magnitude / ‖W + s·B·A‖ (PEFT detaches the norm, so it is a constant
 * of the weights). Cost one product [out, r]·[r, in].
 */
export async function doraRowScale(w: Matrix, l: LoraDelta): Promise<Float32Array> {
  const p = await loraProduct(l);
  const out = new Float32Array(w.rows);
  for (let i = 0; i < w.rows; i++) {
    let sq = 0;
    for (let j = 0; j < w.cols; j++) {
      const v = w.data[i * w.cols + j]! + p[i * w.cols + j]!;
      sq += v * v;
    }
    out[i] = l.magnitude![i]! / Math.sqrt(sq);
  }
  return out;
}

/**
 * W + s·B·A (DoRA: each row then rescaled to its magnitude), a new [out, in] matrix: the merged weight.
 * A lora_bias merges into the layer's bias apart (`mergedBias`).
 */
export async function mergedWeight(w: Matrix, l: LoraDelta): Promise<Matrix> {
  const p = await loraProduct(l);
  for (let i = 0; i < p.length; i++) p[i]! += w.data[i]!;
  if (l.magnitude) {
    const scale = await doraRowScale(w, l);
    for (let i = 0; i < w.rows; i++) for (let j = 0; j < w.cols; j++) p[i * w.cols + j]! *= scale[i]!;
  }
  return { rows: w.rows, cols: w.cols, data: p };
}

/**
 * y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ for x [tokens, in]: [tokens, out], a new matrix. DoRA multiplies
 * (x·Wᵀ + s·x·Aᵀ·Bᵀ) row-wise by magnitude / ‖W + s·B·A‖ before the bias, as PEFT does.
 * Cost 2·tokens·in·out (+ 2·tokens·r·(in + out) for the adapter).
 */
export async function applyLinear(lin: LinearWeights, x: Matrix): Promise<Matrix> {
  const y = await matmul(x, lin.w, { transB: true });
  if (lin.lora) {
    const l = lin.lora;
    const t = await matmul(x, l.a, { transB: true });
    const d = (await matmul(t, l.b, { transB: true })).data;
    const yd = y.data;
    if (l.magnitude) {
      const scale = await doraRowScale(lin.w, l);
      const out = y.cols;
      for (let i = 0; i < yd.length; i++) yd[i] = (yd[i]! + l.scale * d[i]!) * scale[i % out]!;
    } else {
      for (let i = 0; i < yd.length; i++) yd[i]! += l.scale * d[i]!;
    }
    if (l.bias) {
      const out = y.cols;
      for (let i = 0; i < yd.length; i++) yd[i]! += l.scale * l.bias[i % out]!;
    }
  }
  if (lin.bias) {
    const out = y.cols;
    const b = lin.bias;
    for (let i = 0; i < y.data.length; i++) y.data[i]! += b[i % out]!;
  }
  return y;
}

/** The layer's bias after merging `l`: bias + s·lora_B.bias (PEFT's merge), or `bias` as it is. */
export function mergedBias(bias: Float32Array | undefined, l: LoraDelta): Float32Array | undefined {
  if (!l.bias) return bias;
  const out = new Float32Array(l.bias.length);
  for (let i = 0; i < out.length; i++) out[i] = (bias?.[i] ?? 0) + l.scale * l.bias[i]!;
  return out;
}
