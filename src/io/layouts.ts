/**
 * The layout table: what each tensor of a Hugging Face checkpoint is, from its config.json
 * (model_type, architectures, tie_word_embeddings) and its names and shapes, so that analyze,
 * extract, merge and resize treat a GPT-2 Conv1D, a LayerNorm bias or a Mixtral expert as what it
 * is instead of guessing "2-D, so nn.Linear".
 *
 * One entry per family of model types, each an ordered list of name patterns; the first rule that
 * matches a tensor (and fits its shape) gives its role. In a family of the table a tensor no rule
 * matches is `unknown` and is reported, never treated as Linear. A model type missing from the table
 * gets the generic decoder rules and a warning saying so. To support a new architecture, add an
 * entry to FAMILIES (checked against transformers 5.18's modeling files and PEFT 0.21).
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * - linear: nn.Linear weight [out, in].
 * - conv1d: transformers' Conv1D weight stored [in, out] (GPT-2): the update as PEFT sees it is ΔWᵀ; fan_in_fan_out.
 * - embedding: nn.Embedding [num_embeddings, dim] (`embedding` says token, position or token_type).
 * - lm_head: the output projection [vocab, hidden] (tied to the token embeddings where the config says so).
 * - classifier: a task head (score, classifier, qa_outputs): saved whole (PEFT's task models wrap it in modules_to_save).
 * - norm: a LayerNorm/RMSNorm parameter; its module is saved whole, every tensor of it together.
 * - bias: the bias of a linear, conv1d, lm_head or classifier module (`of` says which).
 * - router: a MoE router weight [experts, hidden] (an nn.Linear on disk).
 * - expert: one expert's 2-D weight [out, in] of a MoE block (`expert` says which).
 * - buffer: not a parameter (attention masks, rotary tables) — never extracted.
 * - unknown: no rule of the family matched: reported with `note`.
 */
export type TensorRole =
  | 'linear'
  | 'conv1d'
  | 'embedding'
  | 'lm_head'
  | 'classifier'
  | 'norm'
  | 'bias'
  | 'router'
  | 'expert'
  | 'buffer'
  | 'unknown';

export type EmbeddingKind = 'token' | 'position' | 'token_type';

/** PEFT's TaskType values (peft/utils/peft_types.py). */
export type PeftTaskType =
  | 'CAUSAL_LM'
  | 'SEQ_CLS'
  | 'TOKEN_CLS'
  | 'QUESTION_ANS'
  | 'FEATURE_EXTRACTION'
  | 'SEQ_2_SEQ_LM';

export interface ExpertInfo {
  /** The MoE block's module path as on disk: "model.layers.0.block_sparse_moe". */
  block: string;
  index: number;
  /** Projection name on disk: "w1" / "gate_proj" … */
  proj: string;
}

export interface TensorLayout {
  name: string;
  /** Module path: the name without its last component ("transformer.h.0.attn.c_attn"). */
  module: string;
  /** Last component: "weight", "bias" … */
  param: string;
  role: TensorRole;
  /** conv1d: the weight is stored [in, out], the LoRA view is its transpose. */
  transposed: boolean;
  /** Weights of linear-like roles: [out, in] of the update as LoRA sees it (after the Conv1D transpose). Embeddings: out = dim, in = num_embeddings. */
  outFeatures?: number;
  inFeatures?: number;
  /** The module has a `.bias` tensor in the checkpoint (PEFT's lora_bias needs one). */
  hasBias: boolean;
  embedding?: EmbeddingKind;
  /** role bias: the role of the weight it belongs to. */
  of?: TensorRole;
  expert?: ExpertInfo;
  /** Why a tensor is unknown, a buffer, or assumed. */
  note?: string;
}

/** The fields of config.json the table reads. */
export interface ModelConfig {
  model_type?: string;
  architectures?: string[];
  tie_word_embeddings?: boolean;
  vocab_size?: number;
  [key: string]: unknown;
}

