/**
 * A trained adapter of a LoraLinear as PEFT saves it. Plain LoRA, DoRA (lora_magnitude_vector)
 * and lora_bias (lora_B.bias) go out as trained; PiSSA and OLoRA, whose base is the residual
 * W − s·B₀·A₀, go out converted to a plain LoRA of the original base, as PEFT's
 * `save_pretrained(path_initial_model_for_weight_conversion=…)` does (subtract_mutated_init):
 * ΔW = s·(B·A − B₀·A₀) = s·[B, −B₀]·[A; A₀], rank 2k, α scaled so that s stays (×2, or ×√2
 * under rsLoRA), so merging onto the original base gives the trained model.
 */
import type { LoraAdapter, LoraLinear } from './lora-linear.js';

export interface ExportedFactors {
  rank: number;
  alpha: number;
  /** [rank, in]. */
  a: Float32Array;
  /** [out, rank]. */
  b: Float32Array;
  bias?: Float32Array;
  magnitude?: Float32Array;
}

/**
 * Factors of `adapter` (default: the layer's active one) ready for writeAdapter: copies.
 * Cost: a copy of A and B (and A₀, B₀ for the converted kinds).
 * @example const { a, b, rank, alpha } = exportFactors(layer);
 */
export function exportFactors(layer: LoraLinear, adapter: LoraAdapter = layer.active!): ExportedFactors {
  const a = new Float32Array(adapter.a.dataSync());
  const b = new Float32Array(adapter.b.dataSync());
  const out: ExportedFactors = { rank: adapter.rank, alpha: adapter.alpha, a, b };
  if (adapter.bias) out.bias = new Float32Array(adapter.bias.dataSync());
  if (adapter.magnitude) out.magnitude = new Float32Array(adapter.magnitude.dataSync());
  if (!adapter.initial) return out;
  const k = adapter.rank;
  const inF = layer.inFeatures;
  const outF = layer.outFeatures;
  const rank = 2 * k;
  const a2 = new Float32Array(rank * inF);
  a2.set(a, 0);
  a2.set(adapter.initial.a, k * inF);
  const b2 = new Float32Array(outF * rank);
  for (let i = 0; i < outF; i++) {
    for (let c = 0; c < k; c++) {
      b2[i * rank + c] = b[i * k + c]!;
      b2[i * rank + k + c] = -adapter.initial.b[i * k + c]!;
    }
  }
  // Keep s: α' = s·r' (or s·√r' under rsLoRA), which is 2α (√2·α) when k is the rank asked for.
  const alpha = adapter.scale * (adapter.rslora ? Math.sqrt(rank) : rank);
  return { rank, alpha, a: a2, b: b2 };
}
