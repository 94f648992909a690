/**
 * The forward pass of a decoder-only checkpoint, read layer by layer: peak memory is one
 * layer's weights per checkpoint (plus the embedding and lm_head matrices at the ends) and the
 * activations. Several variants — a base, its fine-tune, the base with an adapter — run in
 * lockstep, so each layer is read once per checkpoint however many variants use it, and
 * per-layer comparisons see every variant's hidden states side by side.
 */

import { FormatError } from '../errors.js';
import type { Checkpoint } from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import type { ModelArch } from './config.js';
import { type AppliedAdapter, applyLinear, type LinearWeights, mergedBias, mergedWeight } from './linear.js';
import { addInPlace, causalAttention, gatedActivation, rmsNorm, sliceColumns } from './ops.js';
import { applyRope, type RopeTables, ropeTables } from './rope.js';

/** A linear module's output for input x [tokens, in]; `fallback` is what the variant computes by default. */
export type LinearHook = (ctx: {
  layer: number;
  module: string;
  x: Matrix;
  weights: () => Promise<LinearWeights>;
}) => Promise<Matrix>;

/** One model to run: a checkpoint, optionally with an adapter (unmerged, or merged with `merge`). */
export interface ForwardVariant {
  checkpoint: Checkpoint;
  adapter?: AppliedAdapter;
  merge?: boolean;
  /** Replaces the linear modules of the decoder layers (calibration reads their inputs here). */
  linear?: LinearHook;
}

export interface ForwardOptions {
  /** Called after each layer with every variant's hidden state [tokens, hidden] (the residual stream). */
  onLayer?: (layer: number, hidden: Matrix[]) => void | Promise<void>;
  onProgress?: (p: { index: number; total: number; name: string }) => void;
  /**
   * Logit lens: after each layer, every variant's logits [rows.length, vocab] for these token rows
   * (final norm and head applied to the residual stream there). Holds the head matrices from the start.
   */
  lens?: { rows: number[]; onLens: (layer: number, logits: Matrix[]) => void | Promise<void> };
}

/** What a run hands back: the final-normed hidden states and a way to get logits, block by block. */
export interface DecoderRun {
  /** Per variant [tokens, hidden], after the final norm. */
  hidden: Matrix[];
  /** Row starts of the sequences, plus the token count at the end. */
  starts: number[];
  /** Logits [rows1 − rows0, vocab] of variant v for tokens rows0..rows1 (soft-capped where the model does). */
  logits(v: number, rows0: number, rows1: number): Promise<Matrix>;
  /** Drop the lm_head matrices held for `logits`. */
  release(): void;
}

/** Module paths of a layer's projections, in the order the forward consumes them. */
export function layerModules(
  arch: ModelArch,
  layer: number,
): { qkv: string[]; o: string; gateUp: string[]; down: string } {
  const p = `model.layers.${layer}.`;
  return arch.fused
    ? {
        qkv: [`${p}self_attn.qkv_proj`],
        o: `${p}self_attn.o_proj`,
        gateUp: [`${p}mlp.gate_up_proj`],
        down: `${p}mlp.down_proj`,
      }
    : {
        qkv: [`${p}self_attn.q_proj`, `${p}self_attn.k_proj`, `${p}self_attn.v_proj`],
        o: `${p}self_attn.o_proj`,
        gateUp: [`${p}mlp.gate_proj`, `${p}mlp.up_proj`],
        down: `${p}mlp.down_proj`,
      };
}

/** Tensors read once per checkpoint, dropped at the end of each layer. */
class LayerCache {
  private held = new Map<Checkpoint, Map<string, Promise<Float32Array>>>();
  get(ckpt: Checkpoint, name: string): Promise<Float32Array> {
    let m = this.held.get(ckpt);
    if (!m) this.held.set(ckpt, (m = new Map()));
    let t = m.get(name);
    if (!t) m.set(name, (t = ckpt.readFloat32(name)));
    return t;
  }
  clear(): void {
    this.held.clear();
  }
}

/**
 * Run `variants` over `sequences` (token ids, each its own causal context, positions from 0).
 * Cost ≈ 2 · parameters · tokens flops per variant, plus attention.
 * @example
 * const run = await runDecoder(arch, [{ checkpoint: base }], [[1, 15043, 3186]]);
 * const logits = await run.logits(0, 0, 3); run.release();
 */
