/**
 * What kind of module a checkpoint tensor belongs to, from its Hugging Face name.
 */

export type ModuleKind = 'linear' | 'embedding' | 'lm_head' | 'norm' | 'bias' | 'other';

const EMBEDDING = /(^|\.)(embed_tokens|wte|word_embeddings|embed_in)\.weight$/;
const LM_HEAD = /(^|\.)(lm_head|embed_out)\.weight$/;
const NORM = /(norm|ln_\w+|layernorm)[^.]*\.weight$/i;

/** Kind of the tensor `name` of shape `shape`. */
export function moduleKind(name: string, shape: number[]): ModuleKind {
  if (name.endsWith('.bias')) return 'bias';
  if (shape.length === 2 && EMBEDDING.test(name)) return 'embedding';
  if (shape.length === 2 && LM_HEAD.test(name)) return 'lm_head';
  if (shape.length === 2 && name.endsWith('.weight')) return 'linear';
  if (shape.length === 1 && NORM.test(name)) return 'norm';
  return 'other';
}

/** "model.layers.0.self_attn.q_proj.weight" → "model.layers.0.self_attn.q_proj". */
export function modulePath(tensorName: string): string {
  return tensorName.replace(/\.(weight|bias)$/, '');
}
