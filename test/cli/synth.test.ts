import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/index.js';
import type { SynthManifest } from '../../src/synth/index.js';
import { runCli } from '../helpers/run-cli.js';
import { scratch } from '../io/helpers.js';

test('synth --json writes the pair and reports what it wrote', async () => {
  const out = join(await scratch(), 'pair');
  const { stdout } = await runCli([
    'synth',
    '--shape',
    'tiny',
    '--out',
    out,
    '--dtype',
    'f16',
    '--shards',
    '2',
    '--seed',
    '5',
    '--json',
  ]);
  const doc = JSON.parse(stdout) as {
    schemaVersion: number;
    base: string;
    tuned: string;
    dtype: string;
    shards: number;
    seed: number;
    tensors: number;
    parameters: number;
    bytesPerSide: number;
  };
  assert.equal(doc.schemaVersion, 1);
  assert.equal(doc.dtype, 'F16');
  assert.equal(doc.seed, 5);
  const manifest = JSON.parse(await readFile(join(out, 'synth.json'), 'utf8')) as SynthManifest;
  assert.equal(manifest.seed, 5);
  assert.equal(manifest.shards, 2);
  for (const side of [doc.base, doc.tuned]) {
    const ckpt = await openCheckpoint(side);
    try {
      assert.equal(ckpt.files.length, 2);
      assert.equal(ckpt.tensors.length, doc.tensors);
      assert.equal(
        ckpt.tensors.reduce((a, t) => a + t.byteLength, 0),
        doc.bytesPerSide,
      );
      assert.equal(
        ckpt.tensors.reduce((a, t) => a + t.byteLength / 2, 0),
        doc.parameters,
      );
      assert.ok(ckpt.tensors.every((t) => t.dtype === 'F16'));
    } finally {
      await ckpt.close();
    }
  }
  const config = JSON.parse(await readFile(join(out, 'tuned', 'config.json'), 'utf8')) as { torch_dtype: string };
  assert.equal(config.torch_dtype, 'float16');
  await assert.rejects(
    runCli(['synth', '--shape', 'tiny', '--out', out]),
    (err: unknown) => err instanceof UsageError && /already exists; pass --force/.test(err.message),
  );
  const { stdout: again } = await runCli(['synth', '--shape', 'tiny', '--out', out, '--force', '--quiet']);
  assert.match(again, /^wrote .*base and .*tuned \(\d[\d,]* parameters, [\d.]+ kB a side\) and .*synth\.json\n$/);
});

test('synth refuses bad flags with a UsageError', async () => {
  const out = join(await scratch(), 'x');
  await assert.rejects(
    runCli(['synth', '--shape', 'huge', '--out', out]),
    (err: unknown) => err instanceof UsageError && /Invalid values/.test(err.message),
  );
  await assert.rejects(
    runCli(['synth', '--shape', 'tiny', '--out', out, '--shards', '0']),
    (err: unknown) => err instanceof UsageError && /--shards must be a positive integer, got "0"/.test(err.message),
  );
  await assert.rejects(
    runCli(['synth', '--shape', 'tiny']),
    (err: unknown) => err instanceof UsageError && /Missing required argument: out/.test(err.message),
  );
});
