/**
 * The `charlm` task: a character language model in Llama's shape (Touvron et al. 2023),
 * trained on English prose and fine-tuned on a Python-like program (src/train/texts.ts).
 *
 * Tensor names are Llama's in Hugging Face transformers, PyTorch layout:
 *   model.embed_tokens.weight [vocab, hidden]
 *   model.layers.{i}.input_layernorm.weight [hidden]
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight [hidden, hidden]
 *   model.layers.{i}.post_attention_layernorm.weight [hidden]
 *   model.layers.{i}.mlp.{gate,up}_proj.weight [intermediate, hidden], mlp.down_proj.weight [hidden, intermediate]
 *   model.norm.weight [hidden], lm_head.weight [vocab, hidden]
 * Rotary embeddings follow transformers' rotate_half convention, so the weights load
 * into LlamaForCausalLM as they are.
 */
import * as tf from '@tensorflow/tfjs';
import { FormatError } from '../errors.js';
import { matMulNN, matMulNT } from './ops.js';
import type { Batch, Split, TaskData, TaskSpec } from './task.js';
import { CODE, PROSE } from './texts.js';

export interface CharLmConfig {
  /** The characters, in token-id order. */
  vocab: string;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  /** Characters of context per example (max_position_embeddings). */
  context: number;
  ropeTheta: number;
  rmsNormEps: number;
  /** Cap on training windows per split (tests); all of them when absent. */
  maxTrain?: number;
}

/** Head width assumed when a config has to be inferred from the weights alone. */
const DEFAULT_HEAD_DIM = 16;
/** The tail of each text held out for testing. */
const TEST_FRACTION = 0.15;
/** Training windows start every TRAIN_STRIDE characters (overlapping windows, more examples per text). */
const TRAIN_STRIDE = 4;
/** Additive mask above the diagonal: exp(−1e9) is exactly 0 in f32. */
const MASKED = -1e9;

/** Every character of the built-in texts, sorted: the token ids. */
export const CHARLM_VOCAB = [...new Set(PROSE + CODE)].sort().join('');