export async function runDecoder(
  arch: ModelArch,
  variants: ForwardVariant[],
  sequences: number[][],
  opts: ForwardOptions = {},
): Promise<DecoderRun> {
  const starts = [0];
  for (const s of sequences) starts.push(starts[starts.length - 1]! + s.length);
  const N = starts[starts.length - 1]!;
  const positions = new Int32Array(N);
  const tokens = new Int32Array(N);
  let maxLen = 0;
  sequences.forEach((s, i) => {
    maxLen = Math.max(maxLen, s.length);
    for (let t = 0; t < s.length; t++) {
      const id = s[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= arch.vocabSize)
        throw new FormatError(
          `token ${id} (sequence ${i}, position ${t}) is outside the vocabulary [0, ${arch.vocabSize})`,
        );
      positions[starts[i]! + t] = t;
      tokens[starts[i]! + t] = id;
    }
  });
  const D = arch.hiddenSize;
  const cache = new LayerCache();
  const weight = async (v: ForwardVariant, name: string): Promise<Float32Array> =>
    v.adapter?.full.get(name) ?? cache.get(v.checkpoint, name);

  // Embeddings: gather rows, add an embedding LoRA's rows, scale (Gemma).
  const hidden: Matrix[] = [];
  for (const v of variants) {
    const table = await weight(v, 'model.embed_tokens.weight');
    const h = new Float32Array(N * D);
    for (let t = 0; t < N; t++) h.set(table.subarray(tokens[t]! * D, tokens[t]! * D + D), t * D);
    const l = v.adapter?.lora.get('model.embed_tokens');
    if (l) {
      // ΔE = s·(B·A)ᵀ: row `id` is s·B·A[:, id], A [r, vocab], B [dim, r].
      const r = l.a.rows;
      for (let t = 0; t < N; t++) {
        for (let j = 0; j < r; j++) {
          const c = l.scale * l.a.data[j * l.a.cols + tokens[t]!]!;
          if (c === 0) continue;
          for (let i = 0; i < D; i++) h[t * D + i]! += c * l.b.data[i * r + j]!;
        }
      }
    }
    if (arch.embedScale !== 1) for (let i = 0; i < h.length; i++) h[i] = Math.fround(h[i]! * arch.embedScale);
    hidden.push({ rows: N, cols: D, data: h });
  }
  cache.clear();

  const heads = new Map<number, Promise<LinearWeights>>();
  const raw = new Map<Checkpoint, Promise<Float32Array>>();
  const headOf = (vi: number): Promise<LinearWeights> => {
    let h = heads.get(vi);
    if (!h) {
      const v = variants[vi]!;
      h = (async () => {
        const name =
          arch.tiedEmbeddings || !v.checkpoint.has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
        if (!arch.tiedEmbeddings && name !== 'lm_head.weight')
          throw new FormatError(`${v.checkpoint.path}: no lm_head.weight and tie_word_embeddings is false`);
        // Variants on one checkpoint share its matrix (a merged head is a copy of its own).
        let shared = raw.get(v.checkpoint);
        if (!shared && !v.adapter?.full.has(name)) raw.set(v.checkpoint, (shared = v.checkpoint.readFloat32(name)));
        const data = v.adapter?.full.get(name) ?? (await shared!);
        const w = { rows: arch.vocabSize, cols: D, data };
        const lora = v.adapter?.lora.get('lm_head');
        if (lora && v.merge) return { w: await mergedWeight(w, lora) };
        return { w, lora };
      })();
      heads.set(vi, h);
    }
    return h;
  };
  /** Logits of rows of a [tokens, hidden] state already final-normed: soft-capped as the model does. */
  const project = async (vi: number, x: Matrix): Promise<Matrix> => {
    const y = await applyLinear(await headOf(vi), x);
    const cap = arch.finalSoftcap;
    if (cap !== null) for (let i = 0; i < y.data.length; i++) y.data[i] = Math.tanh(y.data[i]! / cap) * cap;
    return y;
  };

  const ropeCache = new Map<string, RopeTables>();
  for (let l = 0; l < arch.numLayers; l++) {
    const la = arch.layers[l]!;
    const key = JSON.stringify(la.rope);
    let rope = ropeCache.get(key);
    if (!rope) ropeCache.set(key, (rope = ropeTables(la.rope, maxLen)));
    for (let vi = 0; vi < variants.length; vi++) {
      hidden[vi] = await decoderLayer(arch, l, variants[vi]!, hidden[vi]!, { positions, starts, rope, cache, weight });
    }
    cache.clear();
    await opts.onLayer?.(l, hidden);
    if (opts.lens) {
      // Logit lens: the final norm and head applied to a few tokens' residual stream after this layer.
      const rows = opts.lens.rows;
      const lens: Matrix[] = [];
      for (let vi = 0; vi < variants.length; vi++) {
        const x = new Float32Array(rows.length * D);
        rows.forEach((r, k) => x.set(hidden[vi]!.data.subarray(r * D, r * D + D), k * D));
        const w = await weight(variants[vi]!, 'model.norm.weight');
        lens.push(
          await project(vi, { rows: rows.length, cols: D, data: rmsNorm(x, D, w, arch.rmsNormEps, arch.normPlusOne) }),
        );
      }
      cache.clear();
      await opts.lens.onLens(l, lens);
    }
    opts.onProgress?.({ index: l + 1, total: arch.numLayers, name: `layer ${l}` });
  }

  const normed: Matrix[] = [];
  for (let vi = 0; vi < variants.length; vi++) {
    const w = await weight(variants[vi]!, 'model.norm.weight');
    normed.push({ rows: N, cols: D, data: rmsNorm(hidden[vi]!.data, D, w, arch.rmsNormEps, arch.normPlusOne) });
  }
  cache.clear();
  return {
    hidden: normed,
    starts,
    logits(vi, r0, r1) {
      return project(vi, { rows: r1 - r0, cols: D, data: normed[vi]!.data.subarray(r0 * D, r1 * D) });
    },
    release() {
      heads.clear();
      raw.clear();
    },
  };
}

