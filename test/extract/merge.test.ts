/**
 * merge against PEFT's formulas written out in f64 here (peft/tuners/lora/layer.py, variants.py);
 * test/peft/peft-reader.test.ts holds it against PEFT's own merge_and_unload.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import { mergeAdapter } from '../../src/extract/index.js';
import { openCheckpoint, writeAdapter, writeSafetensors, type LoraModule } from '../../src/io/index.js';
import { expectAllClose } from '../helpers/close.js';

const seq = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(k * (i + 1)));

async function base(d: string, tensors: Record<string, [number[], Float32Array]>): Promise<string> {
  const names = Object.keys(tensors);
  const file = join(d, 'model.safetensors');
  await writeSafetensors(file, names.map((name) => ({ name, dtype: 'F32' as const, shape: tensors[name]![0] })), (_s, i) => tensors[names[i]!]![1]);
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
  for (let o = 0; o < m.outFeatures; o++) for (let i = 0; i < m.inFeatures; i++) for (let j = 0; j < m.rank; j++) p[o * m.inFeatures + i]! += s * m.b[o * m.rank + j]! * m.a[j * m.inFeatures + i]!;
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

/** alpha = 2·rank: s = 2. */
function lora(module: string, rank: number, inF: number, outF: number, extra: Partial<LoraModule> = {}): LoraModule {
  return { module, kind: 'linear', rank, alpha: 2 * rank, a: seq(rank * inF, 0.7), b: seq(outF * rank, 1.3), inFeatures: inF, outFeatures: outF, ...extra };
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
  expectAllClose(await read(join(d, 'm'), 'h.0.attn.c_attn.weight'), expected(w1, cAttn, 2, true), { rtol: 1e-6, atol: 1e-6 }, 'c_attn');
  expectAllClose(await read(join(d, 'm'), 'h.0.attn.c_proj.weight'), expected(w2, cProj, 2, true), { rtol: 1e-6, atol: 1e-6 }, 'c_proj (square)');
});

test('DoRA: m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per output row; per embedding dimension (a column) for embeddings', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const q = lora('model.q_proj', 2, 6, 5, { magnitude: seq(5, 0.3).map((v) => 1 + v) });
  const emb: LoraModule = { module: 'model.embed_tokens', kind: 'embedding', rank: 2, alpha: 4, a: seq(2 * 7, 0.6), b: seq(3 * 2, 0.9), inFeatures: 7, outFeatures: 3, magnitude: Float32Array.of(2, 3, 4) };
  const wq = seq(30, 0.25);
  const we = seq(21, 0.45);
  const file = await base(d, { 'model.q_proj.weight': [[5, 6], wq], 'model.embed_tokens.weight': [[7, 3], we] });
  await writeAdapter(join(d, 'a'), { modules: [q, emb], dtype: 'F32' });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(await read(join(d, 'm'), 'model.q_proj.weight'), expected(wq, q, 2, false), { rtol: 1e-5, atol: 1e-6 }, 'q_proj');
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
  const file = await base(d, { 'model.q_proj.weight': [[4, 3], seq(12)], 'model.q_proj.bias': [[4], Float32Array.of(10, 20, 30, 40)] });
  await writeAdapter(join(d, 'a'), { modules: [q], dtype: 'F32' });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(await read(join(d, 'm'), 'model.q_proj.bias'), [12, 16, 36, 41], { rtol: 1e-7 }, 'bias (s = 2)');
  const noBias = await base(await mkdtemp(join(tmpdir(), 'deltarank-merge-')), { 'model.q_proj.weight': [[4, 3], seq(12)] });
  await assert.rejects(mergeAdapter(noBias, join(d, 'a'), join(d, 'm2')), (e: unknown) => e instanceof ShapeError && /has a lora_B\.bias but .* has no "model\.q_proj\.bias"/.test((e as Error).message));
});

test('a tied lm_head (ensure_weight_tying) is not merged twice into a base that stores only the embedding', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const emb: LoraModule = { module: 'model.embed_tokens', kind: 'embedding', rank: 2, alpha: 2, a: seq(2 * 6, 0.6), b: seq(4 * 2, 0.9), inFeatures: 6, outFeatures: 4 };
  const we = seq(24, 0.45);
  const file = await base(d, { 'model.embed_tokens.weight': [[6, 4], we] });
  await writeAdapter(join(d, 'a'), { modules: [emb], dtype: 'F32', tiedModules: [{ module: 'lm_head', source: 'model.embed_tokens' }] });
  const r = await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  assert.deepEqual(r.merged, ['model.embed_tokens.weight']);
  expectAllClose(await read(join(d, 'm'), 'model.embed_tokens.weight'), expected(we, emb, 1, true), { rtol: 1e-6, atol: 1e-6 }, 'embedding, once');
});

test('a square Conv1D weight is transposed by its layer type (config.json says gpt2), as PEFT decides, whatever fan_in_fan_out says', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-merge-'));
  const cProj = lora('transformer.h.0.attn.c_proj', 2, 4, 4);
  const w = seq(16, 0.4);
  const file = await base(d, { 'transformer.h.0.attn.c_proj.weight': [[4, 4], w] });
  await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }));
  await writeAdapter(join(d, 'a'), { modules: [cProj], dtype: 'F32', fanInFanOut: false });
  await mergeAdapter(file, join(d, 'a'), join(d, 'm'));
  expectAllClose(await read(join(d, 'm'), 'transformer.h.0.attn.c_proj.weight'), expected(w, cProj, 2, true), { rtol: 1e-6, atol: 1e-6 }, 'c_proj');
});
