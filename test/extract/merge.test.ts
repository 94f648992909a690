/**
 * merge against PEFT's formulas written out in f64 here (peft/tuners/lora/layer.py, variants.py);
 * test/peft/peft-reader.test.ts holds it against PEFT's own merge_and_unload.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import { mergeAdapter } from '../../src/extract/index.js';
import { type LoraModule, openCheckpoint, writeAdapter, writeSafetensors } from '../../src/io/index.js';
import { expectAllClose } from '../helpers/close.js';
import { lora, seq } from '../helpers/lora.js';

async function base(d: string, tensors: Record<string, [number[], Float32Array]>): Promise<string> {
  const names = Object.keys(tensors);
  const file = join(d, 'model.safetensors');
  await writeSafetensors(
    file,
    names.map((name) => ({ name, dtype: 'F32' as const, shape: tensors[name]![0] })),
    (_s, i) => tensors[names[i]!]![1],
  );
  return file;
}

async function read(dir: string, name: string): Promise<Float32Array> {
  const ck = await openCheckpoint(dir);
  try {
    return await ck.readFloat32(name);
  } finally {
    await ck.close();
  }
}

/** s·B·A [out, in] in f64. */
function product(m: LoraModule, s: number): Float64Array {
  const p = new Float64Array(m.outFeatures * m.inFeatures);
  for (let o = 0; o < m.outFeatures; o++)
    for (let i = 0; i < m.inFeatures; i++)
      for (let j = 0; j < m.rank; j++)
        p[o * m.inFeatures + i]! += s * m.b[o * m.rank + j]! * m.a[j * m.inFeatures + i]!;
  return p;
}

/** The merged weight in its stored layout ([in, out] when `transposed`), DoRA's rescaling when `m.magnitude`. */
function expected(w: Float32Array, m: LoraModule, s: number, transposed: boolean): Float64Array {
  const p = product(m, s);
  const { outFeatures: out, inFeatures: inF } = m;
  const at = (o: number, i: number) => (transposed ? i * out + o : o * inF + i);
  const v = Float64Array.from(w);
  for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) v[at(o, i)]! += p[o * inF + i]!;
  if (m.magnitude) {
    for (let o = 0; o < out; o++) {
      let n = 0;
      for (let i = 0; i < inF; i++) n += v[at(o, i)]! ** 2;
      for (let i = 0; i < inF; i++) v[at(o, i)]! *= m.magnitude[o]! / Math.sqrt(n);
    }
  }
  return v;
}

test('fan_in_fan_out (Conv1D, weights [in, out]): W + (s·B·A)ᵀ, square weights included', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const cAttn = lora('h.0.attn.c_attn', 2, 4, 12);
  const cProj = lora('h.0.attn.c_proj', 2, 4, 4);
  const w1 = seq(48, 0.2);
  const w2 = seq(16, 0.4);
  const file = await base(d, { 'h.0.attn.c_attn.weight': [[4, 12], w1], 'h.0.attn.c_proj.weight': [[4, 4], w2] });
  await writeAdapter(join(d, 'a'), { modules: [cAttn, cProj], dtype: 'F32', fanInFanOut: true });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(
    await read(join(d, 'm'), 'h.0.attn.c_attn.weight'),
    expected(w1, cAttn, 2, true),
    { rtol: 1e-6, atol: 1e-6 },
    'c_attn',
  );
  expectAllClose(
    await read(join(d, 'm'), 'h.0.attn.c_proj.weight'),
    expected(w2, cProj, 2, true),
    { rtol: 1e-6, atol: 1e-6 },
    'c_proj (square)',
  );
});

test('DoRA: m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per output row; per embedding dimension (a column) for embeddings', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const q = lora('model.q_proj', 2, 6, 5, { magnitude: seq(5, 0.3).map((v) => 1 + v) });
  const emb: LoraModule = {
    module: 'model.embed_tokens',
    kind: 'embedding',
    rank: 2,
    alpha: 4,
    a: seq(2 * 7, 0.6),
    b: seq(3 * 2, 0.9),
    inFeatures: 7,
    outFeatures: 3,
    magnitude: Float32Array.of(2, 3, 4),
  };
  const wq = seq(30, 0.25);
  const we = seq(21, 0.45);
  const file = await base(d, { 'model.q_proj.weight': [[5, 6], wq], 'model.embed_tokens.weight': [[7, 3], we] });
  await writeAdapter(join(d, 'a'), { modules: [q, emb], dtype: 'F32' });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(
    await read(join(d, 'm'), 'model.q_proj.weight'),
    expected(wq, q, 2, false),
    { rtol: 1e-5, atol: 1e-6 },
    'q_proj',
  );
  // ΔW of an embedding is (s·B·A)ᵀ [vocab, dim]: the stored layout is [in, out] with in = vocab.
  const got = await read(join(d, 'm'), 'model.embed_tokens.weight');
  expectAllClose(got, expected(we, emb, 2, true), { rtol: 1e-5, atol: 1e-6 }, 'embed_tokens');
  for (let j = 0; j < 3; j++) {
    let n = 0;
    for (let v = 0; v < 7; v++) n += got[v * 3 + j]! ** 2;
    assert.ok(Math.abs(Math.sqrt(n) - emb.magnitude![j]!) < 1e-5, `column ${j} has the magnitude's norm`);
  }
});

