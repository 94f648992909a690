/**
 * Fused expert parameters over checkpoints saved per expert. transformers 5 holds Mixtral's and
 * Qwen-MoE's experts as 3-D parameters (`mlp.experts.gate_up_proj` [E, 2I, H], `down_proj`
 * [E, H, I]) — what PEFT's target_parameters adapts — but save_pretrained writes them back in
 * the original layout (`block_sparse_moe.experts.<e>.w1.weight` [I, H], …), undoing its
 * conversion mapping (transformers/conversion_mapping.py: per expert, gate_up = cat(w1, w3) along
 * the output rows). This maps one onto the other, from io's layout table.
 */
import type { Checkpoint, ModelLayout } from '../io/index.js';

/** One on-disk tensor holding rows of a fused expert parameter's expert slice. */
export interface ExpertPart {
  /** The on-disk tensor, [rows, in]. */
  tensor: string;
  expert: number;
  /** Its first row within the expert's [out, in] slice of the fused parameter. */
  rowOffset: number;
  rows: number;
}

export interface FusedParam {
  /** The fused parameter's name in transformers 5, e.g. "model.layers.0.mlp.experts.gate_up_proj". */
  name: string;
  /** [experts, out, in]. */
  shape: [number, number, number];
  parts: ExpertPart[];
}

/** transformers' WeightRenaming for Mixtral-family blocks (".block_sparse_moe." → ".mlp."). */
function fusedOwner(block: string): string {
  return `${block.replace(/(^|\.)block_sparse_moe$/, '$1mlp')}.experts`;
}

/**
 * The fused expert parameters a per-expert checkpoint stands for, by fused name; empty where the
 * layout has no fused experts. Experts missing a part, or parts of unequal inputs, leave that
 * parameter out (it cannot be assembled).
 */
export function fusedParams(layout: ModelLayout): Map<string, FusedParam> {
  const out = new Map<string, FusedParam>();
  const fused = layout.fusedExperts?.fused;
  if (!fused) return out;
  const byBlock = new Map<string, Map<string, { rows: number; cols: number; name: string }>>();
  for (const t of layout.tensors) {
    if (t.role !== 'expert' || !t.expert || t.outFeatures === undefined || t.inFeatures === undefined) continue;
    const key = `${t.expert.block}|${t.expert.index}`;
    const parts = byBlock.get(key) ?? new Map();
    parts.set(t.expert.proj, { rows: t.outFeatures, cols: t.inFeatures, name: t.name });
    byBlock.set(key, parts);
  }
  const blocks = new Set([...byBlock.keys()].map((k) => k.slice(0, k.lastIndexOf('|'))));
  for (const block of blocks) {
    for (const [param, projs] of Object.entries(fused)) {
      const parts: ExpertPart[] = [];
      let shape: [number, number, number] | null = null;
      let ok = true;
      for (let e = 0; ok; e++) {
        const have = byBlock.get(`${block}|${e}`);
        if (!have) break;
        let offset = 0;
        let cols = -1;
        for (const proj of projs) {
          const p = have.get(proj);
          if (!p || (cols >= 0 && p.cols !== cols)) {
            ok = false;
            break;
          }
          cols = p.cols;
          parts.push({ tensor: p.name, expert: e, rowOffset: offset, rows: p.rows });
          offset += p.rows;
        }
        if (!ok) break;
        if (shape && (shape[1] !== offset || shape[2] !== cols)) ok = false;
        shape = [e + 1, offset, cols];
      }
      if (ok && shape)
        out.set(`${fusedOwner(block)}.${param}`, { name: `${fusedOwner(block)}.${param}`, shape, parts });
    }
  }
  return out;
}

/** A base tensor's shape by name, the fused parameters of a per-expert checkpoint included. */
export function shapeLookup(
  base: Checkpoint,
  fused: Map<string, FusedParam>,
): (name: string) => readonly number[] | undefined {
  return (name) => (base.has(name) ? base.info(name).shape : fused.get(name)?.shape);
}
