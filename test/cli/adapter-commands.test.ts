import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type LoraModule, writeAdapter, writeSafetensors } from '../../src/io/index.js';
import { seq } from '../helpers/lora.js';
import { runCli } from '../helpers/run-cli.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("analyze BASE --adapter DORA: the change W' − W with the base, one usage line without it; bad config fields and --max-rank one line each", async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-cli-adapter-'));
  const q: LoraModule = {
    module: 'model.q_proj',
    kind: 'linear',
    rank: 2,
    alpha: 4,
    a: seq(12, 0.7),
    b: seq(10, 1.3),
    inFeatures: 6,
    outFeatures: 5,
    magnitude: seq(5, 0.2).map((v) => 2 + v),
  };
  await writeSafetensors(
    join(d, 'model.safetensors'),
    [{ name: 'model.q_proj.weight', dtype: 'F32', shape: [5, 6] }],
    () => seq(30, 0.3),
  );
  await writeAdapter(join(d, 'dora'), { modules: [q], dtype: 'F32' });

  const { stdout } = await runCli(['analyze', join(d, 'model.safetensors'), '--adapter', join(d, 'dora'), '--json']);
  const doc = JSON.parse(stdout);
  assert.equal(doc.adapter, join(d, 'dora'));
  const t = doc.tensors[0];
  assert.equal(t.name, 'model.q_proj.weight');
  // DoRA's change is not of the adapter's rank 2: every output row is rescaled.
  assert.ok(
    t.singularValues.length === 5 && t.singularValues[2] > 1e-3 * t.singularValues[0],
    JSON.stringify(t.singularValues),
  );
  assert.ok(t.baseNorm > 0 && t.relativeUpdate > 0);

  const noBase = run('analyze', '--adapter', join(d, 'dora'));
  assert.equal(noBase.status, 2, noBase.stderr);
  assert.match(
    noBase.stderr,
    /^deltarank: .*dora: a DoRA adapter \(use_dora\).*give the base, as in `analyze BASE --adapter /,
  );
  assert.doesNotMatch(noBase.stderr, /\n\s+at /);

  const config = JSON.parse(await readFile(join(d, 'dora', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(d, 'dora', 'adapter_config.json'), JSON.stringify({ ...config, use_qalora: true }));
  const qalora = run('merge', join(d, 'model.safetensors'), join(d, 'dora'), '--out', join(d, 'never'));
  assert.equal(qalora.status, 3, qalora.stderr);
  assert.equal(qalora.stderr.trim().split('\n').length, 1, qalora.stderr);
  assert.match(qalora.stderr, /"use_qalora" is set/);

  await assert.rejects(
    runCli(['resize', join(d, 'dora'), '--out', join(d, 'r'), '--rank', '1', '--max-rank', '0']),
    /--max-rank must be a positive integer, got "0"/,
  );
});

test('merge: a resized vocabulary says so and sets vocab_size; tied copies that differ are one line, exit 3', async () => {
  const d = await mkdtemp(join(tmpdir(), 'deltarank-cli-adapter-'));
  await writeSafetensors(
    join(d, 'model.safetensors'),
    [{ name: 'transformer.wte.weight', dtype: 'F32', shape: [6, 4] }],
    () => seq(24, 0.3),
  );
  await writeFile(
    join(d, 'config.json'),
    JSON.stringify({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      tie_word_embeddings: true,
      vocab_size: 6,
    }),
  );
  const tuned = seq(32, 0.7);
  const whole = (data: Float32Array) =>
    ['transformer.wte.weight', 'lm_head.weight'].map((name, i) => ({
      name,
      dtype: 'F32' as const,
      shape: [8, 4],
      data: i === 0 ? tuned : data,
    }));
  await writeAdapter(join(d, 'same'), {
    modules: [],
    fullWeights: whole(tuned.slice()),
    dtype: 'F32',
    extraConfig: { ensure_weight_tying: true },
  });
  const { stdout } = await runCli(['merge', d, join(d, 'same'), '--out', join(d, 'm')]);
  assert.match(stdout, /^tied to the embeddings the base stores, so written as them: lm_head\.weight$/m);
  assert.match(stdout, /^vocabulary resized 6 → 8 \(config\.json vocab_size updated\)$/m);
  assert.equal(JSON.parse(await readFile(join(d, 'm', 'config.json'), 'utf8')).vocab_size, 8);

  await writeAdapter(join(d, 'differ'), {
    modules: [],
    fullWeights: whole(seq(32, 0.9)),
    dtype: 'F32',
    extraConfig: { ensure_weight_tying: true },
  });
  const r = run('merge', d, join(d, 'differ'), '--out', join(d, 'never'));
  assert.equal(r.status, 3, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /"lm_head\.weight" and transformer\.wte\.weight with different values/);
});
