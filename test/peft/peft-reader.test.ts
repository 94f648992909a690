/**
 * Reading adapters PEFT itself made: tiny Llama, GPT-2 and Mixtral models, one adapter per kind
 * (plain, PEFT's default alpha, rsLoRA with rank/alpha patterns, modules_to_save, embedding
 * targets, lora_bias, DoRA on linears and embeddings, GPT-2's Conv1D with fan_in_fan_out, DoRA on
 * Conv1D, target_parameters on 3-D expert weights), trained a few Adam steps so every factor moved.
 * One Python process makes them all with PEFT's merge_and_unload and the singular values
 * (torch.linalg.svdvals, f64) of the change PEFT's merge makes; one loads the resized adapters back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analyzeAdapter } from '../../src/analyze/index.js';
import { FormatError, UsageError } from '../../src/errors.js';
import { mergeAdapter, resizeAdapter } from '../../src/extract/index.js';
import { openCheckpoint, readAdapter } from '../../src/io/index.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** merge against PEFT's merge_and_unload, both f32: |ours − PEFT's| ≤ MERGE_TOL · max(1, |PEFT's|). */
const MERGE_TOL = 1e-5;
/** σ against LAPACK's on PEFT's own f64 change: within SIGMA_TOL · σ₁ (measured: ≤ 2e-8 where W' − W is formed in f32, ~1e-15 from the factors). */
const SIGMA_TOL = 1e-6;

interface Case {
  arch: string;
  base: string;
  adapter: string;
  merged: string;
  /** Base tensor → σ of PEFT's W' − W (for a 3-D expert weight: one list per expert). */
  deltas: Record<string, number[] | number[][]>;
}
interface Made {
  cases: Record<string, Case>;
}

