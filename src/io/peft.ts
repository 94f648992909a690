/**
 * PEFT LoRA adapters: a folder with adapter_config.json and adapter_model.safetensors
 * (metadata {"format": "pt"}), keys `base_model.model.<module>.lora_A.weight` [r, in] and
 * `.lora_B.weight` [out, r]; embeddings `.lora_embedding_A` [r, num_embeddings] and
 * `.lora_embedding_B` [dim, r]; modules_to_save as `base_model.model.<tensor name>`.
 * With PEFT's `lora_bias` a linear module adds `.lora_B.bias` [out]; with DoRA, `.lora_magnitude_vector`
 * [out] (the keys PEFT 0.21's get_peft_model_state_dict saves).
 */
import { join } from 'node:path';
import { ShapeError, UsageError } from '../errors.js';
import { exists, writeDirAtomically } from './atomic.js';
import type { DType } from './dtypes.js';
import { type TensorSpec, writeFileAtomically, writeSafetensors } from './safetensors-writer.js';

export interface LoraModule {
  /** Full module path, e.g. "model.layers.0.self_attn.q_proj". */
  module: string;
  kind: 'linear' | 'embedding';
  rank: number;
  alpha: number;
  /** linear: lora_A.weight [r, in]; embedding: lora_embedding_A [r, num_embeddings]. Row-major f32. */
  a: Float32Array;
  /** linear: lora_B.weight [out, r]; embedding: lora_embedding_B [dim, r]. Row-major f32. */
  b: Float32Array;
  /** linear: in; embedding: num_embeddings. */
  inFeatures: number;
  /** linear: out; embedding: embedding dim. */
  outFeatures: number;
  /** lora_B.bias [out] (PEFT lora_bias): merging adds s·bias to the base layer's bias. */
  bias?: Float32Array;
  /** DoRA's lora_magnitude_vector [out]. */
  magnitude?: Float32Array;
}

/** adapter_config.json: peft_type, r, lora_alpha, target_modules, rank_pattern, alpha_pattern, use_rslora, modules_to_save, … */
export interface AdapterConfig {
  [key: string]: unknown;
}

export interface Adapter {
  config: AdapterConfig;
  modules: LoraModule[];
  /** modules_to_save replacement weights, by full tensor name ("model.embed_tokens.weight"). */
  fullWeights: { name: string; dtype: DType; shape: number[]; data: Float32Array }[];
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** Every adapter key starts with this: PeftModel wraps the model as base_model.model. */
export const PEFT_PREFIX = 'base_model.model.';
const PREFIX = PEFT_PREFIX;

/**
 * The factor ΔW = B·A is multiplied by: α/r, or α/√r with rank-stabilised LoRA
 * (Kalajdzievski 2023), as PEFT's `use_rslora` does.
 */
export function loraScale(module: Pick<LoraModule, 'rank' | 'alpha'>, useRslora: boolean): number {
  return module.alpha / (useRslora ? Math.sqrt(module.rank) : module.rank);
}

/** The most frequent value; ties go to the larger value. */
function mode(values: number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0]!;
  for (const [v, c] of counts) if (c > counts.get(best)! || (c === counts.get(best)! && v > best)) best = v;
  return best;
}

/** Module path of a full tensor name: "model.embed_tokens.weight" → "model.embed_tokens". */
function moduleOf(tensorName: string): string {
  const dot = tensorName.lastIndexOf('.');
  return dot < 0 ? tensorName : tensorName.slice(0, dot);
}

/** [rows, cols] row-major → its transpose (a copy). */
function transposed(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
  return t;
}

/** Keys of the optional per-module vectors, as PEFT 0.21 saves them. */
function vectorKeysOf(m: LoraModule): { bias: string; magnitude: string } {
  return { bias: `${PREFIX}${m.module}.lora_B.bias`, magnitude: `${PREFIX}${m.module}.lora_magnitude_vector` };
}

function keysOf(m: LoraModule): [string, string] {
  return m.kind === 'embedding'
    ? [`${PREFIX}${m.module}.lora_embedding_A`, `${PREFIX}${m.module}.lora_embedding_B`]
    : [`${PREFIX}${m.module}.lora_A.weight`, `${PREFIX}${m.module}.lora_B.weight`];
}