test('lora_B.bias adds s·bias to the base bias, and is refused where the base has none', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const q = lora('model.q_proj', 2, 3, 4, { bias: Float32Array.of(1, -2, 3, 0.5) });
  const file = await base(d, {
    'model.q_proj.weight': [[4, 3], seq(12)],
    'model.q_proj.bias': [[4], Float32Array.of(10, 20, 30, 40)],
  });
  await writeAdapter(join(d, 'a'), { modules: [q], dtype: 'F32' });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(await read(join(d, 'm'), 'model.q_proj.bias'), [12, 16, 36, 41], { rtol: 1e-7 }, 'bias (s = 2)');
  const noBias = await base(await mkdtemp(join(tmpdir(), 'deltarank-merge-')), {
    'model.q_proj.weight': [[4, 3], seq(12)],
  });
  await assert.rejects(
    mergeAdapter(noBias, join(d, 'a'), join(d, 'm2')),
    (e: unknown) =>
      e instanceof ShapeError && /has a lora_B\.bias but .* has no "model\.q_proj\.bias"/.test((e as Error).message),
  );
});

test('a tied lm_head (ensure_weight_tying) is not merged twice into a base that stores only the embedding', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const emb: LoraModule = {
    module: 'model.embed_tokens',
    kind: 'embedding',
    rank: 2,
    alpha: 2,
    a: seq(2 * 6, 0.6),
    b: seq(4 * 2, 0.9),
    inFeatures: 6,
    outFeatures: 4,
  };
  const we = seq(24, 0.45);
  const file = await base(d, { 'model.embed_tokens.weight': [[6, 4], we] });
  await writeAdapter(join(d, 'a'), {
    modules: [emb],
    dtype: 'F32',
    tiedModules: [{ module: 'lm_head', source: 'model.embed_tokens' }],
  });
  const r = await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  assert.deepEqual(r.merged, ['model.embed_tokens.weight']);
  expectAllClose(
    await read(join(d, 'm'), 'model.embed_tokens.weight'),
    expected(we, emb, 1, true),
    { rtol: 1e-6, atol: 1e-6 },
    'embedding, once',
  );
});

test('a square Conv1D weight is transposed by its layer type (config.json says gpt2), as PEFT decides, whatever fan_in_fan_out says', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const cProj = lora('transformer.h.0.attn.c_proj', 2, 4, 4);
  const w = seq(16, 0.4);
  const file = await base(d, { 'transformer.h.0.attn.c_proj.weight': [[4, 4], w] });
  await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }));
  await writeAdapter(join(d, 'a'), { modules: [cProj], dtype: 'F32', fanInFanOut: false });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(
    await read(join(d, 'm'), 'transformer.h.0.attn.c_proj.weight'),
    expected(w, cProj, 2, true),
    { rtol: 1e-6, atol: 1e-6 },
    'c_proj',
  );
});

async function readJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
}

async function names(dir: string): Promise<{ name: string; shape: number[] }[]> {
  const ck = await openCheckpoint(dir);
  try {
    return ck.tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
  } finally {
    await ck.close();
  }
}

const GPT2 = { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], tie_word_embeddings: true, vocab_size: 6 };

