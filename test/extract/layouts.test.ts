/**
 * extract on small synthetic checkpoints of each layout (GPT-2 Conv1D, BERT classifier, Qwen2 biases,
 * tied embeddings, Mixtral experts): the planted ΔW is of rank 2, so at rank ≥ 2 the factors as written
 * must give ΔW back, in the orientation the layout stores.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { extractAdapter } from '../../src/extract/index.js';
import { openCheckpoint, writeSafetensors } from '../../src/io/index.js';
import { coverageHtml } from '../../src/report/extraction-sections.js';
import { expectAllClose } from '../helpers/close.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-layouts-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A seeded uniform generator (mulberry32): the fixtures are the same every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

interface Spec {
  name: string;
  shape: number[];
  /** Left unchanged in the tuned side. */
  same?: boolean;
  /** Only on the tuned side. */
  tunedOnly?: boolean;
  /** A resized tensor: the tuned side's shape (its values fresh, not base + ΔW). */
  tunedShape?: number[];
}

/** Base and tuned folders (config.json + model.safetensors); 2-D tensors change by a rank-2 ΔW, others by noise. Returns ΔW by name. */
async function writePair(
  name: string,
  config: Record<string, unknown>,
  specs: Spec[],
  seed = 1,
): Promise<{ base: string; tuned: string; delta: Map<string, Float32Array>; tunedValues: Map<string, Float32Array> }> {
  const r = rng(seed);
  const base = new Map<string, Float32Array>();
  const tuned = new Map<string, Float32Array>();
  const delta = new Map<string, Float32Array>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const w = Float32Array.from({ length: n }, () => r());
    const d = new Float32Array(n);
    if (!s.same) {
      if (s.shape.length === 2) {
        const [m, k] = s.shape as [number, number];
        for (let q = 0; q < 2; q++) {
          const u = Array.from({ length: m }, () => r());
          const v = Array.from({ length: k }, () => r());
          for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) d[i * k + j]! += 0.1 * u[i]! * v[j]!;
        }
      } else for (let i = 0; i < n; i++) d[i] = 0.05 * r();
    }
    const t = s.tunedShape
      ? Float32Array.from({ length: s.tunedShape.reduce((a, b) => a * b, 1) }, () => r())
      : w.map((x, i) => x + d[i]!);
    // ΔW as f32 computes it from the stored sides.
    delta.set(
      s.name,
      t.map((x, i) => x - w[i]!),
    );
    if (!s.tunedOnly) base.set(s.name, w);
    tuned.set(s.name, t);
  }
  const out = join(dir, name);
  for (const [side, values] of [
    ['base', base],
    ['tuned', tuned],
  ] as const) {
    await mkdir(join(out, side), { recursive: true });
    const names = [...values.keys()];
    const shapes = new Map(specs.map((s) => [s.name, side === 'tuned' && s.tunedShape ? s.tunedShape : s.shape]));
    await writeSafetensors(
      join(out, side, 'model.safetensors'),
      names.map((k) => ({ name: k, dtype: 'F32' as const, shape: shapes.get(k)! })),
      (_s, i) => values.get(names[i]!)!,
      { metadata: { format: 'pt' } },
    );
    await writeFile(join(out, side, 'config.json'), JSON.stringify(config));
  }
  return { base: join(out, 'base'), tuned: join(out, 'tuned'), delta, tunedValues: tuned };
}

async function readOut(out: string): Promise<{
  config: Record<string, any>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  doc: Record<string, any>;
}> {
  const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
  const doc = JSON.parse(await readFile(join(out, 'extraction.json'), 'utf8'));
  const ck = await openCheckpoint(join(out, 'adapter_model.safetensors'));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of ck.tensors) tensors.set(t.name, { shape: t.shape, data: await ck.readFloat32(t.name) });
  await ck.close();
  return { config, tensors, doc };
}

/** B·A [out, in] of row-major B [out, r] and A [r, in]. */
function product(b: Float32Array, a: Float32Array, out: number, r: number, inF: number): Float64Array {
  const p = new Float64Array(out * inF);
  for (let i = 0; i < out; i++)
    for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) p[i * inF + j]! += b[i * r + k]! * a[k * inF + j]!;
  return p;
}

