/**
 * analyze BASE --adapter on the replacements that are not one base tensor each (what extract
 * --embeddings full writes for tied GPT-2 and for a resized vocabulary): listed, not refused.
 * merge's handling of the same adapters is in test/extract/merge.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeAdapter } from '../../src/analyze/index.js';
import { writeAdapter, writeSafetensors } from '../../src/io/index.js';
import { seq } from '../helpers/lora.js';

test("a tied head saved whole is listed as the embedding's twin; the embedding's change is analysed (σ of W_tuned − W_base)", async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-replacements-'));
  const w = seq(24, 0.3);
  await writeSafetensors(
    join(d, 'model.safetensors'),
    [{ name: 'transformer.wte.weight', dtype: 'F32', shape: [6, 4] }],
    () => w,
  );
  await writeFile(
    join(d, 'config.json'),
    JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], tie_word_embeddings: true }),
  );
  // A rank-1 change: W + u vᵀ, so exactly one non-zero singular value, ‖u‖·‖v‖.
  const u = [1, -2, 0.5, 3, 0, 1];
  const v = [0.5, 1, -1, 2];
  const tuned = w.map((x, i) => x + u[Math.floor(i / 4)]! * v[i % 4]!);
  await writeAdapter(join(d, 'a'), {
    modules: [],
    fullWeights: ['transformer.wte.weight', 'lm_head.weight'].map((name) => ({
      name,
      dtype: 'F32' as const,
      shape: [6, 4],
      data: tuned,
    })),
    dtype: 'F32',
    extraConfig: { ensure_weight_tying: true },
  });
  const r = await analyzeAdapter(join(d, 'a'), { basePath: d });
  assert.deepEqual(
    r.skipped.map((s) => s.name),
    ['lm_head.weight'],
  );
  assert.match(r.skipped[0]!.reason, /tied to the token embeddings/);
  const t = r.tensors.find((x) => x.name === 'transformer.wte.weight')!;
  const norm = Math.hypot(...u) * Math.hypot(...v);
  assert.ok(Math.abs(t.singularValues[0]! - norm) < 1e-5 * norm, `σ₁ ${t.singularValues[0]} vs ${norm}`);
  assert.ok(t.singularValues[1]! < 1e-5 * norm, `σ₂ ${t.singularValues[1]}`);
});

test('a resized vocabulary saved whole is listed with its sizes, its half-resize refused', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-replacements-'));
  await writeSafetensors(
    join(d, 'model.safetensors'),
    [
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [6, 4] },
      { name: 'lm_head.weight', dtype: 'F32', shape: [6, 4] },
    ],
    (_s, i) => seq(24, 0.2 + i),
  );
  await writeFile(
    join(d, 'config.json'),
    JSON.stringify({
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      tie_word_embeddings: false,
      vocab_size: 6,
    }),
  );
  const whole = ['model.embed_tokens.weight', 'lm_head.weight'].map((name, i) => ({
    name,
    dtype: 'F32' as const,
    shape: [8, 4],
    data: seq(32, 0.5 + i),
  }));
  await writeAdapter(join(d, 'a'), { modules: [], fullWeights: whole, dtype: 'F32' });
  const r = await analyzeAdapter(join(d, 'a'), { basePath: d });
  assert.deepEqual(r.skipped.map((s) => s.name).sort(), ['lm_head.weight', 'model.embed_tokens.weight']);
  for (const s of r.skipped) assert.match(s.reason, /vocabulary resized from 6 to 8 rows/);
  await writeAdapter(join(d, 'b'), { modules: [], fullWeights: [whole[1]!], dtype: 'F32' });
  await assert.rejects(
    analyzeAdapter(join(d, 'b'), { basePath: d }),
    /resizes the vocabulary 6 → 8 \(lm_head\.weight\) but not model\.embed_tokens\.weight/,
  );
});
