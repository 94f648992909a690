import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { applyAdapter, resizeAdapter } from '../../src/extract/index.js';
import { type LoraModule, openCheckpoint, readAdapter, writeAdapter } from '../../src/io/index.js';
import { expectAllClose } from '../helpers/close.js';
import { lora, seq } from '../helpers/lora.js';

const dir = () => mkdtemp(join(tmpdir(), 'deltarank-resize-'));

test("resize writes the factors in the adapter's dtype by default (bf16 in, bf16 out, no modules_to_save needed)", async () => {
  const d = await dir();
  await writeAdapter(join(d, 'in'), { modules: [lora('model.layers.0.self_attn.q_proj', 4, 8, 8)], dtype: 'BF16' });
  await resizeAdapter(join(d, 'in'), join(d, 'out'), { rank: 2 });
  const ck = await openCheckpoint(join(d, 'out', 'adapter_model.safetensors'));
  try {
    assert.deepEqual([...new Set(ck.tensors.map((t) => t.dtype))], ['BF16']);
  } finally {
    await ck.close();
  }
  await resizeAdapter(join(d, 'in'), join(d, 'f32'), { rank: 2 }, { dtype: 'F32' });
  assert.equal((await readAdapter(join(d, 'f32'))).factorDtype, 'F32');
});

test('resize refuses a --max-rank that is not a positive integer before reading anything', async () => {
  const d = await dir();
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(
      resizeAdapter(join(d, 'nowhere'), join(d, 'out'), { rank: 2 }, { maxRank: bad }),
      (e: unknown) => e instanceof UsageError && /--max-rank must be a positive integer/.test((e as Error).message),
    );
  }
});

test('resize keeps lora_B.bias as lora_B.bias (rescaled to the new scale) and the merged weights', async () => {
  const d = await dir();
  const q = lora('model.layers.0.self_attn.q_proj', 3, 6, 5, { bias: seq(5, 2.1) });
  await writeAdapter(join(d, 'in'), { modules: [q], dtype: 'F32' });
  await resizeAdapter(join(d, 'in'), join(d, 'out'), { rank: 3 });
  const config = JSON.parse(await readFile(join(d, 'out', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config['lora_bias'], true);
  assert.equal(config['modules_to_save'], null);
  const ck = await openCheckpoint(join(d, 'out', 'adapter_model.safetensors'));
  const keys = ck.tensors.map((t) => t.name).sort();
  await ck.close();
  assert.deepEqual(
    keys,
    ['a', 'b', 'bias']
      .map((k) => `base_model.model.${q.module}.lora_${k === 'a' ? 'A.weight' : k === 'b' ? 'B.weight' : 'B.bias'}`)
      .sort(),
  );
  // Merged into the same weights, the original and the resized adapter agree (rank kept: exact up to f32).
  const weights = new Map([
    [`${q.module}.weight`, seq(30, 0.3)],
    [`${q.module}.bias`, seq(5, 0.9)],
  ]);
  const before = await applyAdapter(weights, await readAdapter(join(d, 'in')));
  const after = await applyAdapter(weights, await readAdapter(join(d, 'out')));
  expectAllClose(
    after.get(`${q.module}.weight`)!,
    before.get(`${q.module}.weight`)!,
    { rtol: 1e-5, atol: 1e-6 },
    'weight',
  );
  expectAllClose(after.get(`${q.module}.bias`)!, before.get(`${q.module}.bias`)!, { rtol: 1e-6, atol: 1e-7 }, 'bias');
  assert.ok(
    after.get(`${q.module}.bias`)!.some((v, i) => v !== weights.get(`${q.module}.bias`)![i]),
    'the bias changed',
  );
});

test('resize of a DoRA adapter keeps each magnitude and use_dora, and says its errors are of s·B·A', async () => {
  const d = await dir();
  const q = lora('model.layers.0.self_attn.q_proj', 3, 6, 5, { magnitude: seq(5, 0.4).map((v) => 1 + v) });
  await writeAdapter(join(d, 'in'), { modules: [q], dtype: 'F32' });
  const r = await resizeAdapter(join(d, 'in'), join(d, 'out'), { rank: 2 });
  assert.ok(
    r.warnings.some((w) => /DoRA adapter: magnitudes kept; the errors reported are of s·B·A/.test(w)),
    r.warnings.join('\n'),
  );
  const back = await readAdapter(join(d, 'out'));
  assert.equal(back.settings.useDora, true);
  assert.deepEqual(back.modules[0]!.magnitude, q.magnitude);
  assert.equal(back.modules[0]!.rank, 2);
});

test('resize of a tied embedding adapter (ensure_weight_tying) rewrites lm_head from the resized embedding', async () => {
  const d = await dir();
  const emb: LoraModule = {
    module: 'model.embed_tokens',
    kind: 'embedding',
    rank: 3,
    alpha: 3,
    a: seq(3 * 10, 0.5),
    b: seq(4 * 3, 0.8),
    inFeatures: 10,
    outFeatures: 4,
  };
  await writeAdapter(join(d, 'in'), {
    modules: [emb],
    dtype: 'F32',
    tiedModules: [{ module: 'lm_head', source: 'model.embed_tokens' }],
  });
  await resizeAdapter(join(d, 'in'), join(d, 'out'), { rank: 2 });
  const back = await readAdapter(join(d, 'out'));
  assert.deepEqual(back.tied, [{ module: 'lm_head', source: 'model.embed_tokens' }]);
  assert.deepEqual(back.modules.map((m) => [m.module, m.rank]).sort(), [
    ['lm_head', 2],
    ['model.embed_tokens', 2],
  ]);
});