export interface ModelLayout {
  modelType: string | null;
  architectures: string[];
  /** From `architectures` (…ForCausalLM → CAUSAL_LM, …ForSequenceClassification → SEQ_CLS, …); null when unsure. */
  taskType: PeftTaskType | null;
  /** lm_head shares the token embeddings' weight. */
  tiedEmbeddings: boolean;
  /** The entry of the table used ("gpt2", "bert", "decoder", …; "generic" when the model type is not in it). */
  family: string;
  /** PEFT ≥ 0.19 under transformers 5 re-maps this model's per-expert modules onto fused target_parameters. */
  fusedExperts: { fused: Record<string, string[]> } | null;
  tensors: TensorLayout[];
  byName: Map<string, TensorLayout>;
  warnings: string[];
}

interface Rule {
  pattern: RegExp;
  role: TensorRole;
  /** Number of dimensions the tensor must have (rules that do not fit fall through). */
  dims?: number;
  embedding?: EmbeddingKind;
  /** role bias: the role of the weight it belongs to. */
  of?: TensorRole;
  note?: string;
}

interface Family {
  name: string;
  modelTypes: string[];
  rules: Rule[];
  /** Per-expert projections PEFT fuses (transformers 5 conversion mapping, PEFT's _MOE_FUSED_TARGETS). */
  fusedExperts?: Record<string, string[]>;
}

const NORM_PARAM = /(^|\.)[\w]*(norm|layernorm|LayerNorm|ln_\w+|ln_f|ln_attn|ln_mlp)\.(weight|bias)$/;
const BUFFERS: Rule[] = [
  { pattern: /\.rotary_emb\.inv_freq$/, role: 'buffer', note: 'rotary table (a buffer)' },
  { pattern: /(^|\.)position_ids$/, role: 'buffer', note: 'position ids (a buffer)' },
];

/** Llama-family decoders and their MoE kin: Llama, Mistral, Qwen2/3, Phi-3, Gemma 1–3, Phi-2, Mixtral, Qwen*-MoE. */
const DECODER_LINEAR =
  /\.(q_proj|k_proj|v_proj|o_proj|qkv_proj|gate_proj|up_proj|down_proj|gate_up_proj|dense|fc1|fc2|shared_expert_gate)\.weight$/;
const DECODER_BIAS =
  /\.(q_proj|k_proj|v_proj|o_proj|qkv_proj|gate_proj|up_proj|down_proj|gate_up_proj|dense|fc1|fc2)\.bias$/;
const EXPERT = /^(.*)\.experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$/;
const decoderRules: Rule[] = [
  ...BUFFERS,
  { pattern: /(^|\.)embed_tokens\.weight$/, role: 'embedding', embedding: 'token', dims: 2 },
  { pattern: /(^|\.)lm_head\.weight$/, role: 'lm_head', dims: 2 },
  { pattern: /(^|\.)lm_head\.bias$/, role: 'bias', of: 'lm_head', dims: 1 },
  { pattern: /(^|\.)score\.weight$/, role: 'classifier', dims: 2 },
  { pattern: /(^|\.)score\.bias$/, role: 'bias', of: 'classifier', dims: 1 },
  { pattern: EXPERT, role: 'expert', dims: 2 },
  { pattern: /\.(block_sparse_moe|mlp)\.gate\.weight$/, role: 'router', dims: 2 },
  { pattern: DECODER_LINEAR, role: 'linear', dims: 2 },
  { pattern: DECODER_BIAS, role: 'bias', of: 'linear', dims: 1 },
  { pattern: NORM_PARAM, role: 'norm', dims: 1 },
];

