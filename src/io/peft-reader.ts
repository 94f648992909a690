/**
 * Reading PEFT LoRA adapter folders (the layout is described in peft.ts), with every
 * adapter_config.json field of PEFT 0.21's LoraConfig either understood, known not to change
 * the weights, or refused with one line naming it: an adapter is never read into a wrong number.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, UsageError } from '../errors.js';
import { openCheckpoint } from './checkpoint.js';
import type { DType } from './dtypes.js';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  type Adapter,
  type AdapterConfig,
  type LoraModule,
  PEFT_PREFIX as PREFIX,
} from './peft.js';

/** PEFT's LoraConfig defaults for the two numbers every module needs (peft/tuners/lora/config.py). */
const PEFT_DEFAULT_R = 8;
const PEFT_DEFAULT_ALPHA = 8;

/**
 * PEFT 0.21's LoraConfig fields (and PeftConfig's) that do not change what a saved adapter adds
 * to its base: bookkeeping, which modules were targeted (the saved keys say which were), training
 * only (dropout), initialisations that leave the base as it is, or options inert at their default
 * when the option that uses them is off.
 */
const IRRELEVANT = new Set([
  'task_type',
  'peft_version',
  'auto_mapping',
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'target_modules',
  'exclude_modules',
  'layers_to_transform',
  'layers_pattern',
  'lora_dropout', // training only (ParamWrapper refuses it; Linear applies it to x only)
  'eva_config',
  'corda_config', // inputs of initialisations; init_lora_weights says which ran
  'megatron_core', // a module name, used only with megatron_config
  'qalora_group_size', // used only with use_qalora
  'runtime_config', // ephemeral GPU offload: where, not what
]);

/** Fields this reader applies: r, alpha and their patterns, rsLoRA, Conv1D layout, biases, DoRA, modules_to_save. */
const UNDERSTOOD = new Set([
  'peft_type',
  'r',
  'lora_alpha',
  'rank_pattern',
  'alpha_pattern',
  'use_rslora',
  'fan_in_fan_out',
  'bias',
  'lora_bias',
  'use_dora',
  'modules_to_save',
  'init_lora_weights',
  'target_parameters',
  'ensure_weight_tying',
]);

/**
 * Fields that change the weights in ways this tool does not reproduce: accepted only at PEFT's
 * default (null, false, {} or []), refused otherwise with the reason.
 */
const REFUSED: Record<string, string> = {
  megatron_config: 'Megatron tensor-parallel LoRA layers',
  trainable_token_indices: 'trainable token deltas (TrainableTokens)',
  loftq_config: 'LoftQ: the adapter belongs to a quantised residual base',
  lora_ga_config: 'LoRA-GA: the adapter belongs to a base modified at initialisation',
  use_qalora: 'QA-LoRA pools the input before lora_A',
  layer_replication: 'layers are replicated before the adapter applies',
  alora_invocation_tokens: 'activated LoRA applies only after its invocation tokens: it has no merged weight',
  arrow_config: 'Arrow routes between several adapters per token',
  use_bdlora: 'block-diagonal LoRA factors',
  kasa_config: 'KaSA adds a singular-value block',
  velora_config: 'VeLoRA changes the factors',
  monteclora_config: 'MonteCLoRA samples the factors',
};

/** init_lora_weights values that leave the base weights untouched (so W + s·B·A is the tuned weight). */
const PLAIN_INITS = new Set<unknown>([true, false, 'gaussian', 'eva', 'orthogonal']);

