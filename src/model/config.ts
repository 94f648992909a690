/**
 * The architecture of a decoder-only checkpoint, read from its config.json: the Llama family
 * and the close relatives that differ from it by a few switches (Mistral, Qwen2, Qwen3,
 * Gemma 2, Gemma 3 text, Phi-3). Everything the forward pass needs is resolved here once,
 * so the kernels see numbers and booleans, never a model_type.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FormatError } from '../errors.js';

/** model_type values the forward pass runs. */
export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma2', 'gemma3_text', 'phi3'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

/** RoPE variants computed (transformers' `rope_type`); the others (yarn, longrope, dynamic, …) are refused. */
export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const;

export interface RopeConfig {
  type: (typeof SUPPORTED_ROPE_TYPES)[number];
  theta: number;
  /** Dimensions of each head that rotate (Phi-3's partial_rotary_factor · head_dim). */
  rotaryDim: number;
  /** linear: positions divided by this; llama3: the low-frequency divisor. */
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface LayerArch {
  rope: RopeConfig;
  /** Keys more than window − 1 positions back are masked; null: plain causal. */
  slidingWindow: number | null;
}

export interface ModelArch {
  modelType: ModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  activation: 'silu' | 'gelu_tanh';
  /** Gemma: norms scale by (1 + w). */
  normPlusOne: boolean;
  /** Gemma 2/3: extra norms after attention and around the MLP. */
  sandwichNorms: boolean;
  /** Qwen3, Gemma 3: RMSNorm of each head's q and k before RoPE. */
  qkNorm: boolean;
  /** Phi-3: qkv_proj and gate_up_proj hold the projections stacked by rows. */
  fused: boolean;
  /** Gemma: embeddings times √hidden_size (rounded to f32, as transformers does). */
  embedScale: number;
  /** Scores are q·k times this (head_dim^-1/2, Gemma: query_pre_attn_scalar^-1/2). */
  attnScale: number;
  /** tanh soft-capping of attention scores / final logits (Gemma 2), or null. */
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** lm_head is the input embedding matrix. */
  tiedEmbeddings: boolean;
  layers: LayerArch[];
  /** config.json as read. */
  raw: Record<string, unknown>;
}

/** The folder holding a checkpoint path (a folder, a .safetensors file or an index JSON). */
export async function modelFolder(path: string): Promise<string> {
  return (await stat(path)).isDirectory() ? path : dirname(path);
}

/**
 * Read and resolve `config.json` beside the checkpoint at `path`. FormatError when there is
 * none, when model_type is not one of SUPPORTED_MODEL_TYPES (one line naming it), or when a
 * field the forward pass needs is missing or of a kind it does not compute (rope type, activation).
 * @example const arch = await readModelArch('llama-base/'); arch.numLayers
 */
export async function readModelArch(path: string): Promise<ModelArch> {
  const file = join(await modelFolder(path), 'config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FormatError(`${path}: no config.json beside the weights (the forward pass needs the architecture)`, {
        cause: err,
      });
    throw new FormatError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return resolveArch(raw, file);
}

