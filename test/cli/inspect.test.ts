import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { FormatError } from '../../src/errors.js';
import { type TensorSpec, writeCheckpoint } from '../../src/io/index.js';
import { runCli } from '../helpers/run-cli.js';
import { buildFile, independentRead, put, scratch } from '../io/helpers.js';

const specs: TensorSpec[] = [
  { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [32, 8] },
  { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [8, 8] },
  { name: 'model.norm.weight', dtype: 'F16', shape: [8] },
  { name: 'lm_head.weight', dtype: 'BF16', shape: [32, 8] },
];

test('inspect --json lists every tensor with its shard, and totals that match the files', async () => {
  const dir = join(await scratch(), 'ckpt');
  const { files } = await writeCheckpoint(dir, specs, (s) => new Float32Array(s.shape.reduce((a, b) => a * b, 1)), {
    shards: 2,
  });
  const { stdout, stderr } = await runCli(['inspect', dir, '--json']);
  assert.equal(stderr, '');
  const doc = JSON.parse(stdout) as {
    schemaVersion: number;
    tool: { name: string };
    path: string;
    files: string[];
    tensors: { name: string; dtype: string; shape: number[]; bytes: number; file: string }[];
    totalBytes: number;
    totalParams: number;
  };
  assert.equal(doc.schemaVersion, 1);
  assert.equal(doc.tool.name, 'deltarank');
  assert.equal(doc.path, dir);
  assert.deepEqual(doc.files, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  // Truth from the independent reader: data-section sizes of the shard files, and where each tensor lives.
  let dataBytes = 0;
  const fileOf = new Map<string, string>();
  for (const f of files) {
    const raw = new Uint8Array(await readFile(f));
    const ind = independentRead(raw);
    dataBytes += raw.byteLength - 8 - ind.headerLength;
    for (const name of ind.tensors.keys()) fileOf.set(name, f.slice(dir.length + 1));
  }
  assert.equal(doc.totalBytes, dataBytes);
  assert.equal(doc.totalParams, 32 * 8 * 2 + 64 + 8);
  assert.deepEqual(
    doc.tensors,
    specs.map((s) => ({
      name: s.name,
      dtype: s.dtype,
      shape: s.shape,
      bytes: s.shape.reduce((a, b) => a * b, 1) * { BF16: 2, F32: 4, F16: 2 }[s.dtype as 'BF16'],
      file: fileOf.get(s.name),
    })),
  );
});

test('inspect prints a table with name, dtype, shape, size, shard and a totals line', async () => {
  const dir = join(await scratch(), 'one');
  await writeCheckpoint(dir, specs, (s) => new Float32Array(s.shape.reduce((a, b) => a * b, 1)));
  const { stdout } = await runCli(['inspect', dir]);
  const lines = stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^name\s+dtype\s+shape\s+size\s+shard$/);
  assert.match(
    lines[2]!,
    /^model\.layers\.0\.self_attn\.q_proj\.weight\s+F32\s+\[8, 8\]\s+256 B\s+model\.safetensors$/,
  );
  assert.match(lines[3]!, /^model\.norm\.weight\s+F16\s+\[8\]\s+16 B\s+model\.safetensors$/);
  assert.equal(lines.at(-1), '4 tensors, 584 parameters, 1.3 kB (1,296 bytes) in 1 shard');
});

test('inspect of a malformed file rejects with the FormatError of the reader', async () => {
  const dir = await scratch();
  const file = await put(
    dir,
    'bad.safetensors',
    buildFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)),
  );
  await assert.rejects(
    runCli(['inspect', file]),
    (err: unknown) =>
      err instanceof FormatError &&
      /^bad\.safetensors: tensor "w" ends at byte \d+ but the file has \d+$/.test(err.message),
  );
});

test('the binary prints one line and exits 3 on a malformed file, without a stack trace', async () => {
  const dir = await scratch();
  const file = await put(
    dir,
    'bad.safetensors',
    buildFile('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}', new Uint8Array(8)),
  );
  const bin = join(import.meta.dirname, '..', '..', 'src', 'cli', 'bin.ts');
  const run = spawnSync(process.execPath, ['--import', 'tsx', bin, 'inspect', file], { encoding: 'utf8' });
  assert.equal(run.status, 3, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr, 'deltarank: bad.safetensors: tensor "w": data_offsets [8, 0] are reversed\n');
});
