/**
 * `verify` against transformers on real short fine-tunes: KL, top-1 and perplexity of base,
 * tuned and base + a rank-4 extracted adapter, on held-out text tokenized in TypeScript, equal
 * the figures torch computes on the same tokens (the adapter there formed by torch's own SVD).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/errors.js';
import { loadSequences } from '../../src/model/input.js';
import { CODE, PROSE } from '../../src/train/texts.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';
import { runCli } from '../helpers/run-cli.js';

const SCRIPT = fileURLToPath(new URL('../model/finetune.py', import.meta.url));
const FAMILIES = ['llama', 'gemma2', 'phi3'];
const RANK = 4;
const SEQ = 64;
interface Figures {
  klBase: number;
  klSvd: number;
  top1Base: number;
  top1Svd: number;
  pplBase: number;
  pplTuned: number;
  pplSvd: number;
}
let dir = '';
let ref: (Record<string, Figures> & { tokens: { heldout: number[][] } }) | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-verify-'));
  await writeFile(join(dir, 'texts.json'), JSON.stringify({ prose: PROSE, code: CODE }));
  if (!NO_PYTHON)
    ref = await runPython(SCRIPT, [join(dir, 'texts.json'), dir, FAMILIES.join(','), String(RANK), String(SEQ)]);
});
after(() => rm(dir, { recursive: true, force: true }));

const close = (got: number, want: number, rtol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= rtol * Math.abs(want), `${what}: ${got} vs ${want}`);

test('held-out text tokenizes as the Python tokenizers package does', { skip: NO_PYTHON }, async () => {
  const seqs = await loadSequences({
    text: join(dir, 'heldout.txt'),
    tokenizerFrom: join(dir, 'llama', 'base'),
    seqLen: SEQ,
    maxTokens: 1e9,
  });
  assert.deepEqual(seqs.sequences, ref!.tokens.heldout);
  const capped = await loadSequences({
    text: join(dir, 'heldout.txt'),
    tokenizerFrom: join(dir, 'llama', 'base'),
    seqLen: SEQ,
    maxTokens: 100,
  });
  assert.equal(capped.tokens, 100);
  assert.deepEqual(capped.sequences.flat(), ref!.tokens.heldout.flat().slice(0, 100));
  assert.equal(capped.dropped, seqs.tokens - 100);
  await assert.rejects(loadSequences({ tokenizerFrom: dir }), UsageError);
});

for (const family of FAMILIES) {
  test(`${family}: verify's KL, top-1 and perplexities equal torch's on the same tokens`, {
    skip: NO_PYTHON,
  }, async () => {
    const f = ref![family]!;
    const base = join(dir, family, 'base');
    const tuned = join(dir, family, 'tuned');
    const lora = join(dir, family, 'lora');
    await runCli([
      'extract',
      base,
      tuned,
      '--out',
      lora,
      '--rank',
      String(RANK),
      '--embeddings',
      'skip',
      '--norms',
      'skip',
      '--dtype',
      'f32',
      '--json',
    ]);
    const report = join(dir, `${family}.html`);
    const { stdout } = await runCli([
      'verify',
      base,
      tuned,
      lora,
      '--text',
      join(dir, 'heldout.txt'),
      '--seq-len',
      String(SEQ),
      '--max-tokens',
      '100000',
      '--json',
      '--report',
      report,
    ]);
    const r = JSON.parse(stdout);
    close(r.kl.base, f.klBase, 1e-4, 'KL(tuned‖base)');
    close(r.perplexity.base, f.pplBase, 1e-4, 'perplexity base');
    close(r.perplexity.tuned, f.pplTuned, 1e-4, 'perplexity tuned');
    // extract's rank-4 factors come from a randomized SVD (2 power iterations), torch's from an exact one:
    // the adapters differ by that, not by the forward pass.
    close(r.kl.adapter, f.klSvd, 1e-2, 'KL(tuned‖base+adapter)');
    close(r.perplexity.adapter, f.pplSvd, 1e-2, 'perplexity adapter');
    assert.ok(
      Math.abs(r.top1.adapter - f.top1Svd) < 1e-2 && Math.abs(r.top1.base - f.top1Base) < 1e-3,
      `top-1 ${r.top1.adapter}/${r.top1.base} vs ${f.top1Svd}/${f.top1Base}`,
    );
    assert.equal(r.tokens, ref!.tokens.heldout.flat().length);
    assert.ok(r.kl.recovered > 0 && r.kl.recovered < 1 && r.recovered > 0 && r.recovered < 1);
    assert.equal(r.layers.length, 2);
    for (const l of r.layers)
      assert.ok(l.relativeError > 0 && l.relativeError < 1 && l.tunedChange > 0, JSON.stringify(l));
    assert.equal(r.perPosition.adapter.length, SEQ);
    const html = await readFile(report, 'utf8');
    assert.match(html, /KL\(tuned‖base\+adapter\)/);
    assert.match(html, /dr-verify-layers/);
    assert.match(html, /dr-verify-layer-kl/);
    assert.ok(r.layers.every((l: { klAdapter: number; klBase: number }) => l.klAdapter >= 0 && l.klBase > 0));
  });
}

test('verify merged equals verify unmerged', { skip: NO_PYTHON }, async () => {
  const base = join(dir, 'llama', 'base');
  const args = [
    base,
    join(dir, 'llama', 'tuned'),
    join(dir, 'llama', 'lora'),
    '--text',
    join(dir, 'heldout.txt'),
    '--seq-len',
    '32',
    '--max-tokens',
    '256',
    '--json',
  ];
  const a = JSON.parse((await runCli(['verify', ...args])).stdout);
  const b = JSON.parse((await runCli(['verify', ...args, '--merge'])).stdout);
  close(b.kl.adapter, a.kl.adapter, 1e-4, 'merged KL');
  assert.equal(b.merged, true);
});
