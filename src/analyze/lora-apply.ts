/**
 * What a LoRA module does to its base weight, as PEFT 0.21's merge does it
 * (peft/tuners/lora/layer.py get_delta_weight, variants.py Dora*Variant.merge_*): one place for
 * `merge`, `analyze --adapter --base` (the change DoRA really makes) and in-memory application.
 */
import { ShapeError } from '../errors.js';
import {
  expertFactors,
  type LoraModule,
  loraScale,
  type ModelLayout,
  type ParamLora,
  type ResolvedParamLora,
} from '../io/index.js';
import { matmul } from '../svd/index.js';

/**
 * How a module's base weight is stored. `transposed`: [in, out] — transformers' Conv1D
 * (PEFT's fan_in_fan_out) and every embedding ([num_embeddings, dim], ΔW = (B·A)ᵀ);
 * otherwise [out, in] as nn.Linear.
 */
export interface WeightLayout {
  transposed: boolean;
  /** The stored shape. */
  shape: [number, number];
}

/**
 * The layout of `m`'s base weight of `shape`, or a sentence saying why it does not fit. A
 * non-square Linear weight tells its orientation by its shape; a square one follows
 * `fanInFanOut` (pass `storedTransposed`'s answer: PEFT decides by the layer type).
 */
export function weightLayout(m: LoraModule, shape: readonly number[], fanInFanOut: boolean): WeightLayout | string {
  const out = m.outFeatures;
  const inF = m.inFeatures;
  const have = `[${shape.join(', ')}]`;
  if (shape.length !== 2) return `the base weight is ${have}, not a matrix`;
  const [r0, r1] = shape as [number, number];
  if (m.kind === 'embedding') {
    return r0 === inF && r1 === out
      ? { transposed: true, shape: [r0, r1] }
      : `an embedding LoRA of ${inF} × ${out} does not fit the base weight ${have}`;
  }
  const plain = r0 === out && r1 === inF;
  const conv = r0 === inF && r1 === out;
  if (plain && conv) return { transposed: fanInFanOut, shape: [r0, r1] };
  if (plain) return { transposed: false, shape: [r0, r1] };
  if (conv) return { transposed: true, shape: [r0, r1] };
  return `the LoRA is [${out}, ${inF}] (out, in) but the base weight is ${have}`;
}

/** Roles of io's layout table stored as nn.Linear, [out, in]. */
const LINEAR_ROLES = new Set(['linear', 'lm_head', 'classifier', 'router', 'expert']);

/**
 * Whether `name` is stored [in, out], as PEFT decides it: by the layer's type (it sets
 * fan_in_fan_out itself for transformers' Conv1D and clears it for nn.Linear, warning), which io's
 * layout table tells from config.json; the adapter's `fan_in_fan_out` where the table does not know.
 */
export function storedTransposed(table: ModelLayout | null, name: string, fanInFanOut: boolean): boolean {
  const layer = table?.byName.get(name);
  // A role the table only assumed ("assumed nn.Linear") does not outweigh what the adapter says.
  const role = layer && !layer.note ? layer.role : undefined;
  if (role === 'conv1d') return true;
  if (role && LINEAR_ROLES.has(role)) return false;
  return fanInFanOut;
}

/**
 * W + s·B·A in the stored layout (transposed: W + s·(B·A)ᵀ), then for DoRA (m.magnitude)
 * PEFT's W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per output feature, the norm taken over the
 * inputs in f64 (a row of [out, in]; a column of a transposed layout). In place on `w`, which
 * is returned. Cost: one [out, r]·[r, in] product and two passes over `w`.
 * @example await applyModule(w, module, loraScale(module, false), { transposed: false, shape: [out, inF] });
 */
export async function applyModule(
  w: Float32Array,
  m: LoraModule,
  scale: number,
  layout: WeightLayout,
): Promise<Float32Array> {
  const out = m.outFeatures;
  const inF = m.inFeatures;
  if (w.length !== out * inF)
    throw new ShapeError(
      `${m.module}: the base weight holds ${w.length} values, the LoRA [${out}, ${inF}] needs ${out * inF}`,
    );
  const a = { rows: m.rank, cols: inF, data: m.a };
  const b = { rows: out, cols: m.rank, data: m.b };
  const p = layout.transposed ? await matmul(a, b, { transA: true, transB: true }) : await matmul(b, a);
  for (let i = 0; i < w.length; i++) w[i]! += scale * p.data[i]!;
  if (m.magnitude) applyMagnitude(w, m.magnitude, out, inF, layout.transposed);
  return w;
}

