/**
 * The forward pass against transformers (and PEFT for adapters): tiny random models of every
 * supported family, built and run in Python, logits compared to 1e-4 relative.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FormatError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/index.js';
import { type ForwardVariant, loadAdapter, readModelArch, runDecoder } from '../../src/model/index.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./build_models.py', import.meta.url));
let dir = '';
let built: { families: Record<string, string>; tokens: number[][] } | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-forward-'));
  if (!NO_PYTHON) built = await runPython(SCRIPT, [dir]);
});
after(() => rm(dir, { recursive: true, force: true }));

/** max |a − b| / max |b|: the error relative to the logits' scale. */
function relMax(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

async function logitsOf(family: string, variant: Omit<ForwardVariant, 'checkpoint'>): Promise<Float32Array> {
  const folder = join(dir, family);
  const arch = await readModelArch(folder);
  const ckpt = await openCheckpoint(folder);
  try {
    const run = await runDecoder(arch, [{ checkpoint: ckpt, ...variant }], built!.tokens);
    const n = run.starts[run.starts.length - 1]!;
    return (await run.logits(0, 0, n)).data;
  } finally {
    await ckpt.close();
  }
}

const FAMILIES = ['llama', 'llama-rope3', 'mistral', 'qwen2', 'qwen2-lora-bias', 'qwen3', 'gemma2', 'gemma3', 'phi3'];
for (const family of FAMILIES) {
  test(`${family}: logits equal transformers' (base, adapter unmerged, adapter merged)`, {
    skip: NO_PYTHON,
  }, async () => {
    const expected = await openCheckpoint(join(dir, `${family}-expected.safetensors`));
    try {
      const base = await expected.readFloat32('base');
      const withAdapter = await expected.readFloat32('adapter');
      const adapter = await loadAdapter(join(dir, `${family}-lora`));
      const got = await logitsOf(family, {});
      assert.ok(relMax(got, base) < 1e-4, `base: relative error ${relMax(got, base)}`);
      const unmerged = await logitsOf(family, { adapter });
      assert.ok(relMax(unmerged, withAdapter) < 1e-4, `adapter: relative error ${relMax(unmerged, withAdapter)}`);
      // The adapter must matter, or the check above proves nothing about it.
      assert.ok(
        relMax(base, withAdapter) > 1e-2,
        `the adapter changes the logits by only ${relMax(base, withAdapter)}`,
      );
      const merged = await logitsOf(family, { adapter, merge: true });
      assert.ok(relMax(merged, withAdapter) < 1e-4, `merged: relative error ${relMax(merged, withAdapter)}`);
    } finally {
      await expected.close();
    }
  });
}

test('another model_type is refused in one line naming it', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'deltarank-arch-'));
  try {
    await writeFile(join(folder, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 32 }));
    await assert.rejects(
      readModelArch(folder),
      (err: Error) =>
        err instanceof FormatError &&
        /model_type "gpt2" is not supported/.test(err.message) &&
        !err.message.includes('\n'),
    );
    await writeFile(
      join(folder, 'config.json'),
      JSON.stringify({
        model_type: 'llama',
        hidden_size: 8,
        num_attention_heads: 2,
        num_hidden_layers: 1,
        intermediate_size: 8,
        vocab_size: 8,
        rope_scaling: { rope_type: 'yarn', factor: 4 },
      }),
    );
    await assert.rejects(
      readModelArch(folder),
      (err: Error) => err instanceof FormatError && /rope_type "yarn" is not supported/.test(err.message),
    );
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});
