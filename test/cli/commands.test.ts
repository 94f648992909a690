import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeSynthPair } from '../../src/synth/index.js';
import { runCli } from '../helpers/run-cli.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
let dir: string;
const base = () => join(dir, 'pair', 'base');
const tuned = () => join(dir, 'pair', 'tuned');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-cli-'));
  await writeSynthPair(join(dir, 'pair'), { shape: 'tiny', dtype: 'BF16', seed: 9 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The CLI as a user runs it: its exit code and both streams. */
function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('analyze, extract, merge, resize from the command line', () => {
  it('analyze --json prints one document of the shape in docs/ARCHITECTURE.md', async () => {
    const { stdout } = await runCli(['analyze', base(), tuned(), '--json']);
    const doc = JSON.parse(stdout);
    assert.equal(doc.schemaVersion, 2, 'analyze documents are at schema 2 (certified bounds, rank intervals)');
    assert.equal(doc.tool.name, 'deltarank');
    assert.equal(doc.tensors.length, 16);
    const q = doc.tensors.find((t: { name: string }) => t.name === 'model.layers.0.self_attn.q_proj.weight');
    for (const key of [
      'shape',
      'dtype',
      'baseNorm',
      'deltaNorm',
      'relativeUpdate',
      'singularValues',
      'complete',
      'energy',
      'rankAt',
      'stableRank',
      'effectiveRank',
      'method',
      'seconds',
      'bounds',
      'leftOutEnergy',
      'refinement',
    ])
      assert.ok(key in q, key);
    assert.deepEqual(Object.keys(q.rankAt), ['0.5', '0.9', '0.95', '0.99']);
    // The tiny pair's spectra are cheap to complete: every rank is certified exact by default.
    for (const t of doc.tensors)
      for (const r of Object.values(t.rankAt))
        assert.equal(typeof r, 'number', `${t.name}: ${JSON.stringify(t.rankAt)}`);
    assert.equal(q.bounds.lower.length, q.singularValues.length);
    assert.equal(q.dtype, 'BF16');
    assert.ok(doc.others.length > 0 && Array.isArray(doc.skipped));
  });

  it('extract --json, then resize and merge, each writing what it says', async () => {
    const { stdout } = await runCli([
      'extract',
      base(),
      tuned(),
      '--out',
      join(dir, 'lora'),
      '--energy',
      '0.9',
      '--json',
      '--quiet',
    ]);
    const doc = JSON.parse(stdout);
    assert.deepEqual(doc.policy, { energy: 0.9 });
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'lora', 'extraction.json'), 'utf8')).modules, doc.modules);
    assert.ok(doc.modules.every((m: { energy: number }) => m.energy >= 0.9 - 1e-9));
    const resized = JSON.parse(
      (await runCli(['resize', join(dir, 'lora'), '--out', join(dir, 'lora2'), '--rank', '2', '--json'])).stdout,
    );
    assert.ok(resized.modules.every((m: { rank: number }) => m.rank <= 2));
    const merged = JSON.parse(
      (await runCli(['merge', base(), join(dir, 'lora2'), '--out', join(dir, 'merged'), '--json'])).stdout,
    );
    assert.equal(merged.merged.length, resized.modules.length);
    const adapterSpectra = JSON.parse((await runCli(['analyze', '--adapter', join(dir, 'lora2'), '--json'])).stdout);
    assert.ok(
      adapterSpectra.tensors.every(
        (t: { method: string; singularValues: number[] }) => t.method === 'factored' && t.singularValues.length <= 2,
      ),
    );
  });

  it('exit 2 with one line for bad usage, 3 for bad data, no stack trace', async () => {
    const usage = run('extract', base(), tuned(), '--out', join(dir, 'x'), '--rank', '4', '--energy', '0.9');
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /^deltarank: choose exactly one of --rank, --energy/);
    assert.doesNotMatch(usage.stderr, /\n\s+at /);
    assert.equal(run('analyze', base()).status, 2);
    assert.equal(run('analyse', base(), tuned()).status, 2);
    assert.equal(run('analyze', base(), tuned(), '--include', '(').status, 2);

    await writeFile(join(dir, 'bad.safetensors'), Buffer.from([1, 2, 3]));
    const data = run('analyze', join(dir, 'bad.safetensors'), tuned());
    assert.equal(data.status, 3);
    assert.equal(data.stderr.trim().split('\n').length, 1, data.stderr);
    assert.match(data.stderr, /bad\.safetensors/);
    assert.equal(run('analyze', join(dir, 'missing'), tuned()).status, 3);
  });

  it('--report to an unwritable place fails before any work starts', async () => {
    await writeFile(join(dir, 'a-file'), 'x');
    const r = run('analyze', base(), tuned(), '--report', join(dir, 'a-file', 'report.html'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /report/);
    assert.equal(r.stdout, '');
  });
});