/** DoRA's rescaling of V = W + s·B·A: each output feature's weights times magnitude / ‖its weights‖. */
function applyMagnitude(v: Float32Array, magnitude: Float32Array, out: number, inF: number, transposed: boolean): void {
  const norms = new Float64Array(out);
  if (transposed) {
    for (let i = 0; i < inF; i++) for (let o = 0; o < out; o++) norms[o]! += v[i * out + o]! ** 2;
  } else {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += v[o * inF + i]! ** 2;
      norms[o] = s;
    }
  }
  // PEFT divides by the norm as it is, so a zero row gives inf/NaN there too; keep it finite and say nothing:
  // a zero row of W + s·B·A stays zero whatever it is multiplied by.
  const factor = new Float64Array(out);
  for (let o = 0; o < out; o++) factor[o] = norms[o]! > 0 ? magnitude[o]! / Math.sqrt(norms[o]!) : 0;
  if (transposed) {
    for (let i = 0; i < inF; i++) for (let o = 0; o < out; o++) v[i * out + o]! *= factor[o]!;
  } else {
    for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) v[o * inF + i]! *= factor[o]!;
  }
}

/** The base bias plus s·lora_B.bias (PEFT's lora_bias merge), in place on `bias`. */
export function applyLoraBias(bias: Float32Array, m: LoraModule, scale: number): Float32Array {
  if (!m.bias) return bias;
  if (bias.length !== m.bias.length)
    throw new ShapeError(`${m.module}: the base bias holds ${bias.length} values, lora_B.bias ${m.bias.length}`);
  for (let i = 0; i < bias.length; i++) bias[i]! += scale * m.bias[i]!;
  return bias;
}

/**
 * Expert e of a LoRA on a parameter (target_parameters) as a plain module: s·B_e·A_e of [out, in],
 * laid out in the parameter's expert slice ([in, out] when `transposed`).
 */
export function expertModule(p: ParamLora, r: ResolvedParamLora, e: number): LoraModule {
  const { a, b } = expertFactors(p, r, e);
  return {
    module: `${r.name}[${e}]`,
    kind: 'linear',
    rank: r.rank,
    alpha: r.alpha,
    a,
    b,
    inFeatures: p.inFeatures,
    outFeatures: p.outFeatures,
  };
}

/** Rows [rowOffset, rowOffset + rows) of expert e's ΔW as a plain module (a per-expert tensor on disk). */
export function expertPartModule(
  p: ParamLora,
  r: ResolvedParamLora,
  part: { expert: number; rowOffset: number; rows: number; tensor: string },
): LoraModule {
  const m = expertModule(p, r, part.expert);
  return {
    ...m,
    module: part.tensor,
    b: m.b.slice(part.rowOffset * m.rank, (part.rowOffset + part.rows) * m.rank),
    outFeatures: part.rows,
  };
}

/**
 * W + ΔW for a LoRA on a parameter (PEFT's ParamWrapper.get_delta_weight): every expert slice of
 * the [E, out, in] (or [E, in, out]) tensor `w` gets its s·B_e·A_e, in place. `r.transposed` must be known.
 */
export async function applyParamLora(
  w: Float32Array,
  p: ParamLora,
  r: ResolvedParamLora,
  useRslora: boolean,
): Promise<Float32Array> {
  const size = p.inFeatures * p.outFeatures;
  if (w.length !== size * r.experts)
    throw new ShapeError(
      `${r.name}: the base holds ${w.length} values, ${r.experts} experts of [${p.outFeatures}, ${p.inFeatures}] need ${size * r.experts}`,
    );
  const transposed = r.transposed ?? false;
  const shape: [number, number] = transposed ? [p.inFeatures, p.outFeatures] : [p.outFeatures, p.inFeatures];
  for (let e = 0; e < r.experts; e++) {
    const m = expertModule(p, r, e);
    await applyModule(w.subarray(e * size, (e + 1) * size), m, loraScale(m, useRslora), { transposed, shape });
  }
  return w;
}
