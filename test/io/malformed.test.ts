import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FormatError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { MAX_HEADER_BYTES } from '../../src/io/safetensors-reader.js';
import { buildFile, put, scratch } from './helpers.js';

const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

async function rejects(bytes: Uint8Array, pattern: RegExp, name = 'model.safetensors'): Promise<void> {
  const dir = await scratch();
  const file = await put(dir, name, bytes);
  await assert.rejects(openCheckpoint(file), (err: unknown) => {
    assert.ok(err instanceof FormatError, `expected a FormatError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a file shorter than 8 bytes', () =>
  rejects(new Uint8Array(5), /^model\.safetensors: the file has 5 bytes, shorter than the 8-byte header length/));

test('a header length past the end of the file', () =>
  rejects(
    buildFile(ok, new Uint8Array(8), 5000n),
    /^model\.safetensors: header length 5,000 bytes runs past the end of the file \(70 bytes\)/,
  ));

test('a header length above the cap', () =>
  rejects(
    buildFile(ok, new Uint8Array(8), BigInt(MAX_HEADER_BYTES) + 1n),
    /header length 100,000,001 bytes is above the cap of 100,000,000/,
  ));

test('a header length near 2^64 does not overflow', () =>
  rejects(
    buildFile(ok, new Uint8Array(8), 2n ** 64n - 1n),
    /header length 18,446,744,073,709,551,615 bytes is above the cap/,
  ));

test('a header that is not UTF-8', () => {
  const bytes = buildFile('{"a":1}');
  bytes[10] = 0xff;
  return rejects(bytes, /^model\.safetensors: the header is not valid UTF-8$/);
});

test('a header that is not JSON', () =>
  rejects(buildFile('{"a": {'), /^model\.safetensors: the header is not valid JSON/));

test('a header that is JSON but not an object', async () => {
  await rejects(buildFile('[1, 2]'), /the header is JSON but not an object \(got an array\)/);
  await rejects(buildFile('42'), /the header is JSON but not an object \(got number\)/);
  await rejects(buildFile('null'), /not an object \(got null\)/);
});

test('an unknown dtype', () =>
  rejects(
    buildFile({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
    /^model\.safetensors: tensor "w": unknown dtype "F8_E4M3"/,
  ));

test('a shape that is not a list of non-negative integers', async () => {
  for (const shape of [[-1], [1.5], '3', [2, null], null]) {
    await rejects(
      buildFile({ w: { dtype: 'U8', shape, data_offsets: [0, 2] } }, new Uint8Array(2)),
      /tensor "w": shape .* is not a list of non-negative integers/,
    );
  }
});

test('data_offsets reversed', () =>
  rejects(
    buildFile({ w: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)),
    /tensor "w": data_offsets \[4, 0\] are reversed/,
  ));

test('data_offsets not a pair of integers', () =>
  rejects(
    buildFile({ w: { dtype: 'U8', shape: [1], data_offsets: [0] } }, new Uint8Array(1)),
    /tensor "w": data_offsets \[0\] is not a pair of non-negative integers/,
  ));

test('data_offsets past the end of the file', () => {
  const header = JSON.stringify({ 'lm_head.weight': { dtype: 'F32', shape: [4], data_offsets: [0, 16] } });
  return rejects(
    buildFile(header, new Uint8Array(8)),
    new RegExp(
      `^model\\.safetensors: tensor "lm_head\\.weight" ends at byte ${8 + header.length + 16} but the file has ${8 + header.length + 8}$`,
    ),
  );
});

test('tensors that overlap', () =>
  rejects(
    buildFile(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(12),
    ),
    /tensor "b" \(bytes 4–12 of the data section\) overlaps tensor "a", which ends at 8/,
  ));

test('data_offsets that do not match shape × item size', () =>
  rejects(
    buildFile({ w: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 10] } }, new Uint8Array(10)),
    /tensor "w": data_offsets span 10 bytes but shape \[2, 3\] of BF16 needs 12/,
  ));

test('a gap between tensors and trailing bytes are refused', async () => {
  await rejects(
    buildFile(
      { a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] } },
      new Uint8Array(6),
    ),
    /tensor "b" starts at byte 4 of the data section, leaving a gap after byte 2/,
  );
  await rejects(
    buildFile(ok, new Uint8Array(12)),
    /the tensors cover 8 bytes of the data section but it has 12 \(trailing bytes\)/,
  );
});

test('__metadata__ must map strings to strings', () =>
  rejects(
    buildFile({ __metadata__: { step: 5 }, ...ok }, new Uint8Array(8)),
    /__metadata__ key "step" is 5, not a string/,
  ));

test('an index naming a missing shard', async () => {
  const dir = await scratch();
  await put(dir, 'model-00001-of-00002.safetensors', buildFile(ok, new Uint8Array(8)));
  const index = await put(
    dir,
    'model.safetensors.index.json',
    JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
  );
  for (const path of [index, dir]) {
    await assert.rejects(openCheckpoint(path), (err: unknown) => {
      assert.ok(err instanceof FormatError);
      assert.match(
        err.message,
        /^model\.safetensors\.index\.json: names shard "model-00002-of-00002\.safetensors", which does not exist in /,
      );
      return true;
    });
  }
});

test('an index naming a tensor absent from its shard', async () => {
  const dir = await scratch();
  await put(dir, 'model-00001-of-00001.safetensors', buildFile(ok, new Uint8Array(8)));
  await put(
    dir,
    'model.safetensors.index.json',
    JSON.stringify({
      weight_map: { a: 'model-00001-of-00001.safetensors', 'lm_head.weight': 'model-00001-of-00001.safetensors' },
    }),
  );
  await assert.rejects(openCheckpoint(dir), (err: unknown) => {
    assert.ok(err instanceof FormatError);
    assert.equal(
      err.message,
      'model.safetensors.index.json: maps tensor "lm_head.weight" to shard "model-00001-of-00001.safetensors", which does not hold it',
    );
    return true;
  });
});

test('an index without weight_map, or naming a path outside its folder', async () => {
  const dir = await scratch();
  const a = await put(dir, 'a.safetensors.index.json', '{"metadata": {}}');
  await assert.rejects(
    openCheckpoint(a),
    (err: unknown) =>
      err instanceof FormatError && /a\.safetensors\.index\.json: no "weight_map" object/.test(err.message),
  );
  const b = await put(dir, 'b.safetensors.index.json', JSON.stringify({ weight_map: { w: '../x.safetensors' } }));
  await assert.rejects(
    openCheckpoint(b),
    (err: unknown) =>
      err instanceof FormatError && /tensor "w" maps to "\.\.\/x\.safetensors", not a file name/.test(err.message),
  );
});

test('a tensor stored in two shards', async () => {
  const dir = await scratch();
  await put(dir, 's1.safetensors', buildFile(ok, new Uint8Array(8)));
  await put(
    dir,
    's2.safetensors',
    buildFile({ ...ok, c: { dtype: 'U8', shape: [1], data_offsets: [8, 9] } }, new Uint8Array(9)),
  );
  const index = await put(
    dir,
    'model.safetensors.index.json',
    JSON.stringify({ weight_map: { a: 's1.safetensors', c: 's2.safetensors' } }),
  );
  await assert.rejects(openCheckpoint(index), (err: unknown) => {
    assert.ok(err instanceof FormatError);
    assert.equal(err.message, 'tensor "a" is stored twice: in s1.safetensors and in s2.safetensors');
    return true;
  });
});
