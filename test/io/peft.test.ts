import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { FormatError, UsageError } from '../../src/errors.js';
import {
  decodeBf16,
  encodeBf16,
  type LoraModule,
  loraScale,
  readAdapter,
  writeAdapter,
  writeSafetensors,
} from '../../src/io/index.js';
import { independentRead, listing, put, scratch } from './helpers.js';

function lora(
  module: string,
  rank: number,
  inF: number,
  outF: number,
  kind: LoraModule['kind'] = 'linear',
  alpha = rank,
): LoraModule {
  return {
    module,
    kind,
    rank,
    alpha,
    a: Float32Array.from({ length: rank * inF }, (_, i) => Math.sin(i + rank)),
    b: Float32Array.from({ length: outF * rank }, (_, i) => Math.cos(i * 0.5 + outF)),
    inFeatures: inF,
    outFeatures: outF,
  };
}

const modules = [
  lora('model.layers.0.self_attn.q_proj', 4, 16, 16),
  lora('model.layers.0.self_attn.k_proj', 4, 16, 8),
  lora('model.layers.0.mlp.down_proj', 2, 40, 16, 'linear', 5),
  lora('model.embed_tokens', 4, 64, 16, 'embedding'),
  lora('model.layers.1.self_attn.q_proj', 0, 16, 16),
];
const fullWeights = [
  {
    name: 'model.norm.weight',
    dtype: 'F32' as const,
    shape: [16],
    data: Float32Array.from({ length: 16 }, (_, i) => 1 + i / 64),
  },
];

test('writeAdapter lays out PEFT keys, shapes, metadata and config; readAdapter reads it back', async () => {
  const dir = join(await scratch(), 'adapter');
  await writeAdapter(dir, {
    modules,
    fullWeights,
    dtype: 'BF16',
    baseModel: 'meta/base',
    taskType: 'CAUSAL_LM',
    extraConfig: { deltarank_note: 'x' },
  });
  assert.deepEqual(await listing(dir), ['adapter_config.json', 'adapter_model.safetensors']);
  const ind = independentRead(new Uint8Array(await readFile(join(dir, 'adapter_model.safetensors'))));
  assert.deepEqual(ind.header.__metadata__, { format: 'pt' });
  const shapes = Object.fromEntries([...ind.tensors].map(([k, t]) => [k, [t.dtype, t.shape]]));
  assert.deepEqual(shapes, {
    'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': ['BF16', [4, 16]],
    'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': ['BF16', [16, 4]],
    'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight': ['BF16', [4, 16]],
    'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight': ['BF16', [8, 4]],
    'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight': ['BF16', [2, 40]],
    'base_model.model.model.layers.0.mlp.down_proj.lora_B.weight': ['BF16', [16, 2]],
    'base_model.model.model.embed_tokens.lora_embedding_A': ['BF16', [4, 64]],
    'base_model.model.model.embed_tokens.lora_embedding_B': ['BF16', [16, 4]],
    'base_model.model.model.norm.weight': ['F32', [16]],
  });
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config, {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: 'meta/base',
    r: 4,
    lora_alpha: 4,
    target_modules: [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.k_proj',
      'model.layers.0.mlp.down_proj',
      'model.embed_tokens',
    ],
    rank_pattern: { 'model.layers.0.mlp.down_proj': 2 },
    alpha_pattern: { 'model.layers.0.mlp.down_proj': 5 },
    use_rslora: false,
    modules_to_save: ['model.norm'],
    bias: 'none',
    lora_dropout: 0,
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    deltarank_note: 'x',
  });

  const back = await readAdapter(dir);
  assert.deepEqual(back.config, config);
  assert.equal(back.modules.length, 4, 'the rank-0 module is left out');
  for (const m of modules.slice(0, 4)) {
    const got = back.modules.find((x) => x.module === m.module)!;
    assert.equal(got.kind, m.kind);
    assert.equal(got.rank, m.rank);
    assert.equal(got.alpha, m.alpha);
    assert.equal(got.inFeatures, m.inFeatures);
    assert.equal(got.outFeatures, m.outFeatures);
    assert.deepEqual(got.a, decodeBf16(encodeBf16(m.a)));
    assert.deepEqual(got.b, decodeBf16(encodeBf16(m.b)));
  }
  assert.deepEqual(back.fullWeights, fullWeights);
  assert.equal(loraScale(back.modules[2]!, false), 5 / 2);
  assert.equal(loraScale({ rank: 16, alpha: 8 }, true), 2);

  await assert.rejects(
    writeAdapter(dir, { modules, dtype: 'F32' }),
    (err: unknown) =>
      err instanceof UsageError && /adapter_config\.json already exists; pass --force/.test(err.message),
  );
  await writeAdapter(dir, { modules: modules.slice(0, 1), dtype: 'F32', useRslora: true }, { force: true });
  const replaced = await readAdapter(dir);
  assert.deepEqual(
    replaced.modules.map((m) => m.module),
    ['model.layers.0.self_attn.q_proj'],
  );
  assert.deepEqual(replaced.modules[0]!.a, modules[0]!.a);
  assert.equal(replaced.config.use_rslora, true);
  assert.equal(replaced.config.modules_to_save, null);
});