function transpose(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
  return t;
}

const sq = (x: ArrayLike<number>) => Array.from(x).reduce((a, v) => a + v * v, 0);
const P = 'base_model.model.';

const gpt2Config = {
  model_type: 'gpt2',
  architectures: ['GPT2LMHeadModel'],
  tie_word_embeddings: true,
  vocab_size: 40,
};
const gpt2Specs: Spec[] = [
  { name: 'transformer.wte.weight', shape: [40, 12] },
  { name: 'transformer.wpe.weight', shape: [16, 12] },
  { name: 'transformer.h.0.ln_1.weight', shape: [12] },
  { name: 'transformer.h.0.ln_1.bias', shape: [12], same: true },
  { name: 'transformer.h.0.attn.c_attn.weight', shape: [12, 36] },
  { name: 'transformer.h.0.attn.c_attn.bias', shape: [36] },
  { name: 'transformer.h.0.attn.c_proj.weight', shape: [12, 12] },
  { name: 'transformer.h.0.attn.c_proj.bias', shape: [12], same: true },
  { name: 'transformer.h.0.attn.bias', shape: [1, 1, 16, 16], same: true },
  { name: 'transformer.ln_f.weight', shape: [12], same: true },
  { name: 'transformer.ln_f.bias', shape: [12] },
];

