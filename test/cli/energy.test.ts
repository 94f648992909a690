/**
 * `extract --energy` / `--error` grow a randomized basis (the exact route only where it is the
 * cheaper one) and still choose the ranks the complete spectrum gives.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { readDelta } from '../../src/analyze/delta.js';
import { pairTensors } from '../../src/analyze/pairing.js';
import { extractAdapter } from '../../src/extract/index.js';
import { openCheckpoint } from '../../src/io/index.js';
import { singularValues } from '../../src/svd/index.js';
import { writeSynthPair } from '../../src/synth/index.js';
import { runCli } from '../helpers/run-cli.js';

let dir: string;
const base = () => join(dir, 'pair', 'base');
const tuned = () => join(dir, 'pair', 'tuned');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-energy-'));
  await writeSynthPair(join(dir, 'pair'), { shape: 'small', dtype: 'BF16', seed: 11 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Doc {
  modules: { module: string; shape: number[]; rank: number; energy: number }[];
  warnings: string[];
}

/** Smallest r with E(r) ≥ target, from all singular values of the module's ΔW. */
async function exactRanks(modules: string[], target: number): Promise<Map<string, number>> {
  const b = await openCheckpoint(base());
  const t = await openCheckpoint(tuned());
  try {
    const { matrices } = pairTensors(b.tensors, t.tensors, {});
    const out = new Map<string, number>();
    for (const name of modules) {
      const pair = matrices.find((p) => p.name === `${name}.weight`)!;
      const d = await readDelta(b, t, pair);
      const { s } = await singularValues(d.delta);
      let acc = 0;
      let r = 0;
      while (r < s.length && acc < target * d.frobSquared) (acc += s[r]! ** 2), r++;
      out.set(name, r);
    }
    return out;
  } finally {
    await t.close();
    await b.close();
  }
}

it('--energy 0.9 takes the adaptive route on the larger modules and chooses the ranks of the complete spectrum', async () => {
  const { stdout } = await runCli([
    'extract',
    base(),
    tuned(),
    '--out',
    join(dir, 'e90'),
    '--energy',
    '0.9',
    '--json',
    '--quiet',
  ]);
  const doc = JSON.parse(stdout) as Doc;
  const large = doc.modules.filter((m) => Math.min(m.shape[0]!, m.shape[1]!) >= 512);
  assert.ok(large.length >= 10, `${large.length} modules of min(m, n) ≥ 512`);
  for (const m of doc.modules) assert.ok(m.energy >= 0.9 - 1e-6, `${m.module}: energy ${m.energy}`);
  // The spectra behind the report say which route each module took.
  const lib = await extractAdapter(base(), tuned(), join(dir, 'e90-lib'), { policy: { energy: 0.9 } });
  const methods = new Map(lib.spectra.map((t) => [t.name.replace(/\.weight$/, ''), t.method]));
  for (const m of large)
    assert.equal(
      methods.get(m.module),
      'adaptive',
      `${m.module} (${m.shape.join('×')}) took the ${methods.get(m.module)} route`,
    );
  const sample = [large[0]!, large[Math.floor(large.length / 2)]!, large[large.length - 1]!].map((m) => m.module);
  const truth = await exactRanks(sample, 0.9);
  for (const name of sample) {
    const got = doc.modules.find((m) => m.module === name)!.rank;
    // Randomized energies are lower bounds, so the rank can only err upward, by one at the boundary.
    assert.ok(
      got >= truth.get(name)! && got <= truth.get(name)! + 1,
      `${name}: rank ${got}, complete spectrum says ${truth.get(name)}`,
    );
  }
});

it('--error 0.3 meets the error everywhere; --min-rank above the ranks found raises them', async () => {
  const e = JSON.parse(
    (await runCli(['extract', base(), tuned(), '--out', join(dir, 'err'), '--error', '0.3', '--json', '--quiet']))
      .stdout,
  ) as Doc;
  for (const m of e.modules)
    assert.ok(
      Math.sqrt(Math.max(0, 1 - m.energy)) <= 0.3 + 1e-6,
      `${m.module}: optimum error ${Math.sqrt(1 - m.energy)}`,
    );
  const floor = JSON.parse(
    (
      await runCli([
        'extract',
        base(),
        tuned(),
        '--out',
        join(dir, 'floor'),
        '--energy',
        '0.5',
        '--min-rank',
        '40',
        '--json',
        '--quiet',
      ])
    ).stdout,
  ) as Doc;
  for (const m of floor.modules)
    assert.ok(m.rank >= Math.min(40, m.shape[0]!, m.shape[1]!), `${m.module}: rank ${m.rank} below --min-rank 40`);
});