export const charlmTask: TaskSpec<CharLmConfig> = {
  name: 'charlm',
  metric: { name: 'bitsPerChar', higherIsBetter: false },
  defaults: {
    epochs: 3,
    batchSize: 32,
    learningRate: { base: 3e-3, full: 1e-3, lora: 3e-3 },
    alpha: 16,
    ranks: [1, 4, 16],
  },
  defaultConfig: () => ({
    vocab: CHARLM_VOCAB,
    hidden: 64,
    intermediate: 176,
    layers: 2,
    heads: 4,
    context: 32,
    ropeTheta: 10_000,
    rmsNormEps: 1e-5,
  }),

  shapes({ vocab, hidden, intermediate, layers }) {
    const v = vocab.length;
    const out: [string, number[]][] = [['model.embed_tokens.weight', [v, hidden]]];
    for (let i = 0; i < layers; i++) {
      const p = `model.layers.${i}`;
      out.push([`${p}.input_layernorm.weight`, [hidden]]);
      for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
        out.push([`${p}.self_attn.${m}.weight`, [hidden, hidden]]);
      out.push([`${p}.post_attention_layernorm.weight`, [hidden]]);
      out.push([`${p}.mlp.gate_proj.weight`, [intermediate, hidden]]);
      out.push([`${p}.mlp.up_proj.weight`, [intermediate, hidden]]);
      out.push([`${p}.mlp.down_proj.weight`, [hidden, intermediate]]);
    }
    out.push(['model.norm.weight', [hidden]], ['lm_head.weight', [v, hidden]]);
    return out;
  },

  init(config, rng) {
    // transformers' LlamaPreTrainedModel: normal(0, 0.02) for matrices, ones for RMSNorm.
    const weights = new Map<string, Float32Array>();
    for (const [name, shape] of charlmTask.shapes(config)) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (shape.length === 1) data.fill(1);
      else for (let i = 0; i < data.length; i++) data[i] = 0.02 * rng.normal();
      weights.set(name, data);
    }
    return weights;
  },

  loraTargets({ layers }) {
    const out: string[] = [];
    for (let i = 0; i < layers; i++) {
      for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.push(`model.layers.${i}.self_attn.${m}`);
      for (const m of ['gate_proj', 'up_proj', 'down_proj']) out.push(`model.layers.${i}.mlp.${m}`);
    }
    return out;
  },

  forward(config, params, inputs) {
    const [n, t] = inputs.shape as [number, number];
    const { vocab, hidden, heads, layers, rmsNormEps } = config;
    const headDim = hidden / heads;
    const ids = tf.reshape(inputs, [n * t]) as tf.Tensor1D;
    // A one-hot product rather than gather: the wasm backend has no kernel for gather's gradient.
    let x = matMulNN(tf.oneHot(ids, vocab.length).toFloat() as tf.Tensor2D, params.get('model.embed_tokens.weight'), {
      constA: true,
    });
    const { cos, sin } = rotary(t, headDim, config.ropeTheta);
    const mask = causalMask(t);
    const splitHeads = (y: tf.Tensor2D) => tf.transpose(tf.reshape(y, [n, t, heads, headDim]), [0, 2, 1, 3]);
    for (let i = 0; i < layers; i++) {
      const p = `model.layers.${i}`;
      const h = rmsNorm(x, params.get(`${p}.input_layernorm.weight`), rmsNormEps);
      const q = applyRotary(splitHeads(params.linear(`${p}.self_attn.q_proj`, h)), cos, sin);
      const k = applyRotary(splitHeads(params.linear(`${p}.self_attn.k_proj`, h)), cos, sin);
      const v = splitHeads(params.linear(`${p}.self_attn.v_proj`, h));
      const scores = tf.add(tf.mul(matMulNT(q, k), 1 / Math.sqrt(headDim)), mask);
      const attended = matMulNN(tf.softmax(scores), v);
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [n * t, hidden]) as tf.Tensor2D;
      x = tf.add(x, params.linear(`${p}.self_attn.o_proj`, merged));
      const h2 = rmsNorm(x, params.get(`${p}.post_attention_layernorm.weight`), rmsNormEps);
      const gate = params.linear(`${p}.mlp.gate_proj`, h2);
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), params.linear(`${p}.mlp.up_proj`, h2)) as tf.Tensor2D;
      x = tf.add(x, params.linear(`${p}.mlp.down_proj`, act));
    }
    return params.linear('lm_head', rmsNorm(x, params.get('model.norm.weight'), rmsNormEps));
  },

  async data(config) {
    const source = splitText(PROSE, config);
    const target = splitText(CODE, config);
    return { source, target } satisfies TaskData;
  },

  configJson: (c) => ({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocab.length,
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.heads,
    head_dim: c.hidden / c.heads,
    max_position_embeddings: c.context,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    deltarank_task: 'charlm',
    deltarank_vocab: c.vocab,
  }),

  configFromJson(json, file) {
    const num = (key: string): number => {
      const v = json[key];
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new FormatError(`${file}: "${key}" must be a number, got ${JSON.stringify(v)}`);
      return v;
    };
    if (json['deltarank_task'] !== 'charlm')
      throw new FormatError(
        `${file}: not a charlm model config ("deltarank_task" is ${JSON.stringify(json['deltarank_task'])})`,
      );
    const vocab = json['deltarank_vocab'];
    if (typeof vocab !== 'string' || vocab.length !== num('vocab_size')) {
      throw new FormatError(`${file}: "deltarank_vocab" must be a string of vocab_size characters`);
    }
    return {
      vocab,
      hidden: num('hidden_size'),
      intermediate: num('intermediate_size'),
      layers: num('num_hidden_layers'),
      heads: num('num_attention_heads'),
      context: num('max_position_embeddings'),
      ropeTheta: num('rope_theta'),
      rmsNormEps: num('rms_norm_eps'),
    };
  },

  inferConfig(weights) {
    const embed = weights.get('model.embed_tokens.weight');
    const norm = weights.get('model.norm.weight');
    if (!embed || !norm)
      throw new FormatError('weights: no "model.embed_tokens.weight" or "model.norm.weight", not a charlm model');
    const hidden = norm.length;
    const defaults = charlmTask.defaultConfig();
    if (embed.length !== defaults.vocab.length * hidden) {
      throw new FormatError(
        `weights: embed_tokens has ${embed.length / hidden} rows, the built-in vocabulary ${defaults.vocab.length}`,
      );
    }
    let layers = 0;
    while (weights.has(`model.layers.${layers}.input_layernorm.weight`)) layers++;
    const gate = weights.get('model.layers.0.mlp.gate_proj.weight');
    return {
      ...defaults,
      hidden,
      layers,
      intermediate: gate ? gate.length / hidden : defaults.intermediate,
      heads: Math.max(1, Math.round(hidden / DEFAULT_HEAD_DIM)),
    };
  },

  summarize: (lossSum, correct, n) => {
    const loss = lossSum / n;
    return {
      loss,
      metric: loss / Math.LN2,
      bitsPerChar: loss / Math.LN2,
      perplexity: Math.exp(loss),
      accuracy: correct / n,
    };
  },
};