const FAMILIES: Family[] = [
  {
    name: 'decoder',
    modelTypes: [
      'llama',
      'mistral',
      'qwen2',
      'qwen3',
      'phi3',
      'gemma',
      'gemma2',
      'gemma3_text',
      'phi',
      'olmo',
      'olmo2',
      'starcoder2',
      'granite',
      'cohere',
      'stablelm',
      'smollm3',
    ],
    rules: decoderRules,
  },
  {
    name: 'mixtral',
    modelTypes: ['mixtral', 'minimax'],
    rules: decoderRules,
    fusedExperts: { gate_up_proj: ['w1', 'w3'], down_proj: ['w2'] },
  },
  {
    name: 'qwen-moe',
    modelTypes: ['qwen2_moe', 'qwen3_moe', 'olmoe'],
    rules: decoderRules,
    fusedExperts: { gate_up_proj: ['gate_proj', 'up_proj'], down_proj: ['down_proj'] },
  },
  {
    name: 'gpt2',
    modelTypes: ['gpt2'],
    rules: [
      // GPT-2 checkpoints of older transformers carry the causal mask as h.N.attn.bias [1, 1, n, n] and attn.masked_bias.
      { pattern: /\.attn\.(bias|masked_bias)$/, role: 'buffer', note: 'causal attention mask (a buffer)' },
      { pattern: /(^|\.)wte\.weight$/, role: 'embedding', embedding: 'token', dims: 2 },
      { pattern: /(^|\.)wpe\.weight$/, role: 'embedding', embedding: 'position', dims: 2 },
      { pattern: /(^|\.)lm_head\.weight$/, role: 'lm_head', dims: 2 },
      { pattern: /(^|\.)score\.weight$/, role: 'classifier', dims: 2 },
      { pattern: /\.(c_attn|c_proj|c_fc)\.weight$/, role: 'conv1d', dims: 2 },
      { pattern: /\.(c_attn|c_proj|c_fc)\.bias$/, role: 'bias', of: 'conv1d', dims: 1 },
      { pattern: /(^|\.)(ln_\d+|ln_f)\.(weight|bias)$/, role: 'norm', dims: 1 },
    ],
  },
  {
    name: 'bert',
    modelTypes: ['bert', 'roberta', 'xlm-roberta', 'electra', 'camembert'],
    rules: [
      ...BUFFERS,
      { pattern: /(^|\.)embeddings\.word_embeddings\.weight$/, role: 'embedding', embedding: 'token', dims: 2 },
      { pattern: /(^|\.)embeddings\.position_embeddings\.weight$/, role: 'embedding', embedding: 'position', dims: 2 },
      {
        pattern: /(^|\.)embeddings\.token_type_embeddings\.weight$/,
        role: 'embedding',
        embedding: 'token_type',
        dims: 2,
      },
      { pattern: /(^|\.)LayerNorm\.(weight|bias)$/, role: 'norm', dims: 1 },
      { pattern: /^(classifier|qa_outputs)(\.out_proj|\.dense)?\.weight$/, role: 'classifier', dims: 2 },
      { pattern: /^(classifier|qa_outputs)(\.out_proj|\.dense)?\.bias$/, role: 'bias', of: 'classifier', dims: 1 },
      { pattern: /(^|\.)cls\.predictions\.decoder\.weight$/, role: 'lm_head', dims: 2 },
      { pattern: /\.(query|key|value|dense)\.weight$/, role: 'linear', dims: 2 },
      { pattern: /\.(query|key|value|dense)\.bias$/, role: 'bias', of: 'linear', dims: 1 },
    ],
  },
  {
    name: 'falcon',
    modelTypes: ['falcon'],
    rules: [
      ...BUFFERS,
      { pattern: /(^|\.)word_embeddings\.weight$/, role: 'embedding', embedding: 'token', dims: 2 },
      { pattern: /(^|\.)lm_head\.weight$/, role: 'lm_head', dims: 2 },
      { pattern: /\.(query_key_value|dense|dense_h_to_4h|dense_4h_to_h)\.weight$/, role: 'linear', dims: 2 },
      { pattern: /\.(query_key_value|dense|dense_h_to_4h|dense_4h_to_h)\.bias$/, role: 'bias', of: 'linear', dims: 1 },
      {
        pattern: /(^|\.)(input_layernorm|post_attention_layernorm|ln_attn|ln_mlp|ln_f)\.(weight|bias)$/,
        role: 'norm',
        dims: 1,
      },
    ],
  },
  {
    // deltarank's own MNIST MLP (`deltarank train --task mnist`): its classifier is a LoRA target like the rest.
    name: 'deltarank-mlp',
    modelTypes: ['deltarank-mlp'],
    rules: [
      { pattern: /\.fc\.weight$|^classifier\.weight$/, role: 'linear', dims: 2 },
      { pattern: /\.fc\.bias$|^classifier\.bias$/, role: 'bias', of: 'linear', dims: 1 },
    ],
  },
];