describe('extract: GPT-2 (Conv1D, tied wte, LayerNorm with bias)', () => {
  it('factors of ΔWᵀ with fan_in_fan_out, the tied head as PEFT saves it, norms whole, biases whole', async () => {
    const pair = await writePair('gpt2', gpt2Config, gpt2Specs, 2);
    const out = join(dir, 'gpt2-lora');
    await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 } });
    const { config, tensors, doc } = await readOut(out);
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.fan_in_fan_out, true);
    assert.equal(config.ensure_weight_tying, true);
    assert.ok(config.target_modules.includes('transformer.wte') && config.target_modules.includes('lm_head'));
    assert.equal(
      config.bias,
      'lora_only',
      'lora_bias cannot go with an embedding LoRA, so the tuned biases are saved whole',
    );
    assert.equal(config.lora_bias, undefined);

    // Conv1D weight stored [in, out] = (B·A)ᵀ, with A [r, in], B [out, r] as for a Linear.
    const a = tensors.get(`${P}transformer.h.0.attn.c_attn.lora_A.weight`)!;
    const b = tensors.get(`${P}transformer.h.0.attn.c_attn.lora_B.weight`)!;
    assert.deepEqual(
      [a.shape, b.shape],
      [
        [2, 12],
        [36, 2],
      ],
    );
    expectAllClose(
      transpose(product(b.data, a.data, 36, 2, 12), 36, 12),
      pair.delta.get('transformer.h.0.attn.c_attn.weight')!,
      { rtol: 1e-4, atol: 1e-6 },
    );
    // wpe is an embedding: ΔW [positions, dim] = (B·A)ᵀ with lora_embedding_A [r, 16].
    assert.deepEqual(tensors.get(`${P}transformer.wpe.lora_embedding_A`)!.shape, [2, 16]);
    // The tied head holds the embedding's factors transposed.
    const ea = tensors.get(`${P}transformer.wte.lora_embedding_A`)!;
    const eb = tensors.get(`${P}transformer.wte.lora_embedding_B`)!;
    expectAllClose(tensors.get(`${P}lm_head.lora_A.weight`)!.data, transpose(eb.data, 12, 2), { rtol: 0, atol: 0 });
    expectAllClose(tensors.get(`${P}lm_head.lora_B.weight`)!.data, transpose(ea.data, 2, 40), { rtol: 0, atol: 0 });

    // ln_1 changed in its weight only, and is saved with both tensors; ln_f changed in its bias only.
    assert.deepEqual([...config.modules_to_save].sort(), ['transformer.h.0.ln_1', 'transformer.ln_f']);
    assert.deepEqual(
      tensors.get(`${P}transformer.h.0.ln_1.bias`)!.data,
      pair.tunedValues.get('transformer.h.0.ln_1.bias'),
    );
    assert.ok(tensors.has(`${P}transformer.ln_f.weight`));
    // The changed c_attn bias travels whole under PEFT's bias: "lora_only" key; the unchanged c_proj bias does not.
    assert.deepEqual(
      tensors.get(`${P}transformer.h.0.attn.c_attn.base_layer.bias`)!.data,
      pair.tunedValues.get('transformer.h.0.attn.c_attn.bias'),
    );
    assert.ok(!tensors.has(`${P}transformer.h.0.attn.c_proj.base_layer.bias`));
    assert.match(doc.skipped.find((s: { name: string }) => s.name === 'transformer.h.0.attn.bias').reason, /buffer/);
    assert.deepEqual(doc.layout, {
      modelType: 'gpt2',
      family: 'gpt2',
      taskType: 'CAUSAL_LM',
      tiedEmbeddings: true,
      fanInFanOut: true,
      biases: 'whole',
      fusedExpertRank: null,
    });
    assert.ok(
      Math.abs(doc.coverage.reproduced - 1) < 1e-6,
      `all of ΔW is carried at rank 2: ${doc.coverage.reproduced}`,
    );
    assert.deepEqual(doc.coverage.leftOut, []);
  });

  it('--embeddings skip: lora_B.bias (lora_bias) on every Conv1D, and the embeddings listed as left out with their shares', async () => {
    const pair = await writePair('gpt2', gpt2Config, gpt2Specs, 2);
    const out = join(dir, 'gpt2-skip');
    const result = await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 }, embeddings: 'skip' });
    const { config, tensors, doc } = await readOut(out);
    // The report's model-level line names the share carried and each tensor left out with its share.
    const html = coverageHtml(result);
    assert.match(html, new RegExp(`reproduces ${(100 * result.coverage.reproduced).toFixed(1)}[0-9]* %`));
    for (const l of result.coverage.leftOut) assert.ok(html.includes(`<code>${l.name}</code>`), l.name);
    assert.match(html, /biases as lora_B\.bias/);
    assert.equal(config.lora_bias, true);
    assert.equal(config.bias, 'none');
    assert.equal(config.ensure_weight_tying, undefined);
    expectAllClose(
      tensors.get(`${P}transformer.h.0.attn.c_attn.lora_B.bias`)!.data,
      pair.delta.get('transformer.h.0.attn.c_attn.bias')!,
      { rtol: 0, atol: 0 },
    );
    assert.deepEqual(
      tensors.get(`${P}transformer.h.0.attn.c_proj.lora_B.bias`)!.data,
      new Float32Array(12),
      'an unchanged bias is written as zeros',
    );
    const changed = gpt2Specs.filter((s) => !s.same && s.name !== 'transformer.h.0.attn.bias');
    const total = changed.reduce((acc, s) => acc + sq(pair.delta.get(s.name)!), 0);
    assert.equal(doc.coverage.changedTensors, changed.length);
    assert.deepEqual(
      doc.coverage.leftOut.map((l: { name: string }) => l.name),
      ['transformer.wte.weight', 'transformer.wpe.weight'].sort(
        (x, y) => sq(pair.delta.get(y)!) - sq(pair.delta.get(x)!),
      ),
    );
    for (const l of doc.coverage.leftOut) assert.ok(Math.abs(l.share - sq(pair.delta.get(l.name)!) / total) < 1e-9);
    assert.ok(Math.abs(doc.coverage.reproduced + doc.coverage.truncated + doc.coverage.leftOutShare - 1) < 1e-9);
    assert.ok(Math.abs(doc.coverage.reproduced - (1 - doc.coverage.leftOutShare)) < 1e-6);
  });
});