/** Training windows (overlapping, every TRAIN_STRIDE characters) from the head of `text`, test windows (disjoint) from its tail. */
function splitText(text: string, config: CharLmConfig): { train: Split; test: Split } {
  const index = new Map([...config.vocab].map((c, i) => [c, i]));
  const ids = Int32Array.from(text, (c) => {
    const id = index.get(c);
    if (id === undefined) throw new FormatError(`charlm: character ${JSON.stringify(c)} is not in the vocabulary`);
    return id;
  });
  const cut = Math.round(ids.length * (1 - TEST_FRACTION));
  const t = config.context;
  const starts = (from: number, to: number, stride: number): Int32Array => {
    const out: number[] = [];
    for (let s = from; s + t + 1 <= to; s += stride) out.push(s);
    return Int32Array.from(out);
  };
  const train = starts(0, cut, TRAIN_STRIDE);
  return {
    train: windowSplit(ids, config.maxTrain !== undefined ? train.subarray(0, config.maxTrain) : train, t),
    test: windowSplit(ids, starts(cut, ids.length, t), t),
  };
}

/** Windows of `t` input characters at `starts`; each predicts the next character at every position. */
function windowSplit(ids: Int32Array, starts: Int32Array, t: number): Split {
  return {
    size: starts.length,
    batch(indices): Batch {
      const n = indices.length;
      const inputs = new Int32Array(n * t);
      const labels = new Int32Array(n * t);
      for (let k = 0; k < n; k++) {
        const s = starts[indices[k]!]!;
        inputs.set(ids.subarray(s, s + t), k * t);
        labels.set(ids.subarray(s + 1, s + t + 1), k * t);
      }
      return { inputs, inputShape: [n, t], labels, count: n };
    },
  };
}

/** x · rsqrt(mean(x²) + ε) · w over the last axis (Zhang & Sennrich 2019). */
function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
}

/** cos and sin tables [t, headDim], frequencies θ^(−2i/d) repeated for both halves as transformers lays them out. */
function rotary(t: number, headDim: number, theta: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(t * headDim);
  const sin = new Float32Array(t * headDim);
  for (let pos = 0; pos < t; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * theta ** (-(2 * i) / headDim);
      cos[pos * headDim + i] = cos[pos * headDim + i + half] = Math.cos(angle);
      sin[pos * headDim + i] = sin[pos * headDim + i + half] = Math.sin(angle);
    }
  }
  return { cos: tf.tensor2d(cos, [t, headDim]), sin: tf.tensor2d(sin, [t, headDim]) };
}

/** x·cos + rotate_half(x)·sin on [n, heads, t, headDim], rotate_half(x) = [−x₂, x₁]. */
function applyRotary(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor {
  const half = x.shape[3]! / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2!), x1!], 3), sin));
}

/** [t, t]: 0 on and below the diagonal, MASKED above, so position i attends to 0…i. */
function causalMask(t: number): tf.Tensor2D {
  const m = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = MASKED;
  return tf.tensor2d(m, [t, t]);
}
