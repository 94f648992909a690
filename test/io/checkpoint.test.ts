import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeltarankError, FormatError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import {
  planShards,
  specByteLength,
  type TensorSpec,
  writeCheckpoint,
  writeSafetensors,
} from '../../src/io/safetensors-writer.js';
import { independentRead, listing, put, scratch } from './helpers.js';

const specs: TensorSpec[] = [
  { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [64, 16] },
  { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'BF16', shape: [16, 16] },
  { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [40, 16] },
  { name: 'model.layers.0.input_layernorm.weight', dtype: 'F32', shape: [16] },
  { name: 'model.layers.1.self_attn.q_proj.weight', dtype: 'BF16', shape: [16, 16] },
  { name: 'model.layers.1.mlp.up_proj.weight', dtype: 'BF16', shape: [40, 16] },
  { name: 'lm_head.weight', dtype: 'BF16', shape: [64, 16] },
];
/** Values exactly representable in bf16, distinct per tensor. */
const valuesOf = (s: TensorSpec, i: number) =>
  Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, j) => (((j % 127) - 63) / 64) * 2 ** i);

test('writeCheckpoint shards by count, writes the Hugging Face index, and openCheckpoint reads it back from the folder or the index', async () => {
  const dir = join(await scratch(), 'ckpt');
  const { files, index } = await writeCheckpoint(dir, specs, (s, i) => valuesOf(s, i), {
    shards: 3,
    metadata: { format: 'pt' },
  });
  assert.deepEqual(await listing(dir), [
    'model-00001-of-00003.safetensors',
    'model-00002-of-00003.safetensors',
    'model-00003-of-00003.safetensors',
    'model.safetensors.index.json',
  ]);
  assert.deepEqual(
    files.map((f) => f.slice(dir.length + 1)),
    (await listing(dir)).slice(0, 3),
  );
  const indexJson = JSON.parse(await readFile(index!, 'utf8')) as {
    metadata: { total_size: number };
    weight_map: Record<string, string>;
  };
  const total = specs.reduce((a, s) => a + specByteLength(s), 0);
  assert.equal(indexJson.metadata.total_size, total);
  assert.deepEqual(
    Object.keys(indexJson.weight_map),
    specs.map((s) => s.name),
  );
  // Independent reading of each shard agrees with the index, and shard sizes are even up to one tensor.
  const perShard: number[] = [];
  for (const f of files) {
    const ind = independentRead(new Uint8Array(await readFile(f)));
    let bytes = 0;
    for (const [name, t] of ind.tensors) {
      assert.equal(indexJson.weight_map[name], f.slice(dir.length + 1));
      bytes += t.bytes.byteLength;
    }
    perShard.push(bytes);
  }
  const largest = Math.max(...specs.map(specByteLength));
  for (const b of perShard) assert.ok(Math.abs(b - total / 3) <= largest, `shard sizes ${perShard} vs ${total / 3}`);

  for (const path of [dir, index!]) {
    const ckpt = await openCheckpoint(path);
    try {
      assert.deepEqual(ckpt.files, files);
      assert.deepEqual(ckpt.metadata, { format: 'pt' });
      assert.deepEqual(
        ckpt.tensors.map((t) => t.name),
        specs.map((s) => s.name),
      );
      for (const [i, s] of specs.entries()) assert.deepEqual(await ckpt.readFloat32(s.name), valuesOf(s, i), s.name);
      assert.equal(ckpt.has('lm_head.weight'), true);
      assert.equal(ckpt.has('nope'), false);
      assert.throws(
        () => ckpt.info('nope'),
        (err: unknown) => err instanceof FormatError && /no tensor "nope"/.test(err.message),
      );
    } finally {
      await ckpt.close();
    }
  }
});

test('maxShardBytes caps shards without splitting a tensor; one shard is a plain model.safetensors', async () => {
  const groups = planShards(specs, { maxShardBytes: 2100 });
  for (const g of groups) {
    const bytes = g.reduce((a, s) => a + specByteLength(s), 0);
    assert.ok(bytes <= 2100 || g.length === 1, `shard of ${bytes} bytes`);
  }
  assert.deepEqual(groups.flat(), specs, 'order kept, nothing lost');
  assert.deepEqual(
    groups.map((g) => g.length),
    [1, 3, 2, 1],
  );
  const dir = join(await scratch(), 'one');
  const { files, index } = await writeCheckpoint(dir, specs, (s, i) => valuesOf(s, i), { maxShardBytes: 1e9 });
  assert.equal(index, undefined);
  assert.deepEqual(await listing(dir), ['model.safetensors']);
  assert.equal(files.length, 1);
  const ckpt = await openCheckpoint(dir);
  await ckpt.close();
  assert.equal(ckpt.tensors.length, specs.length);
  assert.throws(() => planShards(specs, { shards: 8 }), /cannot split 7 tensors into 8 shards/);
});

test('a folder resolves to its index, its model.safetensors or its only .safetensors file, else fails clearly', async () => {
  const dir = await scratch();
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), [specs[3]!], () => new Float32Array(16));
  let ckpt = await openCheckpoint(dir);
  assert.equal(ckpt.files[0], join(dir, 'adapter_model.safetensors'));
  await ckpt.close();
  await writeSafetensors(join(dir, 'other.safetensors'), [specs[3]!], () => new Float32Array(16));
  await assert.rejects(
    openCheckpoint(dir),
    /several \.safetensors files \(adapter_model\.safetensors, other\.safetensors\) but no index/,
  );
  await writeSafetensors(join(dir, 'model.safetensors'), [specs[1]!], () => new Float32Array(256));
  ckpt = await openCheckpoint(dir);
  assert.deepEqual(
    ckpt.tensors.map((t) => t.name),
    [specs[1]!.name],
  );
  await ckpt.close();
  const empty = await scratch();
  await put(empty, 'config.json', '{}');
  await assert.rejects(
    openCheckpoint(empty),
    (err: unknown) =>
      err instanceof FormatError && /no \.safetensors file and no model\.safetensors\.index\.json/.test(err.message),
  );
  await put(empty, 'pytorch_model.bin', 'not read');
  await assert.rejects(
    openCheckpoint(empty),
    (err: unknown) =>
      err instanceof FormatError && /found pytorch_model\.bin: PyTorch pickle files are not read/.test(err.message),
  );
  await assert.rejects(
    openCheckpoint(join(empty, 'missing.safetensors')),
    (err: unknown) =>
      err instanceof DeltarankError && err.message === `${join(empty, 'missing.safetensors')}: no such file or folder`,
  );
});