describe('extract: BERT for sequence classification', () => {
  it('SEQ_CLS, a classifier only in the fine-tune saved whole, token-type embeddings whole, LayerNorms whole', async () => {
    const cfg = { model_type: 'bert', architectures: ['BertForSequenceClassification'], tie_word_embeddings: true };
    const pair = await writePair('bert', cfg, [
      { name: 'bert.embeddings.word_embeddings.weight', shape: [30, 8] },
      { name: 'bert.embeddings.token_type_embeddings.weight', shape: [2, 8] },
      { name: 'bert.embeddings.LayerNorm.weight', shape: [8] },
      { name: 'bert.embeddings.LayerNorm.bias', shape: [8] },
      { name: 'bert.encoder.layer.0.attention.self.query.weight', shape: [8, 8] },
      { name: 'bert.encoder.layer.0.attention.self.query.bias', shape: [8] },
      { name: 'classifier.weight', shape: [3, 8], tunedOnly: true },
      { name: 'classifier.bias', shape: [3], tunedOnly: true },
    ]);
    const out = join(dir, 'bert-lora');
    const r = await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 } });
    const { config, tensors } = await readOut(out);
    assert.equal(config.task_type, 'SEQ_CLS');
    assert.equal(config.ensure_weight_tying, undefined, 'a classifier ties nothing');
    assert.deepEqual([...config.modules_to_save].sort(), [
      'bert.embeddings.LayerNorm',
      'bert.embeddings.token_type_embeddings',
      'classifier',
    ]);
    assert.deepEqual(tensors.get(`${P}classifier.weight`)!.data, pair.tunedValues.get('classifier.weight'));
    assert.deepEqual(tensors.get(`${P}classifier.bias`)!.data, pair.tunedValues.get('classifier.bias'));
    assert.ok(!config.target_modules.includes('classifier'));
    assert.ok(config.target_modules.includes('bert.encoder.layer.0.attention.self.query'));
    assert.deepEqual(r.coverage.notComparable.map((n) => n.name).sort(), ['classifier.bias', 'classifier.weight']);
    assert.match(r.coverage.notComparable[0]!.reason, /only in tuned: saved whole/);
  });
});

describe('extract: an unchanged classifier head under SEQ_CLS', () => {
  it('is saved all the same: PEFT adds it to modules_to_save itself and raises KeyError without its weights', async () => {
    const cfg = { model_type: 'bert', architectures: ['BertForSequenceClassification'] };
    const pair = await writePair('bert-same', cfg, [
      { name: 'bert.encoder.layer.0.attention.self.query.weight', shape: [8, 8] },
      { name: 'classifier.weight', shape: [3, 8], same: true },
      { name: 'classifier.bias', shape: [3], same: true },
    ]);
    const out = join(dir, 'bert-same-lora');
    await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 } });
    const { config, tensors } = await readOut(out);
    assert.deepEqual(config.modules_to_save, ['classifier']);
    assert.deepEqual(tensors.get(`${P}classifier.bias`)!.data, pair.tunedValues.get('classifier.bias'));
    // A causal LM has no such head: an unchanged score-like tensor would not be saved.
    const llm = await writePair('llama-same', { model_type: 'llama', architectures: ['LlamaForCausalLM'] }, [
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] },
      { name: 'model.norm.weight', shape: [8], same: true },
    ]);
    const r = await extractAdapter(llm.base, llm.tuned, join(dir, 'llama-same-lora'), { policy: { rank: 2 } });
    assert.deepEqual(r.modulesToSave, []);
  });
});