test('tied embeddings saved whole (GPT-2 --embeddings full): the equal lm_head copy is the stored wte, written once', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const wte = seq(24, 0.45);
  const c = seq(16, 0.3);
  await base(d, { 'transformer.wte.weight': [[6, 4], wte], 'transformer.h.0.attn.c_proj.weight': [[4, 4], c] });
  await writeFile(join(d, 'config.json'), JSON.stringify(GPT2));
  const tuned = seq(24, 0.8);
  const cProj = lora('transformer.h.0.attn.c_proj', 2, 4, 4);
  // What extract writes: modules_to_save [wte, lm_head] with the same values, ensure_weight_tying.
  const fullWeights = [
    { name: 'transformer.wte.weight', dtype: 'F32' as const, shape: [6, 4], data: tuned },
    { name: 'lm_head.weight', dtype: 'F32' as const, shape: [6, 4], data: tuned.slice() },
  ];
  await writeAdapter(join(d, 'a'), {
    modules: [cProj],
    fullWeights,
    dtype: 'F32',
    fanInFanOut: true,
    extraConfig: { ensure_weight_tying: true },
  });
  const r = await mergeAdapter(d, join(d, 'a'), join(d, 'm'));
  assert.deepEqual(r.tiedSkipped, ['lm_head.weight']);
  assert.deepEqual(r.replaced, ['transformer.wte.weight']);
  assert.deepEqual((await names(join(d, 'm'))).map((t) => t.name).sort(), [
    'transformer.h.0.attn.c_proj.weight',
    'transformer.wte.weight',
  ]);
  expectAllClose(
    await read(join(d, 'm'), 'transformer.wte.weight'),
    tuned,
    { rtol: 0, atol: 0 },
    'wte = the saved embedding',
  );
  expectAllClose(
    await read(join(d, 'm'), 'transformer.h.0.attn.c_proj.weight'),
    expected(c, cProj, 2, true),
    { rtol: 1e-6, atol: 1e-6 },
    'c_proj',
  );

  // One tied tensor cannot take two values; nor can a head alone stand in for the embedding it is tied to.
  const other = tuned.slice();
  other[5]! += 1e-3;
  await writeAdapter(join(d, 'b'), {
    modules: [cProj],
    fullWeights: [fullWeights[0]!, { ...fullWeights[1]!, data: other }],
    dtype: 'F32',
    fanInFanOut: true,
    extraConfig: { ensure_weight_tying: true },
  });
  await assert.rejects(
    mergeAdapter(d, join(d, 'b'), join(d, 'm2')),
    (e: unknown) =>
      e instanceof ShapeError &&
      /"lm_head\.weight" and transformer\.wte\.weight with different values/.test((e as Error).message),
  );
  await writeAdapter(join(d, 'c'), {
    modules: [cProj],
    fullWeights: [fullWeights[1]!],
    dtype: 'F32',
    fanInFanOut: true,
    extraConfig: { ensure_weight_tying: true },
  });
  await assert.rejects(
    mergeAdapter(d, join(d, 'c'), join(d, 'm3')),
    (e: unknown) =>
      e instanceof ShapeError &&
      /replaces "lm_head\.weight" but not transformer\.wte\.weight/.test((e as Error).message),
  );
});

test('bias: "lora_only" — <module>.base_layer.bias saved whole sets <module>.bias, beside the LoRA on its weight', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const q = lora('model.layers.0.self_attn.q_proj', 2, 3, 4);
  const w = seq(12, 0.2);
  await base(d, {
    'model.layers.0.self_attn.q_proj.weight': [[4, 3], w],
    'model.layers.0.self_attn.q_proj.bias': [[4], Float32Array.of(10, 20, 30, 40)],
  });
  const tunedBias = Float32Array.of(1, -2, 3, 0.5);
  await writeAdapter(join(d, 'a'), {
    modules: [q],
    fullWeights: [
      { name: 'model.layers.0.self_attn.q_proj.base_layer.bias', dtype: 'F32', shape: [4], data: tunedBias },
    ],
    dtype: 'F32',
    extraConfig: { bias: 'lora_only', modules_to_save: null },
  });
  const r = await mergeAdapter(d, join(d, 'a'), join(d, 'm'));
  assert.deepEqual(r.replaced, ['model.layers.0.self_attn.q_proj.bias']);
  expectAllClose(
    await read(join(d, 'm'), 'model.layers.0.self_attn.q_proj.bias'),
    tunedBias,
    { rtol: 0, atol: 0 },
    'bias = the saved one',
  );
  expectAllClose(
    await read(join(d, 'm'), 'model.layers.0.self_attn.q_proj.weight'),
    expected(w, q, 2, false),
    { rtol: 1e-6, atol: 1e-6 },
    'q_proj',
  );
});

const LLAMA = {
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  tie_word_embeddings: false,
  vocab_size: 6,
  hidden_size: 4,
};

