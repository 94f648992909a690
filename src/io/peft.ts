/**
 * PEFT LoRA adapters: a folder with adapter_config.json and adapter_model.safetensors
 * (metadata {"format": "pt"}), keys `base_model.model.<module>.lora_A.weight` [r, in] and
 * `.lora_B.weight` [out, r]; embeddings `.lora_embedding_A` [r, num_embeddings] and
 * `.lora_embedding_B` [dim, r]; modules_to_save as `base_model.model.<tensor name>`.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, ShapeError, UsageError } from '../errors.js';
import { writeDirAtomically, exists } from './atomic.js';
import { openCheckpoint } from './checkpoint.js';
import type { DType } from './dtypes.js';
import { writeFileAtomically, writeSafetensors, type TensorSpec } from './safetensors-writer.js';

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
const PREFIX = 'base_model.model.';

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
 * {"format": "pt"}). Modules of rank 0 are left out. A new folder appears whole
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
    baseModel?: string | null;
    taskType?: string | null;
    extraConfig?: Record<string, unknown>;
  },
  opts: { force?: boolean } = {},
): Promise<void> {
  const { dtype, useRslora = false, baseModel = null, taskType = null, extraConfig = {} } = adapter;
  const fullWeights = adapter.fullWeights ?? [];
  const modules = adapter.modules.filter((m) => m.rank > 0);
  for (const m of modules) {
    if (!Number.isSafeInteger(m.rank)) throw new ShapeError(`${m.module}: rank ${m.rank} is not an integer`);
    if (m.a.length !== m.rank * m.inFeatures) throw new ShapeError(`${m.module}: A has ${m.a.length} values but [${m.rank}, ${m.inFeatures}] needs ${m.rank * m.inFeatures}`);
    if (m.b.length !== m.outFeatures * m.rank) throw new ShapeError(`${m.module}: B has ${m.b.length} values but [${m.outFeatures}, ${m.rank}] needs ${m.outFeatures * m.rank}`);
  }
  for (const w of fullWeights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.data.length !== n) throw new ShapeError(`${w.name}: ${w.data.length} values but shape [${w.shape.join(', ')}] holds ${n}`);
  }
  if (modules.length === 0 && fullWeights.length === 0) throw new UsageError('an adapter needs at least one module of rank > 0 or one full weight');

  // PEFT's own defaults (r = 8, lora_alpha = 8) when only full weights are saved.
  const r = modules.length > 0 ? mode(modules.map((m) => m.rank)) : 8;
  const alpha = modules.length > 0 ? mode(modules.map((m) => m.alpha)) : 8;
  const rankPattern = Object.fromEntries(modules.filter((m) => m.rank !== r).map((m) => [m.module, m.rank]));
  const alphaPattern = Object.fromEntries(modules.filter((m) => m.alpha !== alpha).map((m) => [m.module, m.alpha]));
  const config: AdapterConfig = {
    peft_type: 'LORA',
    task_type: taskType,
    base_model_name_or_path: baseModel,
    r,
    lora_alpha: alpha,
    target_modules: modules.map((m) => m.module),
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    use_rslora: useRslora,
    modules_to_save: fullWeights.length > 0 ? [...new Set(fullWeights.map((w) => moduleOf(w.name)))] : null,
    bias: 'none',
    lora_dropout: 0,
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    ...extraConfig,
  };

  const specs: TensorSpec[] = [];
  const data: Float32Array[] = [];
  for (const m of modules) {
    const [ka, kb] = keysOf(m);
    specs.push({ name: ka, dtype, shape: [m.rank, m.inFeatures] }, { name: kb, dtype, shape: [m.outFeatures, m.rank] });
    data.push(m.a, m.b);
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
      if (await exists(join(dir, name))) throw new UsageError(`${join(dir, name)} already exists; pass --force to replace it`);
    }
  }
  await fill(dir);
}

/** PEFT's pattern rule for rank_pattern / alpha_pattern keys: the key (a regex) matches the whole path or its tail after a dot. */
function lookupPattern(pattern: Record<string, unknown>, module: string): number | undefined {
  if (typeof pattern[module] === 'number') return pattern[module];
  for (const [key, value] of Object.entries(pattern)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${key})$`);
    } catch {
      continue;
    }
    if (typeof value === 'number' && re.test(module)) return value;
  }
  return undefined;
}

/**
 * Read a PEFT LoRA adapter folder: every module's factors widened to f32 with its rank
 * (from the tensors, checked against r / rank_pattern) and alpha (lora_alpha / alpha_pattern),
 * plus modules_to_save weights. FormatError naming the file and key for: a missing
 * adapter_config.json or adapter_model.safetensors, a config that is not a LoRA JSON object,
 * a key outside `base_model.model.`, a module with one factor only, factors that are not
 * 2-D or whose ranks disagree with each other or with the config.
 */
export async function readAdapter(dir: string): Promise<Adapter> {
  const st = await stat(dir);
  if (!st.isDirectory()) throw new FormatError(`${dir}: an adapter is a folder holding ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}`);
  const names = await readdir(dir);
  if (!names.includes(ADAPTER_CONFIG)) throw new FormatError(`${dir}: no ${ADAPTER_CONFIG} (not a PEFT adapter folder)`);
  if (!names.includes(ADAPTER_WEIGHTS)) {
    const hint = names.includes('adapter_model.bin') ? ' (adapter_model.bin is a pickle, which this tool does not load; convert it to safetensors)' : '';
    throw new FormatError(`${dir}: no ${ADAPTER_WEIGHTS}${hint}`);
  }
  let config: AdapterConfig;
  try {
    config = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG), 'utf8')) as AdapterConfig;
  } catch (err) {
    throw new FormatError(`${ADAPTER_CONFIG}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new FormatError(`${ADAPTER_CONFIG}: not a JSON object`);
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') throw new FormatError(`${ADAPTER_CONFIG}: peft_type is ${JSON.stringify(config.peft_type)}, not "LORA"`);
  const r = config.r;
  const loraAlpha = config.lora_alpha ?? r;
  if (typeof r !== 'number' || typeof loraAlpha !== 'number') throw new FormatError(`${ADAPTER_CONFIG}: "r" and "lora_alpha" must be numbers`);
  const rankPattern = (config.rank_pattern ?? {}) as Record<string, unknown>;
  const alphaPattern = (config.alpha_pattern ?? {}) as Record<string, unknown>;

  const ckpt = await openCheckpoint(join(dir, ADAPTER_WEIGHTS));
  try {
    const factors = new Map<string, { kind: LoraModule['kind']; a?: string; b?: string }>();
    const full: string[] = [];
    for (const t of ckpt.tensors) {
      if (!t.name.startsWith(PREFIX)) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${t.name}" does not start with "${PREFIX}"`);
      const m = /^base_model\.model\.(.+)\.(lora_A\.weight|lora_B\.weight|lora_embedding_A|lora_embedding_B)$/.exec(t.name);
      if (!m) {
        full.push(t.name);
        continue;
      }
      const [, module, which] = m as unknown as [string, string, string];
      const kind = which.startsWith('lora_embedding') ? 'embedding' : 'linear';
      const entry = factors.get(module) ?? { kind };
      if (entry.kind !== kind) throw new FormatError(`${ADAPTER_WEIGHTS}: module "${module}" mixes lora_A/B and lora_embedding_A/B keys`);
      if (which === 'lora_A.weight' || which === 'lora_embedding_A') entry.a = t.name;
      else entry.b = t.name;
      factors.set(module, entry);
    }
    const modules: LoraModule[] = [];
    for (const [module, entry] of factors) {
      if (!entry.a || !entry.b) throw new FormatError(`${ADAPTER_WEIGHTS}: module "${module}" has ${entry.a ? 'A' : 'B'} but no ${entry.a ? 'B' : 'A'} factor`);
      const a = ckpt.info(entry.a);
      const b = ckpt.info(entry.b);
      if (a.shape.length !== 2) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${a.name}" has shape [${a.shape.join(', ')}], expected [r, in]`);
      if (b.shape.length !== 2) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${b.name}" has shape [${b.shape.join(', ')}], expected [out, r]`);
      const rank = a.shape[0]!;
      if (b.shape[1] !== rank) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${b.name}" has shape [${b.shape.join(', ')}] but "${a.name}" has rank ${rank}: expected [${b.shape[0]}, ${rank}]`);
      const configured = lookupPattern(rankPattern, module) ?? r;
      if (configured !== rank) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${a.name}" has rank ${rank} but ${ADAPTER_CONFIG} gives this module r = ${configured}`);
      modules.push({
        module,
        kind: entry.kind,
        rank,
        alpha: lookupPattern(alphaPattern, module) ?? loraAlpha,
        a: await ckpt.readFloat32(a.name),
        b: await ckpt.readFloat32(b.name),
        inFeatures: a.shape[1]!,
        outFeatures: b.shape[0]!,
      });
    }
    const fullWeights: Adapter['fullWeights'] = [];
    for (const key of full) {
      const t = ckpt.info(key);
      fullWeights.push({ name: key.slice(PREFIX.length), dtype: t.dtype, shape: t.shape, data: await ckpt.readFloat32(key) });
    }
    return { config, modules, fullWeights };
  } finally {
    await ckpt.close();
  }
}