test('readAdapter resolves rank_pattern and alpha_pattern keys the way PEFT does (suffix regex)', async () => {
  const dir = await scratch();
  const q = lora('model.layers.3.self_attn.q_proj', 8, 4, 4);
  const v = lora('model.layers.3.self_attn.v_proj', 2, 4, 4);
  await writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    [
      { name: `base_model.model.${q.module}.lora_A.weight`, dtype: 'F32', shape: [8, 4] },
      { name: `base_model.model.${q.module}.lora_B.weight`, dtype: 'F32', shape: [4, 8] },
      { name: `base_model.model.${v.module}.lora_A.weight`, dtype: 'F32', shape: [2, 4] },
      { name: `base_model.model.${v.module}.lora_B.weight`, dtype: 'F32', shape: [4, 2] },
    ],
    (_s, i) => [q.a, q.b, v.a, v.b][i]!,
  );
  await put(
    dir,
    'adapter_config.json',
    JSON.stringify({
      peft_type: 'LORA',
      r: 8,
      lora_alpha: 16,
      rank_pattern: { v_proj: 2 },
      alpha_pattern: { 'layers\\.3\\.self_attn\\.v_proj': 3 },
    }),
  );
  const got = await readAdapter(dir);
  assert.deepEqual(
    got.modules.map((m) => [m.module, m.rank, m.alpha]),
    [
      [q.module, 8, 16],
      [v.module, 2, 3],
    ],
  );
});

test('readAdapter fails clearly on a missing file, a lone factor, or a key of the wrong shape', async () => {
  const dir = join(await scratch(), 'a');
  await writeAdapter(dir, { modules: modules.slice(0, 2), dtype: 'F32' });
  const expectFormat = async (pattern: RegExp) =>
    assert.rejects(readAdapter(dir), (err: unknown) => {
      assert.ok(err instanceof FormatError, String(err));
      assert.match(err.message, pattern);
      return true;
    });

  const config = await readFile(join(dir, 'adapter_config.json'), 'utf8');
  await rm(join(dir, 'adapter_config.json'));
  await expectFormat(/a: no adapter_config\.json \(not a PEFT adapter folder\)$/);
  await put(dir, 'adapter_config.json', config);

  await rm(join(dir, 'adapter_model.safetensors'));
  await expectFormat(/a: no adapter_model\.safetensors$/);

  const q = modules[0]!;
  await writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    [
      { name: `base_model.model.${q.module}.lora_A.weight`, dtype: 'F32', shape: [4, 16] },
      { name: `base_model.model.${q.module}.lora_B.weight`, dtype: 'F32', shape: [16, 3] },
    ],
    (s) => new Float32Array(s.shape[0]! * s.shape[1]!),
  );
  await expectFormat(
    /adapter_model\.safetensors: key "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight" has shape \[16, 3\] but ".*lora_A\.weight" has rank 4: expected \[16, 4\]/,
  );

  await writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    [
      { name: `base_model.model.${q.module}.lora_A.weight`, dtype: 'F32', shape: [2, 16] },
      { name: `base_model.model.${q.module}.lora_B.weight`, dtype: 'F32', shape: [16, 2] },
    ],
    (s) => new Float32Array(s.shape[0]! * s.shape[1]!),
  );
  await expectFormat(/key ".*q_proj\.lora_A\.weight" has rank 2 but adapter_config\.json gives this module r = 4/);

  await writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    [{ name: `base_model.model.${q.module}.lora_A.weight`, dtype: 'F32', shape: [4, 16] }],
    () => new Float32Array(64),
  );
  await expectFormat(/module "model\.layers\.0\.self_attn\.q_proj" has A but no B factor/);

  await writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    [{ name: 'model.norm.weight', dtype: 'F32', shape: [4] }],
    () => new Float32Array(4),
  );
  await expectFormat(/key "model\.norm\.weight" does not start with "base_model\.model\."/);

  await put(dir, 'adapter_config.json', '{"peft_type": "IA3", "r": 4}');
  await expectFormat(/peft_type is "IA3", not "LORA"/);

  const empty = join(dir, 'empty');
  await mkdir(empty);
  await assert.rejects(
    readAdapter(empty),
    (err: unknown) => err instanceof FormatError && /empty: no adapter_config\.json/.test(err.message),
  );
});
