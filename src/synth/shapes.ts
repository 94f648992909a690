/**
 * Llama-shaped model sizes for synthetic pairs, and the tensors such a model holds, in
 * Hugging Face names and PyTorch layout (a Linear weight is [out, in]).
 */
import type { DType } from '../io/index.js';

export type SynthShapeName = 'tiny' | 'small' | 'tinyllama';

export interface SynthShape {
  name: SynthShapeName;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Grouped-query attention: k_proj and v_proj have numKvHeads · headDim outputs. */
  numKvHeads: number;
  vocabSize: number;
}

export const SYNTH_SHAPES: Record<SynthShapeName, SynthShape> = {
  tiny: {
    name: 'tiny',
    hiddenSize: 64,
    intermediateSize: 176,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 256,
  },
  small: {
    name: 'small',
    hiddenSize: 512,
    intermediateSize: 1376,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 2,
    vocabSize: 4096,
  },
  // TinyLlama-1.1B's dimensions: about 1.1 G parameters, 2.2 GB a side in bf16.
  tinyllama: {
    name: 'tinyllama',
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: 22,
    numHeads: 32,
    numKvHeads: 4,
    vocabSize: 32000,
  },
};

/** What a tensor is, which decides how the synthetic fine-tune changes it. */
export type ModuleKind =
  | 'q_proj'
  | 'k_proj'
  | 'v_proj'
  | 'o_proj'
  | 'gate_proj'
  | 'up_proj'
  | 'down_proj'
  | 'embed_tokens'
  | 'lm_head'
  | 'norm';

export interface SynthTensor {
  name: string;
  kind: ModuleKind;
  /** Layer index, or null for embed_tokens, the final norm and lm_head. */
  layer: number | null;
  shape: number[];
}

/** Every tensor of the model, in the order they are written: embeddings, layer by layer, final norm, lm_head. */
export function llamaTensors(shape: SynthShape): SynthTensor[] {
  const { hiddenSize: h, intermediateSize: f, numLayers, numHeads, numKvHeads, vocabSize: v } = shape;
  const kv = (h / numHeads) * numKvHeads;
  const out: SynthTensor[] = [{ name: 'model.embed_tokens.weight', kind: 'embed_tokens', layer: null, shape: [v, h] }];
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      { name: `${p}.self_attn.q_proj.weight`, kind: 'q_proj', layer: l, shape: [h, h] },
      { name: `${p}.self_attn.k_proj.weight`, kind: 'k_proj', layer: l, shape: [kv, h] },
      { name: `${p}.self_attn.v_proj.weight`, kind: 'v_proj', layer: l, shape: [kv, h] },
      { name: `${p}.self_attn.o_proj.weight`, kind: 'o_proj', layer: l, shape: [h, h] },
      { name: `${p}.mlp.gate_proj.weight`, kind: 'gate_proj', layer: l, shape: [f, h] },
      { name: `${p}.mlp.up_proj.weight`, kind: 'up_proj', layer: l, shape: [f, h] },
      { name: `${p}.mlp.down_proj.weight`, kind: 'down_proj', layer: l, shape: [h, f] },
      { name: `${p}.input_layernorm.weight`, kind: 'norm', layer: l, shape: [h] },
      { name: `${p}.post_attention_layernorm.weight`, kind: 'norm', layer: l, shape: [h] },
    );
  }
  out.push(
    { name: 'model.norm.weight', kind: 'norm', layer: null, shape: [h] },
    { name: 'lm_head.weight', kind: 'lm_head', layer: null, shape: [v, h] },
  );
  return out;
}

const TORCH_DTYPE: Partial<Record<DType, string>> = {
  BF16: 'bfloat16',
  F16: 'float16',
  F32: 'float32',
  F64: 'float64',
};

/** config.json in Hugging Face LlamaConfig form. */
export function llamaConfig(shape: SynthShape, dtype: DType): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.hiddenSize / shape.numHeads,
    vocab_size: shape.vocabSize,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    use_cache: true,
    torch_dtype: TORCH_DTYPE[dtype],
  };
}