describe('adapters made by PEFT 0.21', { skip: NO_PYTHON }, () => {
  let dir = '';
  let made: Made;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deltarank-peft-made-'));
    made = await runPython<Made>(join(HERE, 'peft_adapters.py'), ['make', dir]);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('merge equals PEFT merge_and_unload, tensor by tensor, for every kind', async () => {
    for (const [name, c] of Object.entries(made.cases)) {
      const out = join(dir, name, 'ours-merged');
      const result = await mergeAdapter(c.base, c.adapter, out);
      assert.ok(result.merged.length > 0, `${name}: nothing merged`);
      const ours = await openCheckpoint(out);
      const peft = await openCheckpoint(c.merged);
      const base = await openCheckpoint(c.base);
      try {
        assert.deepEqual(
          ours.tensors.map((t) => t.name).sort(),
          peft.tensors.map((t) => t.name).sort(),
          `${name}: tensor names`,
        );
        let changed = 0;
        for (const t of peft.tensors) {
          const want = await peft.readFloat32(t.name);
          const got = await ours.readFloat32(t.name);
          const was = await base.readFloat32(t.name);
          for (let i = 0; i < want.length; i++) {
            if (!(Math.abs(got[i]! - want[i]!) <= MERGE_TOL * Math.max(1, Math.abs(want[i]!)))) {
              assert.fail(`${name}: ${t.name}[${i}] is ${got[i]} here, ${want[i]} in PEFT's merge (base ${was[i]})`);
            }
          }
          if (want.some((v, i) => v !== was[i])) changed++;
        }
        assert.ok(changed >= Object.keys(c.deltas).length, `${name}: PEFT's merge changed only ${changed} tensors`);
      } finally {
        await Promise.all([ours.close(), peft.close(), base.close()]);
      }
    }
  });

  test("analyze --adapter gives LAPACK's σ of the change PEFT makes (DoRA with the base; without it, refused)", async () => {
    for (const [name, c] of Object.entries(made.cases)) {
      const read = await readAdapter(c.adapter);
      const dora = read.settings.useDora;
      if (dora) {
        await assert.rejects(
          analyzeAdapter(c.adapter),
          (err: unknown) => err instanceof UsageError && /DoRA adapter \(use_dora\).*give the base/.test(err.message),
        );
      }
      // Two parameters of one module: which nested wrapper adapts which is not saved; the base's shapes tell.
      const nested = read.paramModules.some((p) => p.level > 0);
      if (nested) {
        await assert.rejects(
          analyzeAdapter(c.adapter),
          (err: unknown) =>
            err instanceof UsageError &&
            /may adapt .*experts\.\w+ and .*experts\.\w+ .*give the base checkpoint/.test(err.message),
        );
      }
      const runs =
        dora || nested
          ? [await analyzeAdapter(c.adapter, { basePath: c.base, exact: true })]
          : [
              await analyzeAdapter(c.adapter, { exact: true }),
              await analyzeAdapter(c.adapter, { basePath: c.base, exact: true }),
            ];
      for (const r of runs) {
        const byName = new Map(r.tensors.map((t) => [t.name, t]));
        for (const [tensor, sigma] of Object.entries(c.deltas)) {
          const lists = Array.isArray(sigma[0])
            ? (sigma as number[][]).map((s, e) => [`${tensor}[${e}]`, s] as const)
            : [[tensor, sigma as number[]] as const];
          for (const [entryName, want] of lists) {
            const entry = byName.get(entryName);
            if (
              !entry &&
              r.base === null &&
              /lm_head|embed|norm/.test(entryName) &&
              r.skipped.some((s) => s.name === tensor)
            )
              continue; // modules_to_save without a base
            assert.ok(entry, `${name}: no spectrum for ${entryName} (have ${[...byName.keys()].join(', ')})`);
            const s1 = want[0]!;
            for (let i = 0; i < want.length; i++) {
              const got = entry.singularValues[i] ?? 0;
              assert.ok(
                Math.abs(got - want[i]!) <= SIGMA_TOL * s1,
                `${name}: ${entryName} σ${i + 1} is ${got} here, ${want[i]} by LAPACK (base ${r.base ? 'given' : 'not given'})`,
              );
            }
          }
        }
      }
    }
  });

  test("resize writes adapters PEFT loads without a warning, and at full rank they merge to PEFT's result", async () => {
    const pairs: string[] = [];
    const resized: [string, Case, string][] = [];
    for (const [name, c] of Object.entries(made.cases)) {
      const out = join(dir, name, 'resized');
      if ((await readAdapter(c.adapter)).paramModules.length > 0) {
        await assert.rejects(
          resizeAdapter(c.adapter, out, { rank: 64 }),
          (err: unknown) =>
            err instanceof FormatError && /"target_parameters".*resize does not rewrite/.test(err.message),
        );
        continue;
      }
      await resizeAdapter(c.adapter, out, { rank: 64 });
      pairs.push(out, c.base);
      resized.push([name, c, out]);
    }
    const loaded = await runPython<Record<string, { warnings: string[]; missing: string[]; unexpected: string[] }>>(
      join(HERE, 'peft_adapters.py'),
      ['load', ...pairs],
    );
    for (const [name, c, out] of resized) {
      const l = loaded[out]!;
      assert.deepEqual(l, { warnings: [], missing: [], unexpected: [] }, `${name}: PEFT loading the resized adapter`);
      const merged = join(dir, name, 'resized-merged');
      await mergeAdapter(c.base, out, merged);
      const ours = await openCheckpoint(merged);
      const peft = await openCheckpoint(c.merged);
      try {
        for (const t of peft.tensors) {
          const want = await peft.readFloat32(t.name);
          const got = await ours.readFloat32(t.name);
          for (let i = 0; i < want.length; i++) {
            if (!(Math.abs(got[i]! - want[i]!) <= MERGE_TOL * Math.max(1, Math.abs(want[i]!))))
              assert.fail(`${name}: resized then merged, ${t.name}[${i}] is ${got[i]}, PEFT's merge ${want[i]}`);
          }
        }
      } finally {
        await Promise.all([ours.close(), peft.close()]);
      }
    }
  });
});