test('a resized vocabulary (embeddings and lm_head saved whole at 8 rows, base 6) is written at its new shape, config.json vocab_size 8', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const q = lora('model.layers.0.self_attn.q_proj', 2, 4, 4);
  const wq = seq(16, 0.2);
  await base(d, {
    'model.embed_tokens.weight': [[6, 4], seq(24, 0.1)],
    'model.layers.0.self_attn.q_proj.weight': [[4, 4], wq],
    'lm_head.weight': [[6, 4], seq(24, 0.3)],
  });
  await writeFile(join(d, 'config.json'), JSON.stringify(LLAMA));
  const emb = seq(32, 0.7);
  const head = seq(32, 0.9);
  const whole = [
    { name: 'model.embed_tokens.weight', dtype: 'F32' as const, shape: [8, 4], data: emb },
    { name: 'lm_head.weight', dtype: 'F32' as const, shape: [8, 4], data: head },
  ];
  await writeAdapter(join(d, 'a'), { modules: [q], fullWeights: whole, dtype: 'F32' });
  const r = await mergeAdapter(d, join(d, 'a'), join(d, 'm'));
  assert.deepEqual(r.resizedVocab, { from: 6, to: 8 });
  assert.deepEqual(await names(join(d, 'm')), [
    { name: 'model.embed_tokens.weight', shape: [8, 4] },
    { name: 'model.layers.0.self_attn.q_proj.weight', shape: [4, 4] },
    { name: 'lm_head.weight', shape: [8, 4] },
  ]);
  expectAllClose(await read(join(d, 'm'), 'model.embed_tokens.weight'), emb, { rtol: 0, atol: 0 }, 'embed_tokens');
  expectAllClose(await read(join(d, 'm'), 'lm_head.weight'), head, { rtol: 0, atol: 0 }, 'lm_head');
  expectAllClose(
    await read(join(d, 'm'), 'model.layers.0.self_attn.q_proj.weight'),
    expected(wq, q, 2, false),
    { rtol: 1e-6, atol: 1e-6 },
    'q_proj',
  );
  assert.deepEqual(await readJson(join(d, 'm', 'config.json')), { ...LLAMA, vocab_size: 8 });

  // Half a resize would not load: lm_head left at 6 rows beside embeddings of 8.
  await writeAdapter(join(d, 'b'), { modules: [q], fullWeights: [whole[0]!], dtype: 'F32' });
  await assert.rejects(
    mergeAdapter(d, join(d, 'b'), join(d, 'm2')),
    (e: unknown) =>
      e instanceof ShapeError &&
      /resizes the vocabulary 6 → 8 \(model\.embed_tokens\.weight\) but not lm_head\.weight/.test((e as Error).message),
  );
  // Only vocabulary tensors may change their row count.
  await writeAdapter(join(d, 'c'), {
    modules: [],
    fullWeights: [{ name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [5, 4], data: seq(20) }],
    dtype: 'F32',
  });
  await assert.rejects(
    mergeAdapter(d, join(d, 'c'), join(d, 'm3')),
    (e: unknown) =>
      e instanceof ShapeError &&
      /replaces model\.layers\.0\.self_attn\.q_proj\.weight with \[5, 4\] but the base has \[4, 4\]/.test(
        (e as Error).message,
      ),
  );
});

test('a tied vocabulary resized and saved whole: the one stored embedding at its new shape, sharded index sized to match', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  // Two shards, so the index's total_size has to follow the new shape.
  await writeSafetensors(
    join(d, 'model-00001-of-00002.safetensors'),
    [{ name: 'transformer.wte.weight', dtype: 'F32', shape: [6, 4] }],
    () => seq(24, 0.45),
  );
  await writeSafetensors(
    join(d, 'model-00002-of-00002.safetensors'),
    [{ name: 'transformer.ln_f.weight', dtype: 'F32', shape: [4] }],
    () => seq(4),
  );
  const weightMap = {
    'transformer.wte.weight': 'model-00001-of-00002.safetensors',
    'transformer.ln_f.weight': 'model-00002-of-00002.safetensors',
  };
  await writeFile(
    join(d, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 112 }, weight_map: weightMap }),
  );
  await writeFile(join(d, 'config.json'), JSON.stringify(GPT2));
  const tuned = seq(40, 0.8);
  const fullWeights = ['transformer.wte.weight', 'lm_head.weight'].map((name) => ({
    name,
    dtype: 'F32' as const,
    shape: [10, 4],
    data: tuned.slice(),
  }));
  await writeAdapter(join(d, 'a'), {
    modules: [],
    fullWeights,
    dtype: 'F32',
    extraConfig: { ensure_weight_tying: true },
  });
  const r = await mergeAdapter(d, join(d, 'a'), join(d, 'm'));
  assert.deepEqual(
    { tied: r.tiedSkipped, vocab: r.resizedVocab },
    { tied: ['lm_head.weight'], vocab: { from: 6, to: 10 } },
  );
  expectAllClose(await read(join(d, 'm'), 'transformer.wte.weight'), tuned, { rtol: 0, atol: 0 }, 'wte');
  const index = await readJson(join(d, 'm', 'model.safetensors.index.json'));
  assert.deepEqual(index, { metadata: { total_size: (40 + 4) * 4 }, weight_map: weightMap });
  assert.equal((await readJson(join(d, 'm', 'config.json')))['vocab_size'], 10);
});
