/**
 * Flags and small messages: values quoted as typed, contradictions refused, warnings said once
 * and on stderr, the progress line on a terminal without a width and its ETA by work done.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { workBySize } from '../../src/cli/commands/common.js';
import { exitCodeFor } from '../../src/cli/exit.js';
import { createProgress } from '../../src/cli/output.js';
import { FormatError, UsageError } from '../../src/errors.js';
import { writeCheckpoint } from '../../src/io/index.js';
import { writeSynthPair } from '../../src/synth/index.js';
import { runCli } from '../helpers/run-cli.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
let dir: string;
const base = () => join(dir, 'pair', 'base');
const tuned = () => join(dir, 'pair', 'tuned');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-flags-'));
  await writeSynthPair(join(dir, 'pair'), { shape: 'tiny', dtype: 'BF16', seed: 5 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const usage = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
  assert.match(err.message, pattern);
  return true;
};

describe('flag values', () => {
  it('numbers are quoted as typed, not as NaN; a flag without its value is refused', async () => {
    const out = join(dir, 'never');
    await assert.rejects(
      runCli(['extract', base(), tuned(), '--out', out, '--rank', 'abc']),
      usage(/^--rank must be a positive integer, got "abc"$/),
    );
    await assert.rejects(runCli(['extract', base(), tuned(), '--out', out, '--rank', '2.5']), usage(/got "2\.5"/));
    await assert.rejects(
      runCli(['analyze', base(), tuned(), '--seed', 'abc']),
      usage(/^--seed must be a non-negative integer, got "abc"$/),
    );
    await assert.rejects(
      runCli(['extract', base(), tuned(), '--out', out, '--energy', 'most']),
      usage(/^--energy must be a number, got "most"$/),
    );
    await assert.rejects(runCli(['analyze', base(), tuned(), '--report']), usage(/report/));
    await assert.rejects(
      runCli(['extract', base(), tuned(), '--out', out, '--rank', '4', '--rank', '8']),
      usage(/--rank given 2 times/),
    );
  });

  it('contradicting rank limits are refused, not clamped', async () => {
    const out = join(dir, 'never');
    await assert.rejects(
      runCli(['extract', base(), tuned(), '--out', out, '--rank', '4', '--max-rank', '2']),
      usage(/^--rank 4 is above --max-rank 2/),
    );
    await assert.rejects(
      runCli(['extract', base(), tuned(), '--out', out, '--budget', '1M', '--min-rank', '10', '--max-rank', '5']),
      usage(/^--min-rank 10 is above --max-rank 5$/),
    );
  });

  it('resize without a policy lists the policies resize takes, not --budget', async () => {
    await assert.rejects(runCli(['resize', join(dir, 'nowhere'), '--out', join(dir, 'never')]), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /choose exactly one of --rank, --energy or --error \(got none\)/);
      assert.doesNotMatch(err.message, /budget/);
      return true;
    });
  });

  it('a usage error is one line on stderr, exit 2', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', BIN, 'extract', base(), tuned(), '--out', join(dir, 'never'), '--rank', 'abc'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(
      r.stderr,
      /^deltarank: --rank must be a positive integer, got "abc" \(deltarank --help for usage\)\n$/,
    );
  });
});

describe('warnings', () => {
  it('a --rank above min(m, n) is one warning for all the modules it clamps', async () => {
    const { stdout, stderr } = await runCli([
      'extract',
      base(),
      tuned(),
      '--out',
      join(dir, 'clamped'),
      '--rank',
      '100',
      '--json',
    ]);
    const doc = JSON.parse(stdout) as { warnings: string[]; modules: { rank: number; shape: number[] }[] };
    const clamped = doc.warnings.filter((w) => /--rank 100 is above min\(m, n\)/.test(w));
    const ps = new Set(doc.modules.map((m) => Math.min(m.shape[0]!, m.shape[1]!)).filter((p) => p < 100));
    assert.equal(clamped.length, ps.size, clamped.join('\n'));
    assert.ok(doc.modules.length > ps.size, 'more modules than warnings');
    assert.match(clamped[0]!, /in \d+ modules/);
    assert.equal(stderr.split('\n').filter((l) => /--rank 100/.test(l)).length, ps.size);
  });

  it('a resized vocabulary left out of the adapter is said on stderr; an integer tensor names both dtypes', async () => {
    const pair = join(dir, 'vocab');
    const mk = (rows: number, extraDtype: 'F32' | 'I32') => [
      { name: 'model.embed_tokens.weight', dtype: 'F32' as const, shape: [rows, 8] },
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32' as const, shape: [8, 8] },
      { name: 'model.layers.0.position_ids', dtype: extraDtype, shape: [4, 4] },
    ];
    let k = 0;
    const fill = (s: { shape: number[]; dtype: string }) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (s.dtype === 'I32') return new Uint8Array(4 * n);
      return Float32Array.from({ length: n }, (_, i) => Math.sin(i + k++));
    };
    await writeCheckpoint(join(pair, 'base'), mk(16, 'F32'), fill);
    await writeCheckpoint(join(pair, 'tuned'), mk(20, 'I32'), fill);
    const { stdout, stderr } = await runCli([
      'extract',
      join(pair, 'base'),
      join(pair, 'tuned'),
      '--out',
      join(dir, 'vocab-lora'),
      '--rank',
      '2',
      '--json',
    ]);
    assert.match(stderr, /^warning: model\.embed_tokens\.weight: the vocabulary was resized, .*--embeddings full/m);
    const doc = JSON.parse(stdout) as { skipped: { name: string; reason: string }[] };
    const ints = doc.skipped.find((s) => s.name === 'model.layers.0.position_ids');
    assert.equal(ints?.reason, 'not a float tensor (base F32, tuned I32)');
  });

  it('compare of a folder whose metrics.json names an unknown task is bad data (exit 3)', async () => {
    const run = join(dir, 'odd-run');
    await mkdir(run, { recursive: true });
    await writeFile(join(run, 'metrics.json'), JSON.stringify({ task: 'imagenet', runs: [] }));
    await assert.rejects(runCli(['compare', run]), (err: unknown) => {
      assert.ok(err instanceof FormatError, String(err));
      assert.match(err.message, /unknown task "imagenet" \(known: mnist, charlm\)/);
      assert.equal(exitCodeFor(err), 3);
      return true;
    });
  });
});

describe('the progress line', () => {
  /** Capture stderr with a pretend terminal of `columns` columns. */
  const onTerminal = (columns: number, body: () => void): string => {
    const saved = { isTTY: process.stderr.isTTY, columns: process.stderr.columns, write: process.stderr.write };
    let text = '';
    Object.assign(process.stderr, { isTTY: true, columns, write: (c: string) => ((text += c), true) });
    try {
      body();
    } finally {
      Object.assign(process.stderr, saved);
    }
    return text;
  };

  it('a terminal of 0 columns gets the line uncut and cleared, without padding', () => {
    const text = onTerminal(0, () => {
      const p = createProgress({}, 'extract', 3);
      p.update(3, 'lm_head');
      p.finish();
    });
    assert.equal(text, '\rextract 3/3 ETA 0.0s  lm_head\x1b[K\r\x1b[K');
  });

  it('a narrow terminal cuts the line to its width', () => {
    const text = onTerminal(12, () => createProgress({}, 'extract', 3).update(3, 'model.layers.0.mlp.up_proj'));
    assert.equal(text, '\rextract 3/3\x1b[K');
  });

  it('the ETA counts work done, not units started: nothing done reads "ETA --"', () => {
    const text = onTerminal(200, () =>
      createProgress({}, 'merge', 10).update(1, 'embed_tokens', { done: 0, total: 100 }),
    );
    assert.match(text, /merge 1\/10 ETA --/);
    const work = workBySize(
      new Map([
        ['model.embed_tokens.weight', 90],
        ['model.norm.weight', 10],
      ]),
    );
    assert.deepEqual(work.finished('model.embed_tokens'), { done: 90, total: 100 });
    assert.deepEqual(work.finished('model.norm.weight'), { done: 100, total: 100 });
  });
});