describe('extract: Qwen2-style biases on some projections only', () => {
  it('biases whole under bias: "lora_only" (lora_bias would warn on o_proj and break merging), nothing left out', async () => {
    const cfg = { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], tie_word_embeddings: false };
    const pair = await writePair('qwen2', cfg, [
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] },
      { name: 'model.layers.0.self_attn.q_proj.bias', shape: [8] },
      { name: 'model.layers.0.self_attn.o_proj.weight', shape: [8, 8] },
    ]);
    const out = join(dir, 'qwen2-lora');
    const r = await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 } });
    const { config, tensors } = await readOut(out);
    assert.equal(config.bias, 'lora_only');
    assert.equal(config.modules_to_save, null);
    assert.deepEqual(
      tensors.get(`${P}model.layers.0.self_attn.q_proj.base_layer.bias`)!.data,
      pair.tunedValues.get('model.layers.0.self_attn.q_proj.bias'),
    );
    assert.match(
      r.warnings.join('\n'),
      /lora_bias would warn on, and refuse to merge, the targets without a base bias \(e\.g\. model\.layers\.0\.self_attn\.o_proj\)/,
    );
    assert.ok(Math.abs(r.coverage.reproduced - 1) < 1e-6);
    // A bias that changed on a projection whose weight did not: the module stays a (zero) LoRA target,
    // since PEFT loads <module>.base_layer.bias only into a LoRA layer.
    const onlyBias = await writePair('qwen2-only-bias', cfg, [
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8], same: true },
      { name: 'model.layers.0.self_attn.q_proj.bias', shape: [8] },
      { name: 'model.layers.0.self_attn.o_proj.weight', shape: [8, 8] },
    ]);
    const ob = await extractAdapter(onlyBias.base, onlyBias.tuned, join(dir, 'qwen2-only-bias-lora'), {
      policy: { rank: 2 },
    });
    const obOut = await readOut(join(dir, 'qwen2-only-bias-lora'));
    assert.ok(obOut.config.target_modules.includes('model.layers.0.self_attn.q_proj'));
    assert.equal(sq(obOut.tensors.get(`${P}model.layers.0.self_attn.q_proj.lora_B.weight`)!.data), 0);
    assert.deepEqual(
      obOut.tensors.get(`${P}model.layers.0.self_attn.q_proj.base_layer.bias`)!.data,
      onlyBias.tunedValues.get('model.layers.0.self_attn.q_proj.bias'),
    );
    assert.ok(Math.abs(ob.coverage.reproduced - 1) < 1e-6);
    const skip = await extractAdapter(pair.base, pair.tuned, join(dir, 'qwen2-skip'), {
      policy: { rank: 2 },
      biases: 'skip',
    });
    assert.deepEqual(
      skip.coverage.leftOut.map((l) => [l.name, l.reason]),
      [['model.layers.0.self_attn.q_proj.bias', 'bias (--biases skip)']],
    );
  });
});

describe('extract: tied embeddings saved whole', () => {
  it('--embeddings full on a tied model saves the head beside the embeddings, both listed, ensure_weight_tying set', async () => {
    const cfg = { model_type: 'gemma', architectures: ['GemmaForCausalLM'], tie_word_embeddings: true };
    const pair = await writePair('gemma', cfg, [
      { name: 'model.embed_tokens.weight', shape: [20, 8] },
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [12, 8] },
    ]);
    const out = join(dir, 'gemma-full');
    await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 }, embeddings: 'full' });
    const { config, tensors } = await readOut(out);
    assert.deepEqual([...config.modules_to_save].sort(), ['lm_head', 'model.embed_tokens']);
    assert.equal(config.ensure_weight_tying, true);
    assert.deepEqual(tensors.get(`${P}lm_head.weight`)!.data, pair.tunedValues.get('model.embed_tokens.weight'));
  });
});

describe('extract: a resized, tied vocabulary stored on both sides', () => {
  it('--embeddings full saves the tuned embeddings and head once each', async () => {
    const cfg = { model_type: 'llama', architectures: ['LlamaForCausalLM'], tie_word_embeddings: true };
    const pair = await writePair('resized-tied', cfg, [
      { name: 'model.embed_tokens.weight', shape: [20, 8], tunedShape: [24, 8] },
      { name: 'lm_head.weight', shape: [20, 8], tunedShape: [24, 8] },
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [12, 8] },
      { name: 'model.layers.0.mlp.down_proj.weight', shape: [8, 12] },
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] },
    ]);
    const out = join(dir, 'resized-tied-full');
    const r = await extractAdapter(pair.base, pair.tuned, out, { policy: { rank: 2 }, embeddings: 'full' });
    const { config, tensors } = await readOut(out);
    assert.deepEqual([...config.modules_to_save].sort(), ['lm_head', 'model.embed_tokens']);
    assert.deepEqual(tensors.get(`${P}lm_head.weight`)!.data, pair.tunedValues.get('lm_head.weight'));
    assert.deepEqual(tensors.get(`${P}model.embed_tokens.weight`)!.shape, [24, 8]);
    assert.match(r.warnings.join('\n'), /resized vocabulary saved whole/);
  });
});