/**
 * Write adapter_config.json (r = most common rank, lora_alpha = most common alpha,
 * rank_pattern / alpha_pattern by full module path for modules that differ, target_modules
 * = the exact module list, modules_to_save = full paths of `fullWeights`) and
 * adapter_model.safetensors (factors in `dtype`, full weights in their own dtype, metadata
 * {"format": "pt"}). A module's `bias` is written as `.lora_B.bias` and sets `lora_bias: true`; its
 * `magnitude` as `.lora_magnitude_vector` and sets `use_dora: true` (PEFT refuses both together, and
 * lora_bias on embeddings). `fanInFanOut` sets `fan_in_fan_out` (GPT-2's Conv1D, weights [in, out]:
 * the factors keep their Linear shapes, A [r, in] and B [out, r]). Modules of rank 0 are left out. A new folder appears whole
 * (writeDirAtomically); into an existing folder each file is written atomically, refusing
 * to replace an adapter already there unless `force`.
 * @example await writeAdapter('out/adapter', { modules, dtype: 'BF16', taskType: 'CAUSAL_LM' });
 */
export async function writeAdapter(
  dir: string,
  adapter: {
    modules: LoraModule[];
    fullWeights?: Adapter['fullWeights'];
    dtype: DType;
    useRslora?: boolean;
    /**
     * The config's `r` and `lora_alpha` (default: the most common rank and alpha); modules that differ go
     * to rank_pattern / alpha_pattern. A MoE adapter needs its experts' rank here: PEFT's transformers-5
     * conversion gives fused experts the config's r, not their per-module pattern.
     */
    defaultRank?: { r: number; alpha: number };
    /**
     * Linear modules tied to an embedding module of `modules` (lm_head of tie_word_embeddings): written as PEFT's
     * ensure_weight_tying saves them — `<module>.lora_A.weight` = lora_embedding_Bᵀ [r, dim], `.lora_B.weight` =
     * lora_embedding_Aᵀ [vocab, r] — listed in target_modules (PEFT takes them out and ties them); sets ensure_weight_tying.
     */
    tiedModules?: { module: string; source: string }[];
    /** PEFT's `fan_in_fan_out`: the targeted layers store weights [in, out] (transformers' Conv1D). */
    fanInFanOut?: boolean;
    baseModel?: string | null;
    taskType?: string | null;
    extraConfig?: Record<string, unknown>;
  },
  opts: { force?: boolean } = {},
): Promise<void> {
  const {
    dtype,
    useRslora = false,
    fanInFanOut = false,
    baseModel = null,
    taskType = null,
    extraConfig = {},
  } = adapter;
  const fullWeights = adapter.fullWeights ?? [];
  const modules = adapter.modules.filter((m) => m.rank > 0);
  for (const m of modules) {
    if (!Number.isSafeInteger(m.rank)) throw new ShapeError(`${m.module}: rank ${m.rank} is not an integer`);
    if (m.a.length !== m.rank * m.inFeatures)
      throw new ShapeError(
        `${m.module}: A has ${m.a.length} values but [${m.rank}, ${m.inFeatures}] needs ${m.rank * m.inFeatures}`,
      );
    if (m.b.length !== m.outFeatures * m.rank)
      throw new ShapeError(
        `${m.module}: B has ${m.b.length} values but [${m.outFeatures}, ${m.rank}] needs ${m.outFeatures * m.rank}`,
      );
    if (m.bias && m.bias.length !== m.outFeatures)
      throw new ShapeError(
        `${m.module}: lora_B.bias has ${m.bias.length} values but [${m.outFeatures}] needs ${m.outFeatures}`,
      );
    if (m.magnitude && m.magnitude.length !== m.outFeatures)
      throw new ShapeError(
        `${m.module}: lora_magnitude_vector has ${m.magnitude.length} values but [${m.outFeatures}] needs ${m.outFeatures}`,
      );
    if (m.bias && m.kind === 'embedding')
      throw new UsageError(
        `${m.module}: PEFT has no lora_bias for embeddings (its Embedding layer refuses lora_bias=True)`,
      );
  }
  const loraBias = modules.some((m) => m.bias);
  const useDora = modules.some((m) => m.magnitude);
  if (loraBias && useDora)
    throw new UsageError('PEFT refuses lora_bias together with DoRA (use_dora): an adapter carries one or the other');
  if (loraBias && modules.some((m) => m.kind === 'embedding')) {
    throw new UsageError(
      'lora_bias is global in adapter_config.json and PEFT refuses it on embedding modules: save the embeddings whole or drop the biases',
    );
  }
  for (const w of fullWeights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.data.length !== n)
      throw new ShapeError(`${w.name}: ${w.data.length} values but shape [${w.shape.join(', ')}] holds ${n}`);
  }
  if (modules.length === 0 && fullWeights.length === 0)
    throw new UsageError('an adapter needs at least one module of rank > 0 or one full weight');

  // PEFT's own defaults (r = 8, lora_alpha = 8) when only full weights are saved.
  const r = adapter.defaultRank?.r ?? (modules.length > 0 ? mode(modules.map((m) => m.rank)) : 8);
  const alpha = adapter.defaultRank?.alpha ?? (modules.length > 0 ? mode(modules.map((m) => m.alpha)) : 8);
  // A tied head takes its source's rank and alpha, so PEFT scales it as it scales the embeddings.
  const tied = (adapter.tiedModules ?? []).map((t) => {
    const src = modules.find((m) => m.module === t.source && m.kind === 'embedding');
    if (!src)
      throw new UsageError(`${t.module}: tied to ${t.source}, which is not an embedding module of this adapter`);
    return { ...src, module: t.module, source: src };
  });
  const withTied = [...modules, ...tied];
  const rankPattern = Object.fromEntries(withTied.filter((m) => m.rank !== r).map((m) => [m.module, m.rank]));
  const alphaPattern = Object.fromEntries(withTied.filter((m) => m.alpha !== alpha).map((m) => [m.module, m.alpha]));
  const config: AdapterConfig = {
    peft_type: 'LORA',
    task_type: taskType,
    base_model_name_or_path: baseModel,
    r,
    lora_alpha: alpha,
    // PEFT's ensure_weight_tying takes the tied head out of the targets again and ties it to the embeddings'
    // adapter; listed, it is also how PEFT finds that the adapter touches a tied layer when the embeddings are
    // not named embed_tokens (GPT-2's wte).
    target_modules: withTied.map((m) => m.module),
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    use_rslora: useRslora,
    modules_to_save: fullWeights.length > 0 ? [...new Set(fullWeights.map((w) => moduleOf(w.name)))] : null,
    bias: 'none',
    lora_dropout: 0,
    fan_in_fan_out: fanInFanOut,
    // Written only when set, so adapters without them keep PEFT's defaults (false) implicitly.
    ...(loraBias ? { lora_bias: true } : {}),
    ...(useDora ? { use_dora: true } : {}),
    init_lora_weights: true,
    inference_mode: true,
    ...extraConfig,
  };

  const specs: TensorSpec[] = [];
  const data: Float32Array[] = [];
  for (const { module, source: src } of tied) {
    specs.push(
      { name: `${PREFIX}${module}.lora_A.weight`, dtype, shape: [src.rank, src.outFeatures] },
      { name: `${PREFIX}${module}.lora_B.weight`, dtype, shape: [src.inFeatures, src.rank] },
    );
    data.push(transposed(src.b, src.outFeatures, src.rank), transposed(src.a, src.rank, src.inFeatures));
  }
  if (tied.length > 0) config['ensure_weight_tying'] = true;
  for (const m of modules) {
    const [ka, kb] = keysOf(m);
    specs.push({ name: ka, dtype, shape: [m.rank, m.inFeatures] }, { name: kb, dtype, shape: [m.outFeatures, m.rank] });
    data.push(m.a, m.b);
    const vk = vectorKeysOf(m);
    if (m.bias) {
      specs.push({ name: vk.bias, dtype, shape: [m.outFeatures] });
      data.push(m.bias);
    }
    if (m.magnitude) {
      specs.push({ name: vk.magnitude, dtype, shape: [m.outFeatures] });
      data.push(m.magnitude);
    }
  }
  for (const w of fullWeights) {
    specs.push({ name: PREFIX + w.name, dtype: w.dtype, shape: w.shape });
    data.push(w.data);
  }
  const fill = async (target: string) => {
    await writeSafetensors(join(target, ADAPTER_WEIGHTS), specs, (_s, i) => data[i]!, { metadata: { format: 'pt' } });
    await writeFileAtomically(join(target, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + '\n');
  };
  if (!(await exists(dir))) {
    await writeDirAtomically(dir, {}, fill);
    return;
  }
  if (!opts.force) {
    for (const name of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) {
      if (await exists(join(dir, name)))
        throw new UsageError(`${join(dir, name)} already exists; pass --force to replace it`);
    }
  }
  await fill(dir);
}