function isInert(value: unknown): boolean {
  if (value === null || value === undefined || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && Object.keys(value).length === 0;
}

/** The settings of adapter_config.json that decide the weights, after the checks of `checkConfig`. */
export interface AdapterSettings {
  r: number;
  loraAlpha: number;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  useRslora: boolean;
  /** PEFT's fan_in_fan_out: the targeted layers store their weight [in, out] (transformers' Conv1D). */
  fanInFanOut: boolean;
  useDora: boolean;
  loraBias: boolean;
  /** target_parameters: LoRA on nn.Parameter (PEFT's ParamWrapper), e.g. "experts.gate_up_proj". */
  targetParameters: string[];
  /** ensure_weight_tying: lm_head's LoRA is the tied token embeddings' own, transposed. */
  ensureWeightTying: boolean;
}

/**
 * Check every field of an adapter_config.json object against PEFT 0.21's LoraConfig and return the
 * settings that decide the weights. FormatError (one line, naming the field) for another peft_type,
 * a field set to something this tool does not reproduce, or a field PEFT 0.21 does not have.
 * Fields starting `deltarank_` are this tool's own notes.
 */
export function checkConfig(config: AdapterConfig, where = ADAPTER_CONFIG): AdapterSettings {
  if (config.peft_type !== undefined && config.peft_type !== 'LORA')
    throw new FormatError(`${where}: peft_type is ${JSON.stringify(config.peft_type)}, not "LORA"`);
  for (const [field, value] of Object.entries(config)) {
    if (UNDERSTOOD.has(field) || IRRELEVANT.has(field) || field.startsWith('deltarank_')) continue;
    const why = REFUSED[field];
    if (isInert(value)) continue;
    if (why)
      throw new FormatError(
        `${where}: "${field}" is set (${JSON.stringify(value)}): ${why}; refused rather than merged wrong`,
      );
    throw new FormatError(
      `${where}: unknown field "${field}" = ${JSON.stringify(value)} (not in PEFT 0.21's LoraConfig); refused, as it may change the weights`,
    );
  }
  const r = config.r ?? PEFT_DEFAULT_R;
  const loraAlpha = config.lora_alpha ?? PEFT_DEFAULT_ALPHA;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw new FormatError(`${where}: "r" must be a positive integer, got ${JSON.stringify(config.r)}`);
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha))
    throw new FormatError(`${where}: "lora_alpha" must be a number, got ${JSON.stringify(config.lora_alpha)}`);
  const init = config.init_lora_weights ?? true;
  if (!PLAIN_INITS.has(init)) {
    throw new FormatError(
      `${where}: "init_lora_weights" is ${JSON.stringify(init)}: that initialisation changes the base weights, so the adapter belongs to a residual base; convert it with PEFT (save_pretrained's path_initial_model_for_weight_conversion) first`,
    );
  }
  const bias = config.bias ?? 'none';
  if (bias !== 'none' && bias !== 'all' && bias !== 'lora_only')
    throw new FormatError(`${where}: "bias" is ${JSON.stringify(bias)}, expected "none", "all" or "lora_only"`);
  const flag = (field: string): boolean => {
    const v = config[field] ?? false;
    if (typeof v !== 'boolean')
      throw new FormatError(`${where}: "${field}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const pattern = (field: string): Record<string, number> => {
    const p = config[field] ?? {};
    if (typeof p !== 'object' || p === null || Array.isArray(p))
      throw new FormatError(`${where}: "${field}" must be an object of module pattern → number`);
    for (const [k, v] of Object.entries(p)) {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new FormatError(`${where}: "${field}" gives "${k}" the value ${JSON.stringify(v)}, not a number`);
      try {
        new RegExp(k);
      } catch {
        throw new FormatError(`${where}: "${field}" key "${k}" is not a regular expression this tool can read`);
      }
    }
    return p as Record<string, number>;
  };
  const stringList = (field: string): string[] => {
    const v = config[field] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw new FormatError(`${where}: "${field}" must be a list of names, got ${JSON.stringify(v)}`);
    return v as string[];
  };
  const settings: AdapterSettings = {
    r,
    loraAlpha,
    rankPattern: pattern('rank_pattern'),
    alphaPattern: pattern('alpha_pattern'),
    useRslora: flag('use_rslora'),
    fanInFanOut: flag('fan_in_fan_out'),
    useDora: flag('use_dora'),
    loraBias: flag('lora_bias'),
    targetParameters: stringList('target_parameters'),
    ensureWeightTying: flag('ensure_weight_tying'),
  };
  if (settings.useDora && settings.loraBias)
    throw new FormatError(`${where}: "use_dora" and "lora_bias" are both true, which PEFT refuses`);
  return settings;
}

/**
 * PEFT's rule for rank_pattern / alpha_pattern keys (peft.utils.other.get_pattern_key): the first
 * key, in the file's order, that as a regex matches the whole module path or its tail after a dot.
 */
export function lookupPattern(pattern: Record<string, number>, module: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) return value;
  }
  return undefined;
}

/** An adapter as read: the modules and full weights, the settings that decide the weights. */
export interface ReadAdapter extends Adapter {
  settings: AdapterSettings;
  /**
   * The key (after `base_model.model.`) each of `fullWeights` was saved under, in the same order:
   * `fullWeights[i].name` is the base tensor it replaces, PEFT's wrappers taken out
   * ("model.embed_tokens.base_layer.weight" replaces "model.embed_tokens.weight").
   */
  fullWeightKeys: string[];
  /**
   * With ensure_weight_tying, the linear modules (lm_head) whose factors are exactly an embedding
   * module's transposed (A = B_embᵀ, B = A_embᵀ, same rank and alpha): the same ΔW on the same
   * tied tensor. They stay in `modules`; a base that stores only the embedding takes the change once.
   */
  tied: { module: string; source: string }[];
  /** LoRA on nn.Parameter (target_parameters), one entry per wrapper: see `resolveParamLora`. */
  paramModules: ParamLora[];
  /** The dtype the LoRA factors are stored in (of the first lora_A), null when there are none. */
  factorDtype: DType | null;
}

/**
 * A LoRA on an nn.Parameter (PEFT's ParamWrapper, `target_parameters`). PEFT nests one wrapper
 * per targeted parameter of a module, so the keys are `<owner>(.base_layer)*.lora_A.weight`
 * [E·r, in] and `.lora_B.weight` [out, E·r]; which parameter a nesting level adapts is not saved
 * (it follows the module's declaration order), so `candidates` lists the targeted names it can be
 * and `resolveParamLora` picks by rank and, given the base, by shape. Expert e's factors are rows
 * e·r … e·r + r − 1 of A and columns e, E + e, …, (r − 1)·E + e of B; its ΔW_e = s·B_e·A_e is
 * [out, in], stored [E, out, in] (or [E, in, out] for modules PEFT calls is_transposed).
 */
export interface ParamLora {
  /** The module holding the parameter, e.g. "model.layers.0.mlp.experts". */
  owner: string;
  /** How many `.base_layer` the keys carry (0 = outermost wrapper). */
  level: number;
  /** Parameter names on `owner` that target_parameters selects. */
  candidates: string[];
  /** lora_A [rows, in] and lora_B [out, rows] row-major f32; rows = experts · r. */
  a: Float32Array;
  b: Float32Array;
  rows: number;
  inFeatures: number;
  outFeatures: number;
}

/** A `ParamLora` resolved to its parameter. */
export interface ResolvedParamLora {
  /** Base tensor name, `<owner>.<parameter>`. */
  name: string;
  rank: number;
  alpha: number;
  experts: number;
  /** The base tensor's layout when known (given its shape): expert slices [in, out] rather than [out, in]. */
  transposed: boolean | null;
}

/**
 * Which parameter a `ParamLora` adapts, its rank (r or rank_pattern of `<owner>.<parameter>`, as
 * PEFT keys it), alpha and expert count. `shapeOf` gives a base tensor's shape (undefined when
 * absent); without it only the ranks can tell candidates apart, and an adapter they do not tell
 * apart is refused (UsageError: give the base). FormatError where no candidate fits, where the
 * base shapes fit more than one, or where a square expert weight leaves [out, in] and [in, out]
 * both possible (PEFT's is_transposed is not saved).
 */
export function resolveParamLora(
  p: ParamLora,
  settings: AdapterSettings,
  shapeOf?: (name: string) => readonly number[] | undefined,
): ResolvedParamLora {
  const fits: ResolvedParamLora[] = [];
  let square = false;
  for (const param of p.candidates) {
    const name = `${p.owner}.${param}`;
    const rank = lookupPattern(settings.rankPattern, name) ?? settings.r;
    if (p.rows % rank !== 0) continue;
    const experts = p.rows / rank;
    const alpha = lookupPattern(settings.alphaPattern, name) ?? settings.loraAlpha;
    if (!shapeOf) {
      fits.push({ name, rank, alpha, experts, transposed: null });
      continue;
    }
    const shape = shapeOf(name);
    if (!shape) continue;
    if (shape.length === 2) {
      // ParamWrapper on a 2-D parameter: one "expert", nn.Linear's [out, in].
      if (experts === 1 && shape[0] === p.outFeatures && shape[1] === p.inFeatures)
        fits.push({ name, rank, alpha, experts, transposed: false });
      continue;
    }
    if (shape.length !== 3 || shape[0] !== experts) continue;
    const plain = shape[1] === p.outFeatures && shape[2] === p.inFeatures;
    const transposed = shape[1] === p.inFeatures && shape[2] === p.outFeatures;
    if (plain && transposed) square = true;
    if (plain || transposed) fits.push({ name, rank, alpha, experts, transposed: plain ? false : true });
  }
  const keyOf = `${PREFIX}${p.owner}${'.base_layer'.repeat(p.level)}.lora_A.weight`;
  if (fits.length === 0)
    throw new FormatError(
      `${ADAPTER_WEIGHTS}: "${keyOf}" [${p.rows}, ${p.inFeatures}] fits none of the targeted parameters ${p.candidates.map((c) => `${p.owner}.${c}`).join(', ')}${shapeOf ? ' of the base' : ''}`,
    );
  if (fits.length > 1) {
    const names = fits.map((f) => f.name).join(' and ');
    if (!shapeOf)
      throw new UsageError(
        `${ADAPTER_WEIGHTS}: "${keyOf}" may adapt ${names} (PEFT does not save which); give the base checkpoint so its shapes tell`,
      );
    throw new FormatError(
      `${ADAPTER_WEIGHTS}: "${keyOf}" fits both ${names} of the base (same shapes; PEFT does not save which it adapts)`,
    );
  }
  if (square)
    throw new FormatError(
      `${ADAPTER_WEIGHTS}: ${fits[0]!.name} is square per expert, so [out, in] and [in, out] both fit and PEFT does not save which (is_transposed)`,
    );
  return fits[0]!;
}

/**
 * Parameter names on `owner` that target_parameters selects, PEFT's rule: `<owner>.<param>` equals
 * an entry or ends with "." + the entry.
 */
function targetedParameters(targets: string[], owner: string): string[] {
  const out = new Set<string>();
  for (const t of targets) {
    const dot = t.lastIndexOf('.');
    const param = t.slice(dot + 1);
    const key = `${owner}.${param}`;
    if (key === t || key.endsWith(`.${t}`)) out.add(param);
  }
  return [...out];
}

/** Linear modules whose factors are an embedding module's, transposed (PEFT's ensure_weight_tying layout). */
function tiedModules(modules: LoraModule[]): { module: string; source: string }[] {
  const out: { module: string; source: string }[] = [];
  for (const m of modules) {
    if (m.kind !== 'linear') continue;
    const src = modules.find(
      (e) =>
        e.kind === 'embedding' &&
        e.rank === m.rank &&
        e.alpha === m.alpha &&
        e.inFeatures === m.outFeatures &&
        e.outFeatures === m.inFeatures &&
        isTransposeOf(m.a, e.b, e.outFeatures, e.rank) &&
        isTransposeOf(m.b, e.a, e.rank, e.inFeatures),
    );
    if (src) out.push({ module: m.module, source: src.module });
  }
  return out;
}

/** x [cols, rows] equals yᵀ for y [rows, cols], exactly. */
function isTransposeOf(x: Float32Array, y: Float32Array, rows: number, cols: number): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) if (x[j * rows + i] !== y[i * cols + j]) return false;
  return true;
}

/** Expert e's factors of a resolved ParamLora: A_e [r, in] and B_e [out, r], row-major copies. */
export function expertFactors(p: ParamLora, r: ResolvedParamLora, e: number): { a: Float32Array; b: Float32Array } {
  const a = p.a.slice(e * r.rank * p.inFeatures, (e + 1) * r.rank * p.inFeatures);
  const b = new Float32Array(p.outFeatures * r.rank);
  for (let o = 0; o < p.outFeatures; o++)
    for (let j = 0; j < r.rank; j++) b[o * r.rank + j] = p.b[o * p.rows + j * r.experts + e]!;
  return { a, b };
}

const LORA_KEY =
  /^(.+)\.(lora_A\.weight|lora_B\.weight|lora_B\.bias|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)$/;
/** Keys of other PEFT methods or unremoved adapter names: never a full weight. */
const FOREIGN_KEY = /(^|\.)(lora_[A-Za-z0-9_]*|token_adapter|trainable_tokens[A-Za-z_]*|original_module)(\.|$)/;

/** The base tensor a saved full weight replaces: PEFT's `.base_layer` and `.modules_to_save` wrappers taken out. */
function baseTensorName(key: string): string {
  return key.replace(/\.(base_layer|modules_to_save)(?=\.)/g, '');
}

/**
 * Read a PEFT LoRA adapter folder: every module's factors widened to f32 with its rank (from the
 * tensors, checked against r / rank_pattern), alpha (lora_alpha / alpha_pattern, PEFT's default 8),
 * lora_B.bias and DoRA's magnitude where saved; full weights (modules_to_save, saved biases, the
 * base embedding PEFT saves beside an embedding LoRA) by the base tensor they replace.
 * FormatError naming the file and key or field for: a missing adapter_config.json or
 * adapter_model.safetensors, a config field this tool does not reproduce (`checkConfig`), a key
 * outside `base_model.model.` or of another PEFT method, a module with one factor only, factors
 * that are not 2-D or whose ranks disagree with each other or with the config, a bias or
 * magnitude the config does not announce (or missing where it does), or of the wrong length.
 * @example const { modules, settings } = await readAdapter('my-lora/');
 */
export async function readAdapter(dir: string): Promise<ReadAdapter> {
  const st = await stat(dir);
  if (!st.isDirectory())
    throw new FormatError(`${dir}: an adapter is a folder holding ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}`);
  const names = await readdir(dir);
  if (!names.includes(ADAPTER_CONFIG))
    throw new FormatError(`${dir}: no ${ADAPTER_CONFIG} (not a PEFT adapter folder)`);
  if (!names.includes(ADAPTER_WEIGHTS)) {
    const hint = names.includes('adapter_model.bin')
      ? ' (adapter_model.bin is a pickle, which this tool does not load; convert it to safetensors)'
      : '';
    throw new FormatError(`${dir}: no ${ADAPTER_WEIGHTS}${hint}`);
  }
  let config: AdapterConfig;
  try {
    config = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG), 'utf8')) as AdapterConfig;
  } catch (err) {
    throw new FormatError(`${ADAPTER_CONFIG}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new FormatError(`${ADAPTER_CONFIG}: not a JSON object`);
  const settings = checkConfig(config);

  const ckpt = await openCheckpoint(join(dir, ADAPTER_WEIGHTS));
  try {
    const factors = new Map<
      string,
      { kind: LoraModule['kind']; a?: string; b?: string; bias?: string; magnitude?: string }
    >();
    const full: string[] = [];
    for (const t of ckpt.tensors) {
      if (!t.name.startsWith(PREFIX))
        throw new FormatError(`${ADAPTER_WEIGHTS}: key "${t.name}" does not start with "${PREFIX}"`);
      const m = LORA_KEY.exec(t.name.slice(PREFIX.length));
      if (!m) {
        if (FOREIGN_KEY.test(t.name.slice(PREFIX.length)))
          throw new FormatError(
            `${ADAPTER_WEIGHTS}: key "${t.name}" is not one of PEFT 0.21's LoRA keys (lora_A/B.weight, lora_B.bias, lora_embedding_A/B, lora_magnitude_vector)`,
          );
        full.push(t.name);
        continue;
      }
      const [, module, which] = m as unknown as [string, string, string];
      const kind = which.startsWith('lora_embedding')
        ? 'embedding'
        : which === 'lora_magnitude_vector'
          ? undefined
          : 'linear';
      const entry = factors.get(module) ?? { kind: kind ?? 'linear' };
      if (kind && factors.has(module) && (entry.a || entry.b) && entry.kind !== kind)
        throw new FormatError(`${ADAPTER_WEIGHTS}: module "${module}" mixes lora_A/B and lora_embedding_A/B keys`);
      if (kind) entry.kind = kind;
      if (which === 'lora_A.weight' || which === 'lora_embedding_A') entry.a = t.name;
      else if (which === 'lora_B.weight' || which === 'lora_embedding_B') entry.b = t.name;
      else if (which === 'lora_B.bias') entry.bias = t.name;
      else entry.magnitude = t.name;
      factors.set(module, entry);
    }
    const modules: LoraModule[] = [];
    const paramModules: ParamLora[] = [];
    let factorDtype: DType | null = null;
    for (const [module, entry] of factors) {
      const owner = module.replace(/(\.base_layer)+$/, '');
      const level = (module.length - owner.length) / '.base_layer'.length;
      const candidates = targetedParameters(settings.targetParameters, owner);
      if (candidates.length > 0) {
        if (!entry.a || !entry.b || entry.kind !== 'linear')
          throw new FormatError(
            `${ADAPTER_WEIGHTS}: module "${module}" (target_parameters) needs lora_A.weight and lora_B.weight`,
          );
        if (entry.bias || entry.magnitude)
          throw new FormatError(
            `${ADAPTER_WEIGHTS}: "${entry.bias ?? entry.magnitude}": PEFT's ParamWrapper has no lora_bias or DoRA`,
          );
        const a = ckpt.info(entry.a);
        const b = ckpt.info(entry.b);
        if (a.shape.length !== 2 || b.shape.length !== 2 || b.shape[1] !== a.shape[0])
          throw new FormatError(
            `${ADAPTER_WEIGHTS}: "${a.name}" [${a.shape.join(', ')}] and "${b.name}" [${b.shape.join(', ')}] are not [E·r, in] and [out, E·r]`,
          );
        factorDtype ??= a.dtype;
        const p: ParamLora = {
          owner,
          level,
          candidates,
          a: await ckpt.readFloat32(a.name),
          b: await ckpt.readFloat32(b.name),
          rows: a.shape[0]!,
          inFeatures: a.shape[1]!,
          outFeatures: b.shape[0]!,
        };
        try {
          resolveParamLora(p, settings);
        } catch (err) {
          // Which candidate it is may take the base's shapes (merge, analyze with a base); only a misfit is wrong here.
          if (!(err instanceof UsageError)) throw err;
        }
        paramModules.push(p);
        continue;
      }
      if (level > 0)
        throw new FormatError(
          `${ADAPTER_WEIGHTS}: module "${module}" is a nested PEFT wrapper, which only target_parameters makes, but no entry of target_parameters names "${owner}"`,
        );
      if (!entry.a || !entry.b) {
        const has = entry.a ? 'A' : entry.b ? 'B' : entry.bias ? 'lora_B.bias' : 'lora_magnitude_vector';
        throw new FormatError(`${ADAPTER_WEIGHTS}: module "${module}" has ${has} but no ${entry.a ? 'B' : 'A'} factor`);
      }
      const a = ckpt.info(entry.a);
      const b = ckpt.info(entry.b);
      if (a.shape.length !== 2)
        throw new FormatError(
          `${ADAPTER_WEIGHTS}: key "${a.name}" has shape [${a.shape.join(', ')}], expected [r, in]`,
        );
      if (b.shape.length !== 2)
        throw new FormatError(
          `${ADAPTER_WEIGHTS}: key "${b.name}" has shape [${b.shape.join(', ')}], expected [out, r]`,
        );
      factorDtype ??= a.dtype;
      const rank = a.shape[0]!;
      const out = b.shape[0]!;
      if (b.shape[1] !== rank)
        throw new FormatError(
          `${ADAPTER_WEIGHTS}: key "${b.name}" has shape [${b.shape.join(', ')}] but "${a.name}" has rank ${rank}: expected [${out}, ${rank}]`,
        );
      const configured = lookupPattern(settings.rankPattern, module) ?? settings.r;
      if (configured !== rank)
        throw new FormatError(
          `${ADAPTER_WEIGHTS}: key "${a.name}" has rank ${rank} but ${ADAPTER_CONFIG} gives this module r = ${configured}`,
        );
      if (settings.loraBias !== !!entry.bias && entry.kind === 'linear') {
        throw new FormatError(
          entry.bias
            ? `${ADAPTER_WEIGHTS}: key "${entry.bias}" is a lora_B bias but ${ADAPTER_CONFIG} does not set "lora_bias": true`
            : `${ADAPTER_WEIGHTS}: module "${module}" has no lora_B.bias but ${ADAPTER_CONFIG} sets "lora_bias": true`,
        );
      }
      if (entry.bias && entry.kind === 'embedding')
        throw new FormatError(`${ADAPTER_WEIGHTS}: key "${entry.bias}": PEFT has no lora_bias on embeddings`);
      if (settings.useDora !== !!entry.magnitude) {
        throw new FormatError(
          entry.magnitude
            ? `${ADAPTER_WEIGHTS}: key "${entry.magnitude}" is a DoRA magnitude but ${ADAPTER_CONFIG} does not set "use_dora": true`
            : `${ADAPTER_WEIGHTS}: module "${module}" has no lora_magnitude_vector but ${ADAPTER_CONFIG} sets "use_dora": true`,
        );
      }
      const vector = async (key: string | undefined, what: string) => {
        if (!key) return undefined;
        const t = ckpt.info(key);
        if (t.shape.length !== 1 || t.shape[0] !== out)
          throw new FormatError(
            `${ADAPTER_WEIGHTS}: key "${key}" has shape [${t.shape.join(', ')}], expected [${out}] (${what} of ${out} outputs)`,
          );
        return ckpt.readFloat32(key);
      };
      const bias = await vector(entry.bias, 'lora_B.bias');
      const magnitude = await vector(entry.magnitude, 'DoRA magnitude');
      modules.push({
        module,
        kind: entry.kind,
        rank,
        alpha: lookupPattern(settings.alphaPattern, module) ?? settings.loraAlpha,
        a: await ckpt.readFloat32(a.name),
        b: await ckpt.readFloat32(b.name),
        inFeatures: a.shape[1]!,
        outFeatures: out,
        ...(bias ? { bias } : {}),
        ...(magnitude ? { magnitude } : {}),
      });
    }
    const fullWeights: Adapter['fullWeights'] = [];
    const fullWeightKeys: string[] = [];
    const seen = new Map<string, string>();
    for (const key of full) {
      const t = ckpt.info(key);
      const saved = key.slice(PREFIX.length);
      const name = baseTensorName(saved);
      const twin = seen.get(name);
      if (twin)
        throw new FormatError(`${ADAPTER_WEIGHTS}: keys "${PREFIX}${twin}" and "${key}" both replace "${name}"`);
      seen.set(name, saved);
      fullWeights.push({ name, dtype: t.dtype, shape: t.shape, data: await ckpt.readFloat32(key) });
      fullWeightKeys.push(saved);
    }
    const tied = settings.ensureWeightTying ? tiedModules(modules) : [];
    return { config, modules, fullWeights, settings, fullWeightKeys, factorDtype, paramModules, tied };
  } finally {
    await ckpt.close();
  }
}