interface LayerContext {
  positions: Int32Array;
  starts: number[];
  rope: RopeTables;
  cache: LayerCache;
  weight: (v: ForwardVariant, name: string) => Promise<Float32Array>;
}

/** One decoder layer of one variant: a new residual stream [tokens, hidden]. */
async function decoderLayer(
  arch: ModelArch,
  l: number,
  v: ForwardVariant,
  h: Matrix,
  ctx: LayerContext,
): Promise<Matrix> {
  const D = arch.hiddenSize;
  const p = `model.layers.${l}.`;
  const eps = arch.rmsNormEps;
  const norm = async (x: Float32Array, name: string, width = D) =>
    rmsNorm(x, width, await ctx.weight(v, p + name + '.weight'), eps, arch.normPlusOne);
  const weights = async (module: string, rows: number, cols: number): Promise<LinearWeights> => {
    const w = { rows, cols, data: await ctx.weight(v, module + '.weight') };
    if (w.data.length !== rows * cols)
      throw new FormatError(
        `${v.checkpoint.path}: ${module}.weight holds ${w.data.length} values, expected [${rows}, ${cols}]`,
      );
    const bias =
      v.checkpoint.has(module + '.bias') || v.adapter?.full.has(module + '.bias')
        ? await ctx.weight(v, module + '.bias')
        : undefined;
    const lora = v.adapter?.lora.get(module);
    if (lora && v.merge) return { w: await mergedWeight(w, lora), bias: mergedBias(bias, lora) };
    return { w, bias, lora };
  };
  const linear = async (module: string, x: Matrix, rows: number): Promise<Matrix> => {
    const get = () => weights(module, rows, x.cols);
    return v.linear ? v.linear({ layer: l, module, x, weights: get }) : applyLinear(await get(), x);
  };
  const mods = layerModules(arch, l);
  const N = h.rows;
  const H = arch.numHeads;
  const Hkv = arch.numKvHeads;
  const d = arch.headDim;

  const x = { rows: N, cols: D, data: await norm(h.data, 'input_layernorm') };
  let q: Float32Array;
  let k: Float32Array;
  let vv: Float32Array;
  if (arch.fused) {
    const qkv = await linear(mods.qkv[0]!, x, (H + 2 * Hkv) * d);
    q = sliceColumns(qkv, 0, H * d);
    k = sliceColumns(qkv, H * d, Hkv * d);
    vv = sliceColumns(qkv, (H + Hkv) * d, Hkv * d);
  } else {
    q = (await linear(mods.qkv[0]!, x, H * d)).data;
    k = (await linear(mods.qkv[1]!, x, Hkv * d)).data;
    vv = (await linear(mods.qkv[2]!, x, Hkv * d)).data;
  }
  if (arch.qkNorm) {
    q = await norm(q, 'self_attn.q_norm', d);
    k = await norm(k, 'self_attn.k_norm', d);
  }
  applyRope(q, H, d, ctx.positions, ctx.rope);
  applyRope(k, Hkv, d, ctx.positions, ctx.rope);
  const la = arch.layers[l]!;
  const attn = await causalAttention(q, k, vv, ctx.starts, {
    numHeads: H,
    numKvHeads: Hkv,
    headDim: d,
    scale: arch.attnScale,
    softcap: arch.attnSoftcap,
    window: la.slidingWindow,
  });
  let o = (await linear(mods.o, { rows: N, cols: H * d, data: attn }, D)).data;
  if (arch.sandwichNorms) o = await norm(o, 'post_attention_layernorm');
  const mid = addInPlace(o, h.data);

  const y = {
    rows: N,
    cols: D,
    data: await norm(mid, arch.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'),
  };
  const I = arch.intermediateSize;
  let gate: Float32Array;
  let up: Float32Array;
  if (arch.fused) {
    const gu = await linear(mods.gateUp[0]!, y, 2 * I);
    gate = sliceColumns(gu, 0, I);
    up = sliceColumns(gu, I, I);
  } else {
    gate = (await linear(mods.gateUp[0]!, y, I)).data;
    up = (await linear(mods.gateUp[1]!, y, I)).data;
  }
  const act = gatedActivation(gate, up, arch.activation);
  let down = (await linear(mods.down, { rows: N, cols: I, data: act }, D)).data;
  if (arch.sandwichNorms) down = await norm(down, 'post_feedforward_layernorm');
  return { rows: N, cols: D, data: addInPlace(down, mid) };
}
