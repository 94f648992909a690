/**
 * One relativeUpdate: the value `analyze` reports for a tensor is what svd's relativeUpdate gives
 * for its norms, zero bases included (a tensor trained from zeros: no finite ratio, null).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { analyzeCheckpoints } from '../../src/analyze/index.js';
import { writeCheckpoint } from '../../src/io/index.js';
import { relativeUpdate } from '../../src/svd/index.js';

describe('relativeUpdate: one definition', () => {
  it("analyze's field equals svd's relativeUpdate, for a zero base and a non-zero one", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deltarank-relupd-'));
    after(() => rm(dir, { recursive: true, force: true }));
    const specs = [
      { name: 'zero.weight', dtype: 'F32' as const, shape: [6, 4] },
      { name: 'plain.weight', dtype: 'F32' as const, shape: [6, 4] },
      { name: 'zero.bias', dtype: 'F32' as const, shape: [6] },
    ];
    const base = new Map([
      ['zero.weight', new Float32Array(24)],
      ['plain.weight', Float32Array.from({ length: 24 }, (_, i) => (i % 5) - 2)],
      ['zero.bias', new Float32Array(6)],
    ]);
    // tuned = base + 0.5 at entry 0 of each: ‖ΔW‖_F = 0.5 exactly.
    const tuned = new Map([...base].map(([k, v]) => [k, Float32Array.from(v, (x, i) => (i === 0 ? x + 0.5 : x))]));
    await writeCheckpoint(join(dir, 'base'), specs, (s) => base.get(s.name)!);
    await writeCheckpoint(join(dir, 'tuned'), specs, (s) => tuned.get(s.name)!);
    const result = await analyzeCheckpoints(join(dir, 'base'), join(dir, 'tuned'));
    const byName = new Map([...result.tensors, ...result.others].map((t) => [t.name, t]));
    const plainNorm = Math.sqrt(base.get('plain.weight')!.reduce((a, x) => a + x * x, 0));
    for (const [name, baseNorm] of [
      ['zero.weight', 0],
      ['plain.weight', plainNorm],
      ['zero.bias', 0],
    ] as const) {
      const t = byName.get(name)!;
      assert.ok(Math.abs(t.deltaNorm - 0.5) < 1e-12, `${name}: ‖ΔW‖ = ${t.deltaNorm}`);
      assert.equal(t.relativeUpdate, relativeUpdate(t.deltaNorm, baseNorm), `${name}: analyze and svd agree`);
    }
    assert.equal(byName.get('zero.weight')!.relativeUpdate, null);
    assert.ok(Math.abs(byName.get('plain.weight')!.relativeUpdate! - 0.5 / plainNorm) < 1e-7);
  });
});