/** The rules a model type missing from the table gets: the decoder rules, then any 2-D weight assumed to be nn.Linear. */
const GENERIC: Family = {
  name: 'generic',
  modelTypes: [],
  rules: [
    ...decoderRules,
    { pattern: /(^|\.)(wte|word_embeddings|embed_in)\.weight$/, role: 'embedding', embedding: 'token', dims: 2 },
    { pattern: /(^|\.)embed_out\.weight$/, role: 'lm_head', dims: 2 },
    { pattern: /\.weight$/, role: 'linear', dims: 2, note: 'assumed nn.Linear [out, in]' },
    { pattern: /\.bias$/, role: 'bias', of: 'linear', dims: 1, note: 'assumed the bias of an nn.Linear' },
  ],
};

/** architectures suffix → PEFT task type. */
const TASK_BY_SUFFIX: [RegExp, PeftTaskType][] = [
  [/(ForCausalLM|LMHeadModel)$/, 'CAUSAL_LM'],
  [/ForSequenceClassification$/, 'SEQ_CLS'],
  [/ForTokenClassification$/, 'TOKEN_CLS'],
  [/ForQuestionAnswering$/, 'QUESTION_ANS'],
  [/Model$/, 'FEATURE_EXTRACTION'],
];
/** Encoder-decoders whose …ForConditionalGeneration is a seq2seq LM (for vision-language models that name means something else). */
const SEQ2SEQ_TYPES = new Set(['t5', 'mt5', 'bart', 'mbart', 'pegasus', 'marian', 'umt5', 'longt5']);

/** Model types whose config's tie_word_embeddings defaults to true in transformers when absent. */
const TIED_BY_DEFAULT = new Set(['gpt2', 'gemma', 'gemma2', 'gemma3_text', 'bert', 'roberta']);

/**
 * PEFT task type of a model from its config: the first architecture with a known suffix; null
 * when there is none or the name is ambiguous (…ForConditionalGeneration outside seq2seq models, …ForMaskedLM).
 */
export function taskTypeOf(config: ModelConfig | null): PeftTaskType | null {
  for (const arch of config?.architectures ?? []) {
    if (/ForConditionalGeneration$/.test(arch))
      return SEQ2SEQ_TYPES.has(config?.model_type ?? '') ? 'SEQ_2_SEQ_LM' : null;
    for (const [re, task] of TASK_BY_SUFFIX) if (re.test(arch)) return task;
  }
  return null;
}

/**
 * Read config.json beside a checkpoint (its folder, or the folder of a single file); null when there is none
 * or it is not JSON.
 */
export async function readModelConfig(checkpointPath: string): Promise<ModelConfig | null> {
  try {
    const folder = (await stat(checkpointPath)).isDirectory() ? checkpointPath : dirname(checkpointPath);
    const json = JSON.parse(await readFile(join(folder, 'config.json'), 'utf8')) as unknown;
    return json && typeof json === 'object' && !Array.isArray(json) ? (json as ModelConfig) : null;
  } catch {
    return null;
  }
}

function moduleOfName(name: string): { module: string; param: string } {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? { module: name, param: '' } : { module: name.slice(0, dot), param: name.slice(dot + 1) };
}

/**
 * Classify every tensor of a checkpoint by the table: its role, the module it belongs to, the LoRA
 * view of its shape. `tensors` are {name, shape} (TensorInfo fits). Cost: one pass of regex tests.
 * @example
 *   const layout = modelLayout(await readModelConfig('gpt2/'), ck.tensors);
 *   layout.byName.get('transformer.h.0.attn.c_attn.weight') // { role: 'conv1d', transposed: true, outFeatures: 2304, inFeatures: 768, … }
 */