describe('extract: Mixtral experts', () => {
  it('every expert and the router at the one rank of the config (unchanged experts as zeros), whatever each would choose', async () => {
    const cfg = { model_type: 'mixtral', architectures: ['MixtralForCausalLM'], tie_word_embeddings: false };
    const specs: Spec[] = [{ name: 'model.layers.0.block_sparse_moe.gate.weight', shape: [2, 8] }];
    for (const e of [0, 1]) {
      for (const [p, shape] of [
        ['w1', [12, 8]],
        ['w2', [8, 12]],
        ['w3', [12, 8]],
      ] as const) {
        specs.push({
          name: `model.layers.0.block_sparse_moe.experts.${e}.${p}.weight`,
          shape: [...shape],
          same: e === 1,
        });
      }
    }
    specs.push({ name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] });
    const pair = await writePair('mixtral', cfg, specs, 5);
    const out = join(dir, 'mixtral-lora');
    const r = await extractAdapter(pair.base, pair.tuned, out, { policy: { energy: 0.5 } });
    const { config, tensors } = await readOut(out);
    const rank = r.layout.fusedExpertRank!;
    assert.ok(rank >= 1);
    assert.equal(config.r, rank);
    assert.equal(config.lora_alpha, rank);
    for (const key of Object.keys(config.rank_pattern))
      assert.ok(!/experts|gate$/.test(key), `no per-expert rank_pattern: ${key}`);
    const zero = tensors.get(`${P}model.layers.0.block_sparse_moe.experts.1.w2.lora_B.weight`)!;
    assert.deepEqual(zero.shape, [8, rank]);
    assert.equal(sq(zero.data), 0);
    // The router ([2, 8], rank ≤ 2) is padded to the shared rank and still gives its ΔW.
    const ra = tensors.get(`${P}model.layers.0.block_sparse_moe.gate.lora_A.weight`)!;
    const rb = tensors.get(`${P}model.layers.0.block_sparse_moe.gate.lora_B.weight`)!;
    assert.deepEqual(
      [ra.shape, rb.shape],
      [
        [rank, 8],
        [2, rank],
      ],
    );
    if (rank >= 2)
      expectAllClose(
        product(rb.data, ra.data, 2, rank, 8),
        pair.delta.get('model.layers.0.block_sparse_moe.gate.weight')!,
        { rtol: 1e-4, atol: 1e-6 },
      );
    assert.match(r.warnings.join('\n'), /share rank/);
  });
});

describe('extract: tensors the layout does not know', () => {
  it('are left out with the reason and their share, never extracted as Linear', async () => {
    const cfg = { model_type: 'llama', architectures: ['LlamaForCausalLM'], tie_word_embeddings: false };
    const pair = await writePair('unknown', cfg, [
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] },
      { name: 'model.layers.0.self_attn.mystery.weight', shape: [8, 8] },
    ]);
    const r = await extractAdapter(pair.base, pair.tuned, join(dir, 'unknown-lora'), { policy: { rank: 2 } });
    assert.deepEqual(
      r.modules.map((m) => m.module),
      ['model.layers.0.self_attn.q_proj'],
    );
    const lo = r.coverage.leftOut[0]!;
    assert.equal(lo.name, 'model.layers.0.self_attn.mystery.weight');
    assert.match(lo.reason, /layout unknown/);
    const total = sq(pair.delta.get('model.layers.0.self_attn.q_proj.weight')!) + sq(pair.delta.get(lo.name)!);
    assert.ok(Math.abs(lo.share - sq(pair.delta.get(lo.name)!) / total) < 1e-9);
  });
});
