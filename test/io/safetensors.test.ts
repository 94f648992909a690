import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { DTYPE_SIZE, type DType, decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../../src/io/dtypes.js';
import { readExactly } from '../../src/io/safetensors-reader.js';
import { type TensorSpec, writeSafetensors } from '../../src/io/safetensors-writer.js';
import { bytesOf, independentRead, scratch } from './helpers.js';

const ALL: DType[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

test('a file built byte by byte from the format description equals what the writer writes', async () => {
  const dir = await scratch();
  const file = join(dir, 'hand.safetensors');
  await writeSafetensors(
    file,
    [
      { name: 'a', dtype: 'F32', shape: [2] },
      { name: 'b', dtype: 'U8', shape: [3] },
    ],
    (s) => (s.name === 'a' ? new Float32Array([1, -2]) : new Uint8Array([7, 8, 9])),
    { metadata: { format: 'pt' } },
  );
  const json =
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
  const expected = [
    ...[padded.length, 0, 0, 0, 0, 0, 0, 0],
    ...[...padded].map((c) => c.charCodeAt(0)),
    ...[0x00, 0x00, 0x80, 0x3f], // 1.0f little-endian
    ...[0x00, 0x00, 0x00, 0xc0], // -2.0f
    ...[7, 8, 9],
  ];
  assert.ok(padded.length < 256);
  assert.deepEqual([...(await readFile(file))], expected);
});

test('every dtype round-trips byte for byte through the writer, the independent reader and openCheckpoint', async () => {
  const dir = await scratch();
  const file = join(dir, 'all.safetensors');
  const specs: TensorSpec[] = ALL.map((dtype, i) => ({ name: `t.${dtype}`, dtype, shape: [3, i + 1] }));
  specs.push({ name: 'empty', dtype: 'F32', shape: [0, 5] }, { name: 'scalar', dtype: 'F16', shape: [] });
  const data = specs.map((s, i) => bytesOf(s.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[s.dtype], i + 1));
  await writeSafetensors(file, specs, (_s, i) => data[i]!, { metadata: { note: 'x', format: 'pt' } });

  const raw = new Uint8Array(await readFile(file));
  const ind = independentRead(raw);
  assert.equal((8 + ind.headerLength) % 8, 0, 'data starts 8-byte aligned');
  assert.deepEqual(ind.header.__metadata__, { note: 'x', format: 'pt' });
  assert.equal(
    raw.byteLength,
    8 + ind.headerLength + data.reduce((a, d) => a + d.byteLength, 0),
    'no padding in the data section',
  );
  specs.forEach((s, i) => {
    const t = ind.tensors.get(s.name)!;
    assert.equal(t.dtype, s.dtype);
    assert.deepEqual(t.shape, s.shape);
    assert.deepEqual(t.bytes, data[i]);
  });

  const ckpt = await openCheckpoint(file);
  try {
    assert.deepEqual(ckpt.metadata, { note: 'x', format: 'pt' });
    assert.deepEqual(
      ckpt.tensors.map((t) => t.name),
      specs.map((s) => s.name),
      'tensors in file order',
    );
    for (const [i, s] of specs.entries()) {
      assert.deepEqual(await ckpt.readRaw(s.name), data[i], s.name);
      assert.deepEqual(ckpt.info(s.name).shape, s.shape);
    }
  } finally {
    await ckpt.close();
  }
});

test('float sources are narrowed by the writer and widened by readFloat32 exactly as the codecs do', async () => {
  const dir = await scratch();
  const file = join(dir, 'f.safetensors');
  const n = 1000;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 10 ** ((i % 9) - 4));
  x[0] = Infinity;
  x[1] = -Infinity;
  x[2] = NaN;
  const dtypes = ['F64', 'F32', 'F16', 'BF16'] as const;
  await writeSafetensors(
    file,
    dtypes.map((dtype) => ({ name: dtype, dtype, shape: [n] })),
    () => x,
  );
  const ckpt = await openCheckpoint(file);
  try {
    const expected = {
      F64: x,
      F32: x,
      F16: decodeF16(encodeF16(x)),
      BF16: decodeBf16(encodeBf16(x)),
    };
    const reused = new Float32Array(n + 10).fill(-7);
    for (const d of dtypes) {
      const got = await ckpt.readFloat32(d);
      assert.equal(got.length, n);
      assert.deepEqual(got, expected[d], d);
      const view = await ckpt.readFloat32(d, reused);
      assert.equal(view.buffer, reused.buffer, 'a view of the given array');
      assert.deepEqual(view, expected[d], `${d} into a reused array`);
      assert.equal(reused[n], -7, 'nothing written past numel');
    }
    await assert.rejects(
      ckpt.readFloat32('F32', new Float32Array(n - 1)),
      /has 1000 values but the output array holds 999/,
    );
    const ints = await (async () => {
      const f = join(dir, 'i.safetensors');
      await writeSafetensors(
        f,
        [{ name: 'i', dtype: 'I64', shape: [3] }],
        () => new Uint8Array(BigInt64Array.from([-5n, 0n, 1n << 40n]).buffer),
      );
      const c = await openCheckpoint(f);
      try {
        return await c.readFloat32('i');
      } finally {
        await c.close();
      }
    })();
    assert.deepEqual([...ints], [-5, 0, 2 ** 40]);
  } finally {
    await ckpt.close();
  }
});

test('a 131 MB bf16 tensor is read with positioned reads and widened in place', async () => {
  const dir = await scratch();
  const file = join(dir, 'big.safetensors');
  const rows = 32000;
  const cols = 2048;
  const row = Float32Array.from({ length: cols }, (_, j) => (j - 1024) / 512);
  await writeSafetensors(
    file,
    [
      { name: 'small', dtype: 'F32', shape: [1] },
      { name: 'embed', dtype: 'BF16', shape: [rows, cols] },
    ],
    (s) => {
      if (s.name === 'small') return new Float32Array([5]);
      const out = new Uint16Array(rows * cols);
      const enc = encodeBf16(row);
      for (let i = 0; i < rows; i++) out.set(enc, i * cols);
      out[rows * cols - 1] = 0x3f80 + (rows % 7);
      return new Uint8Array(out.buffer);
    },
  );
  const stored = decodeBf16(encodeBf16(row));
  const ckpt = await openCheckpoint(file);
  try {
    const w = await ckpt.readFloat32('embed');
    assert.equal(w.length, rows * cols);
    for (const i of [0, 1, 12345, rows - 1])
      for (const j of [0, 1, 1024, 2000])
        if (i * cols + j < rows * cols - 1) assert.equal(w[i * cols + j], stored[j], `[${i}, ${j}]`);
    assert.equal(w[rows * cols - 1], decodeBf16(new Uint16Array([0x3f80 + (rows % 7)]))[0]);
    assert.deepEqual([...(await ckpt.readFloat32('small'))], [5]);
  } finally {
    await ckpt.close();
  }
});

test('readExactly loops over short reads until every byte arrives', async () => {
  const source = bytesOf(1000, 3);
  let calls = 0;
  const handle = {
    async read(buf: Uint8Array, offset: number, length: number, position: number) {
      calls++;
      const k = Math.min(7, length, source.byteLength - position);
      buf.set(source.subarray(position, position + k), offset);
      return { bytesRead: k, buffer: buf };
    },
  } as unknown as FileHandle;
  const got = await readExactly(handle, 900, 50, () => 'x');
  assert.deepEqual(got, source.subarray(50, 950));
  assert.equal(calls, Math.ceil(900 / 7));
  await assert.rejects(
    readExactly(handle, 100, 950, () => 'f.safetensors: tensor "t"'),
    /f\.safetensors: tensor "t": the file ended after 1,000 bytes/,
  );
});