export function modelLayout(
  config: ModelConfig | null,
  tensors: readonly { name: string; shape: readonly number[] }[],
): ModelLayout {
  const modelType = typeof config?.model_type === 'string' ? config.model_type : null;
  const family = FAMILIES.find((f) => modelType !== null && f.modelTypes.includes(modelType)) ?? GENERIC;
  const warnings: string[] = [];
  const names = new Set(tensors.map((t) => t.name));
  const out: TensorLayout[] = [];
  const assumed: string[] = [];
  for (const t of tensors) {
    const { module, param } = moduleOfName(t.name);
    const rule = family.rules.find(
      (r) => r.pattern.test(t.name) && (r.dims === undefined || r.dims === t.shape.length),
    );
    const layout: TensorLayout = {
      name: t.name,
      module,
      param,
      role: rule?.role ?? 'unknown',
      transposed: rule?.role === 'conv1d',
      hasBias: names.has(`${module}.bias`),
    };
    if (!rule) layout.note = `no rule of the ${family.name} layout matches this ${t.shape.length}-D tensor`;
    else {
      if (rule.note) layout.note = rule.note;
      if (rule.embedding) layout.embedding = rule.embedding;
      if (rule.of) layout.of = rule.of;
    }
    if (t.shape.length === 2) {
      const [a, b] = t.shape as [number, number];
      if (layout.role === 'conv1d') [layout.outFeatures, layout.inFeatures] = [b, a];
      else if (layout.role === 'embedding') [layout.outFeatures, layout.inFeatures] = [b, a];
      else if (['linear', 'lm_head', 'classifier', 'router', 'expert'].includes(layout.role))
        [layout.outFeatures, layout.inFeatures] = [a, b];
    }
    if (layout.role === 'expert') {
      const m = EXPERT.exec(t.name)!;
      layout.expert = { block: m[1]!, index: Number(m[2]), proj: m[3]! };
    }
    if (family === GENERIC && rule?.note?.startsWith('assumed')) assumed.push(t.name);
    out.push(layout);
  }
  if (family === GENERIC) {
    warnings.push(
      `model_type ${modelType === null ? '(no config.json)' : JSON.stringify(modelType)} is not in the layout table: generic decoder names used` +
        (assumed.length > 0
          ? `; ${assumed.length} tensors assumed nn.Linear/bias by name alone (e.g. ${assumed.slice(0, 3).join(', ')})`
          : ''),
    );
  }
  const tokenEmbedding = out.find((l) => l.role === 'embedding' && l.embedding === 'token');
  const lmHead = out.some((l) => l.role === 'lm_head');
  const tiedFlag = config?.tie_word_embeddings;
  const taskType = taskTypeOf(config);
  // Tying needs an output head: a causal LM stores none when it is tied; encoders and classifiers have nothing to tie.
  const hasHead = lmHead || taskType === 'CAUSAL_LM';
  const tiedEmbeddings =
    tokenEmbedding !== undefined &&
    hasHead &&
    (typeof tiedFlag === 'boolean' ? tiedFlag : TIED_BY_DEFAULT.has(modelType ?? '') || !lmHead);
  return {
    modelType,
    architectures: Array.isArray(config?.architectures)
      ? config.architectures.filter((a): a is string => typeof a === 'string')
      : [],
    taskType,
    tiedEmbeddings,
    family: family.name,
    fusedExperts: family.fusedExperts && out.some((l) => l.role === 'expert') ? { fused: family.fusedExperts } : null,
    tensors: out,
    byName: new Map(out.map((l) => [l.name, l])),
    warnings,
  };
}

/** Read config.json beside `checkpointPath` and classify `tensors` (the checkpoint's). */
export async function checkpointLayout(
  checkpointPath: string,
  tensors: readonly { name: string; shape: readonly number[] }[],
): Promise<ModelLayout> {
  return modelLayout(await readModelConfig(checkpointPath), tensors);
}