/** The same from a parsed config object; `label` names it in errors. */
export function resolveArch(raw: Record<string, unknown>, label = 'config.json'): ModelArch {
  const modelType = raw['model_type'];
  if (typeof modelType !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new FormatError(
      `${label}: model_type ${JSON.stringify(modelType)} is not supported (the forward pass runs ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  }
  const type = modelType as ModelType;
  const num = (key: string, fallback?: number): number => {
    const v = raw[key];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (v == null && fallback !== undefined) return fallback;
    throw new FormatError(`${label}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  };
  const gemma = type === 'gemma2' || type === 'gemma3_text';
  const hiddenSize = num('hidden_size');
  const numHeads = num('num_attention_heads');
  const numKvHeads = num('num_key_value_heads', numHeads);
  const headDim = num('head_dim', hiddenSize / numHeads);
  const numLayers = num('num_hidden_layers');
  if (!Number.isInteger(headDim) || numHeads % numKvHeads !== 0) {
    throw new FormatError(
      `${label}: ${numHeads} heads of ${headDim} over ${numKvHeads} key/value heads do not fit together`,
    );
  }
  const act = (raw['hidden_activation'] ?? raw['hidden_act'] ?? (gemma ? 'gelu_pytorch_tanh' : 'silu')) as string;
  const activation =
    act === 'silu' || act === 'swish' ? 'silu' : act === 'gelu_pytorch_tanh' || act === 'gelu_new' ? 'gelu_tanh' : null;
  if (activation === null)
    throw new FormatError(`${label}: activation ${JSON.stringify(act)} is not supported (silu, gelu_pytorch_tanh)`);
  if (raw['use_bidirectional_attention'] === true)
    throw new FormatError(`${label}: use_bidirectional_attention is an encoder setting; the forward pass is causal`);

  const layerTypes = Array.isArray(raw['layer_types']) ? (raw['layer_types'] as string[]) : null;
  const window = typeof raw['sliding_window'] === 'number' ? (raw['sliding_window'] as number) : null;
  const useWindow = type === 'qwen2' || type === 'qwen3' ? raw['use_sliding_window'] === true : true;
  const layers: LayerArch[] = [];
  for (let l = 0; l < numLayers; l++) {
    const kind =
      layerTypes?.[l] ??
      (type === 'gemma2'
        ? l % 2 === 0
          ? 'sliding_attention'
          : 'full_attention'
        : type === 'gemma3_text'
          ? (l + 1) % 6 !== 0
            ? 'sliding_attention'
            : 'full_attention'
          : window !== null && useWindow
            ? 'sliding_attention'
            : 'full_attention');
    const sliding = kind === 'sliding_attention' && window !== null && useWindow;
    layers.push({ rope: ropeConfig(raw, type, kind, headDim, label), slidingWindow: sliding ? window : null });
  }

  const scalar = gemma ? num('query_pre_attn_scalar', 256) : headDim;
  const softcap = (key: string) => (typeof raw[key] === 'number' ? (raw[key] as number) : null);
  return {
    modelType: type,
    hiddenSize,
    intermediateSize: num('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: num('vocab_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    activation,
    normPlusOne: gemma,
    sandwichNorms: gemma,
    qkNorm: type === 'qwen3' || type === 'gemma3_text',
    fused: type === 'phi3',
    embedScale: gemma ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    attnScale: scalar ** -0.5,
    attnSoftcap:
      type === 'gemma2'
        ? softcap('attn_logit_softcapping')
        : type === 'gemma3_text'
          ? softcap('attn_logit_softcapping')
          : null,
    finalSoftcap: gemma ? softcap('final_logit_softcapping') : null,
    tiedEmbeddings: typeof raw['tie_word_embeddings'] === 'boolean' ? (raw['tie_word_embeddings'] as boolean) : gemma,
    layers,
    raw,
  };
}

/**
 * RoPE parameters of one layer kind: transformers 5 writes `rope_parameters` (per layer type for
 * Gemma 3), older configs `rope_theta` with `rope_scaling`; both are read.
 */
function ropeConfig(
  raw: Record<string, unknown>,
  type: ModelType,
  layerKind: string,
  headDim: number,
  label: string,
): RopeConfig {
  let params = (raw['rope_parameters'] ?? null) as Record<string, unknown> | null;
  if (params && typeof params === 'object' && (layerKind in params || 'full_attention' in params)) {
    params = (params[layerKind] ?? params['full_attention']) as Record<string, unknown>;
  }
  const scaling = (raw['rope_scaling'] ?? null) as Record<string, unknown> | null;
  const gemma3Local = type === 'gemma3_text' && layerKind === 'sliding_attention';
  const p: Record<string, unknown> = { ...(gemma3Local ? {} : (scaling ?? {})), ...(params ?? {}) };
  const ropeType = String(p['rope_type'] ?? p['type'] ?? 'default');
  if (!(SUPPORTED_ROPE_TYPES as readonly string[]).includes(ropeType)) {
    throw new FormatError(`${label}: rope_type "${ropeType}" is not supported (${SUPPORTED_ROPE_TYPES.join(', ')})`);
  }
  const defaultTheta = type === 'gemma3_text' ? (gemma3Local ? 10_000 : 1_000_000) : 10_000;
  const theta = Number(
    p['rope_theta'] ?? (gemma3Local ? raw['rope_local_base_freq'] : raw['rope_theta']) ?? defaultTheta,
  );
  const partial = Number(p['partial_rotary_factor'] ?? raw['partial_rotary_factor'] ?? 1);
  const factor = Number(p['factor'] ?? 1);
  return {
    type: ropeType as RopeConfig['type'],
    theta,
    rotaryDim: Math.floor(headDim * partial),
    factor,
    lowFreqFactor: Number(p['low_freq_factor'] ?? 1),
    highFreqFactor: Number(p['high_freq_factor'] ?? 4),
    originalMaxPositions: Number(p['original_max_position_embeddings'] ?? raw['max_position_embeddings'] ?? 8192),
  };
}
