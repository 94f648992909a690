/**
 * Where a tensor sits in a model, read from its name alone: the module type (a heatmap
 * column) and the layer index (a heatmap row).
 */

/** Where a tensor sits: `layer` is null outside the repeated blocks (embeddings, lm_head, a plain MLP's fc1). */
export interface TensorPlace {
  moduleType: string;
  layer: number | null;
}

/** Hugging Face module names with a short type; any other module is its own type, by its last name component. */
const KNOWN_TYPES: Record<string, string> = {
  q_proj: 'q',
  k_proj: 'k',
  v_proj: 'v',
  o_proj: 'o',
  gate_proj: 'gate',
  up_proj: 'up',
  down_proj: 'down',
  embed_tokens: 'embeddings',
  lm_head: 'lm_head',
};

/** Column order of the known types; other types follow in order of first appearance. */
export const MODULE_TYPE_ORDER: readonly string[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'embeddings', 'lm_head'];

/** Llama/Mistral `layers.N`, GPT-2 `h.N`, BERT `layer.N`, ViT/Mamba `blocks.N`. */
const LAYER_RE = /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)(?=\.|$)/;

/** Trailing parameter names that are not module names. */
const PARAM_SUFFIX_RE = /\.(?:weight|lora_embedding_[AB])$/;

/**
 * Module type and layer of a tensor name.
 *
 * @example
 * tensorPlace('model.layers.3.self_attn.q_proj.weight') // { moduleType: 'q', layer: 3 }
 * tensorPlace('model.layers.0.fc.weight')               // { moduleType: 'fc', layer: 0 }
 * tensorPlace('fc2.weight')                             // { moduleType: 'fc2', layer: null }
 */
export function tensorPlace(name: string): TensorPlace {
  const match = LAYER_RE.exec(name);
  const layer = match ? Number(match[1]) : null;
  const stem = name.replace(PARAM_SUFFIX_RE, '');
  const parts = stem.split('.');
  const last = parts[parts.length - 1]!;
  if (/^\d+$/.test(last) && parts.length > 1) {
    // An index as the last component (nn.Sequential's "net.2.weight", or "layers.3.weight" itself):
    // the parent names the module, and the index too unless it is the layer index already.
    const parent = parts[parts.length - 2]!;
    const endsWithLayer = match !== null && match.index + match[0].length === stem.length;
    return { moduleType: endsWithLayer ? parent : `${parent}.${last}`, layer };
  }
  const expert = EXPERT_RE.exec(stem);
  // One column per expert and projection: experts share their names, and a cell holds one tensor.
  if (expert) return { moduleType: `e${expert[1]}.${expert[2]}`, layer };
  if (AMBIGUOUS.has(last) && match) {
    // GPT-2's attn.c_proj and mlp.c_proj, BERT's attention.output.dense, intermediate.dense and output.dense:
    // one name, several modules of a layer; the path inside the layer tells them apart.
    const inside = stem.slice(match.index + match[0].length).replace(/^\./, '');
    if (inside.includes('.')) return { moduleType: inside, layer };
  }
  return { moduleType: KNOWN_TYPES[last] ?? last, layer };
}

/** A MoE expert's projection: "….experts.3.w1" (Mixtral), "….experts.3.gate_proj" (Qwen-MoE). */
const EXPERT_RE = /\.experts\.(\d+)\.(\w+)$/;

/** Module names that recur within one layer for different modules. */
const AMBIGUOUS = new Set(['c_proj', 'dense']);

/** Module types in column order: the known ones first, in MODULE_TYPE_ORDER, then the rest as first seen. */
export function orderModuleTypes(types: Iterable<string>): string[] {
  const seen = [...new Set(types)];
  const known = MODULE_TYPE_ORDER.filter((t) => seen.includes(t));
  return [...known, ...seen.filter((t) => !MODULE_TYPE_ORDER.includes(t))];
}
