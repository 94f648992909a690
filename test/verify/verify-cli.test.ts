/**
 * `verify` on a synthetic pair, no Python needed: --tokens input, the JSON document's fields and
 * invariants, the adapter's exact recovery of a planted low-rank ΔW, and the one-line refusals.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FormatError, UsageError } from '../../src/errors.js';
import { runCli } from '../helpers/run-cli.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-verify-cli-'));
  await runCli(['synth', '--shape', 'tiny', '--out', join(dir, 'pair'), '--dtype', 'f32', '--quiet']);
  await runCli([
    'extract',
    join(dir, 'pair', 'base'),
    join(dir, 'pair', 'tuned'),
    '--out',
    join(dir, 'lora'),
    '--rank',
    '2',
    '--quiet',
  ]);
  const seqs = Array.from({ length: 3 }, (_, s) => Array.from({ length: 40 }, (_, t) => (s * 97 + t * 31) % 256));
  await writeFile(join(dir, 'ids.json'), JSON.stringify(seqs));
});
after(() => rm(dir, { recursive: true, force: true }));

const args = () => [
  join(dir, 'pair', 'base'),
  join(dir, 'pair', 'tuned'),
  join(dir, 'lora'),
  '--tokens',
  join(dir, 'ids.json'),
];

test('verify --tokens --json: every figure present and consistent', async () => {
  const r = JSON.parse((await runCli(['verify', ...args(), '--json', '--seq-len', '16'])).stdout);
  // 3 sequences of 40 cut into pieces of ≤ 16: 16 + 16 + 8 each.
  assert.equal(r.tokens, 120);
  assert.equal(r.sequences, 9);
  assert.ok(r.kl.base > 0 && r.kl.adapter >= 0 && r.kl.adapter < r.kl.base, JSON.stringify(r.kl));
  assert.ok(r.kl.adapterStdErr >= 0 && r.kl.baseStdErr > 0);
  assert.ok(r.top1.adapter >= r.top1.base && r.top1.adapter <= 1);
  for (const k of ['base', 'tuned', 'adapter'])
    assert.ok(r.perplexity[k] > 1 && r.perplexity[k] <= 256 * 1.5, `${k}: ${r.perplexity[k]}`);
  assert.ok(r.recovered > 0.5 && r.recovered <= 1, String(r.recovered));
  assert.equal(r.layers.length, 2);
  assert.equal(r.perPosition.adapter.length, 16);
  assert.equal(r.input.seqLen, 16);
});

test('the logit lens after the last layer on every token is the model KL itself', async () => {
  const r = JSON.parse((await runCli(['verify', ...args(), '--json', '--layer-kl', '120'])).stdout);
  const last = r.layers[r.layers.length - 1];
  assert.ok(
    Math.abs(last.klAdapter - r.kl.adapter) <= 1e-9 + 1e-6 * r.kl.adapter,
    `${last.klAdapter} vs ${r.kl.adapter}`,
  );
  assert.ok(Math.abs(last.klBase - r.kl.base) <= 1e-6 * r.kl.base, `${last.klBase} vs ${r.kl.base}`);
  assert.ok(r.layers[0].klBase > 0);
  const none = JSON.parse((await runCli(['verify', ...args(), '--json', '--layer-kl', '0'])).stdout);
  assert.equal(none.layers[0].klAdapter, undefined);
});

test('verify --max-tokens keeps to the budget and says what it left out', async () => {
  const r = JSON.parse((await runCli(['verify', ...args(), '--json', '--max-tokens', '50'])).stdout);
  assert.equal(r.tokens, 50);
  assert.equal(r.input.dropped, 70);
});

test('verify refuses no input, and a model it does not run, in one line', async () => {
  await assert.rejects(
    runCli(['verify', join(dir, 'pair', 'base'), join(dir, 'pair', 'tuned'), join(dir, 'lora')]),
    (e: Error) => e instanceof UsageError && /--text FILE and --tokens FILE/.test(e.message),
  );
  const config = join(dir, 'pair', 'base', 'config.json');
  const saved = await readFile(config, 'utf8');
  try {
    await writeFile(config, JSON.stringify({ ...JSON.parse(saved), model_type: 'falcon' }));
    await assert.rejects(
      runCli(['verify', ...args()]),
      (e: Error) => e instanceof FormatError && /model_type "falcon" is not supported/.test(e.message),
    );
  } finally {
    await writeFile(config, saved);
  }
  await writeFile(join(dir, 'bad.json'), '[[1, 2], "x"]');
  await assert.rejects(
    runCli([
      'verify',
      join(dir, 'pair', 'base'),
      join(dir, 'pair', 'tuned'),
      join(dir, 'lora'),
      '--tokens',
      join(dir, 'bad.json'),
    ]),
    FormatError,
  );
});
