import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseLeftVectors, intruderCount } from '../../src/analyze/intruders.js';
import { expectAllClose } from '../helpers/close.js';

/**
 * Planted case: base W = [diag(s), 0] (left singular vectors e₁…e_out), tuned W' = H·[diag(s'), 0]
 * with H = I − 2wwᵀ the Householder reflection taking e_j to u = (e_j + … + e_{j+4})/√5, so the
 * tuned left singular vectors are H's columns in the order of s'. By hand: column j has |cos| 1/√5
 * with five base vectors (an intruder, < 0.5); columns j+1…j+4 keep 1 − 2w² = 1 − 2/(5·(2 − 2/√5))
 * ≈ 0.638 on their own axis; every other column is its own axis (1).
 */
function planted(out: number, inF: number, j: number, order: number[]) {
  const base = new Float32Array(out * inF);
  for (let i = 0; i < out; i++) base[i * inF + i] = out - i; // distinct σ
  const u = new Float64Array(out);
  for (let t = j; t < j + 5; t++) u[t] = 1 / Math.sqrt(5);
  const w = Float64Array.from(u, (v, i) => (i === j ? 1 : 0) - v);
  const norm = Math.hypot(...w);
  for (let i = 0; i < out; i++) w[i]! /= norm;
  // tuned = H · diag(s') with s'[c] = value of column c; columns of H are tuned vectors.
  const tuned = new Float32Array(out * inF);
  order.forEach((c, rankPos) => {
    const sigma = 100 - rankPos; // column c gets the rankPos-th largest σ
    for (let i = 0; i < out; i++) tuned[i * inF + c] = sigma * ((i === c ? 1 : 0) - 2 * w[i]! * w[c]!);
  });
  const hand = order
    .slice(0, 10)
    .map((c) => (c === j ? 1 / Math.sqrt(5) : c > j && c < j + 5 ? 1 - 2 / (5 * (2 - 2 / Math.sqrt(5))) : 1));
  return { base: { rows: out, cols: inF, data: base }, tuned: { rows: out, cols: inF, data: tuned }, hand };
}

for (const [out, inF] of [
  [16, 24],
  [32, 40],
] as const) {
  test(`intruder dimensions on a planted ${out}×${inF} case match the hand computation (${out === 16 ? 'exact' : 'randomized, verified'} tuned SVD)`, async () => {
    // The intruder's direction has the 3rd largest tuned σ: counted.
    const order = [4, 9, 2, ...Array.from({ length: out }, (_, i) => i).filter((i) => ![4, 9, 2].includes(i))];
    const one = planted(out, inF, 2, order);
    const baseU = await baseLeftVectors(one.base);
    const got = await intruderCount(one.tuned, baseU);
    expectAllClose(got.maxCos, one.hand, { rtol: 0, atol: 1e-5 }, 'max |cos|');
    assert.equal(got.count, 1);
    assert.ok(Math.abs(got.margin - (0.5 - 1 / Math.sqrt(5))) < 1e-5);
    // The same direction ranked 11th by σ: outside PEFT's top 10, no intruder.
    const late = [...order.filter((c) => c !== 2).slice(0, 10), 2, ...order.filter((c) => c !== 2).slice(10)];
    const none = planted(out, inF, 2, late);
    const got2 = await intruderCount(none.tuned, baseU);
    assert.equal(got2.count, 0);
    expectAllClose(got2.maxCos, none.hand, { rtol: 0, atol: 1e-5 }, 'max |cos| without the intruder');
    // The base against itself: no intruders, every cosine 1.
    const self = await intruderCount(one.base, baseU);
    assert.equal(self.count, 0);
    expectAllClose(self.maxCos, new Array(10).fill(1), { rtol: 0, atol: 1e-5 });
  });
}

test('analyze --intruders counts them per matrix from two checkpoints (the planted case: one)', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeCheckpoint } = await import('../../src/io/index.js');
  const { runCli } = await import('../helpers/run-cli.js');
  const dir = await mkdtemp(join(tmpdir(), 'deltarank-intruders-'));
  try {
    const order = [4, 9, 2, ...Array.from({ length: 16 }, (_, i) => i).filter((i) => ![4, 9, 2].includes(i))];
    const p = planted(16, 24, 2, order);
    const name = 'model.layers.0.mlp.up_proj.weight';
    for (const [side, m] of [
      ['base', p.base],
      ['tuned', p.tuned],
    ] as const) {
      await writeCheckpoint(join(dir, side), [{ name, dtype: 'F32', shape: [16, 24] }], () => m.data, {
        metadata: { format: 'pt' },
      });
    }
    const doc = JSON.parse(
      (await runCli(['analyze', join(dir, 'base'), join(dir, 'tuned'), '--intruders', '--json'])).stdout,
    ) as { intruders: { name: string; count: number }[] };
    assert.deepEqual(
      doc.intruders.map((x) => [x.name, x.count]),
      [[name, 1]],
    );
    await assert.rejects(runCli(['analyze', '--delta', join(dir, 'base'), '--intruders']), {
      name: 'UsageError',
      message: /--intruders/,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
