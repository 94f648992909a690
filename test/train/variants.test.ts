import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { applyAdapter, mergeAdapter } from '../../src/extract/index.js';
import { readAdapter } from '../../src/io/index.js';
import { evaluate, loadModel } from '../../src/train/evaluate.js';
import { type TrainMetrics, trainTask } from '../../src/train/train-task.js';
import { parseVariant } from '../../src/train/variants.js';
import { writeTrainOutput } from '../../src/train/write-output.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('variant specs: names, PEFT flags, and the combinations PEFT refuses', () => {
  assert.deepEqual(parseVariant('lora'), { name: 'lora', useDora: false, loraBias: false, init: true });
  assert.deepEqual(parseVariant('dora'), { name: 'dora', useDora: true, loraBias: false, init: true });
  assert.deepEqual(parseVariant('gaussian+dora'), {
    name: 'dora+gaussian',
    useDora: true,
    loraBias: false,
    init: 'gaussian',
  });
  assert.deepEqual(parseVariant('bias'), { name: 'lora+bias', useDora: false, loraBias: true, init: true });
  assert.equal(parseVariant('pissa_niter_4').init, 'pissa_niter_4');
  assert.throws(() => parseVariant('dora+bias'), /lora_bias/);
  assert.throws(() => parseVariant('pissa+bias'), /lora_bias/);
  assert.throws(() => parseVariant('dora+pissa'), /keeps A and B only/);
  assert.throws(() => parseVariant('pissa+olora'), /two inits/);
  assert.throws(() => parseVariant('qlora'), { name: 'UsageError', message: /unknown LoRA variant "qlora"/ });
});

const withoutTimings = (m: TrainMetrics) => ({
  ...m,
  seconds: 0,
  runs: m.runs.map((r) => ({ ...r, seconds: 0, examplesPerSecond: 0 })),
});

test('train --variants: every variant at every rank, PEFT parameter counts, ΔM/ΔD per epoch, same seed same metrics; adapters merged by `merge` score as trained', async () => {
  const opts = {
    task: 'mnist' as const,
    epochs: 2,
    ranks: [2, 40],
    variants: ['lora', 'dora', 'pissa', 'olora', 'lora+bias'],
    seed: 3,
    model: { hidden: [32], maxTrain: 400 },
  };
  const result = await trainTask(opts);
  const again = await trainTask(opts);
  assert.deepEqual(withoutTimings(result.metrics), withoutTimings(again.metrics));
  assert.deepEqual(result.adapters, again.adapters);
  const { metrics } = result;
  assert.deepEqual(metrics.config.variants, ['lora', 'dora', 'pissa', 'olora', 'lora+bias']);
  assert.deepEqual(
    metrics.runs.map((r) => r.name),
    ['base', 'full', ...opts.variants.flatMap((v) => [2, 40].map((r) => `${v}-r${r}`))],
  );
  const run = (name: string) => metrics.runs.find((r) => r.name === name)!;
  // Layers 784→32 and 32→10: r·(in + out) each; DoRA and lora_bias add out; PiSSA/OLoRA take min(r, out, in) directions.
  const lora = (r: number) => r * (784 + 32) + r * (32 + 10);
  assert.equal(run('lora-r2').trainableParams, lora(2));
  assert.equal(run('dora-r2').trainableParams, lora(2) + 32 + 10);
  assert.equal(run('lora+bias-r2').trainableParams, lora(2) + 32 + 10);
  assert.equal(run('pissa-r40').trainableParams, 32 * (784 + 32) + 10 * (32 + 10));
  assert.equal(run('dora-r2').useDora, true);
  assert.equal(run('pissa-r2').init, 'pissa');
  for (const r of metrics.runs.filter((x) => x.kind !== 'base')) {
    assert.deepEqual(
      r.direction!.map((p) => p.epoch),
      [1, 2],
    );
    for (const p of r.direction!)
      for (const l of p.layers) assert.ok(l.dM >= 0 && l.dD >= 0 && l.dD <= 2, `${r.name} ${l.module}`);
    assert.ok(r.direction![1]!.layers[0]!.dD > 0, `${r.name} moved`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'deltarank-variants-'));
  dirs.push(dir);
  await writeTrainOutput(join(dir, 'run'), result);
  const base = (await loadModel('mnist', join(dir, 'run', 'base'))).weights;
  for (const r of metrics.runs.filter((x) => x.kind === 'lora')) {
    const adapterDir = join(dir, 'run', r.name);
    const adapter = await readAdapter(adapterDir);
    const config = JSON.parse(await readFile(join(adapterDir, 'adapter_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(config['use_dora'] ?? false, r.useDora);
    assert.equal(config['lora_bias'] ?? false, r.loraBias);
    assert.equal(config['init_lora_weights'], true, 'PiSSA/OLoRA are saved converted, as PEFT saves them');
    const trained = result.adapters.find((a) => a.name === r.name)!;
    for (const m of adapter.modules) {
      const t = trained.modules.find((x) => x.module === m.module)!;
      assert.deepEqual(m.magnitude, t.magnitude);
      assert.deepEqual(m.bias, t.bias);
      if (r.init === 'pissa' || r.init === 'olora')
        assert.equal(m.rank, 2 * Math.min(r.rank!, m.outFeatures, m.inFeatures), 'rank-2r conversion');
    }
    // PiSSA/OLoRA: the converted LoRA on the ORIGINAL base; DoRA and lora_bias through deltarank's merge.
    const mergedDir = join(dir, `merged-${r.name}`);
    await mergeAdapter(join(dir, 'run', 'base'), adapterDir, mergedDir);
    for (const weights of [(await loadModel('mnist', mergedDir)).weights, await applyAdapter(base, adapter)]) {
      const e = await evaluate('mnist', weights, 'target', { config: { hidden: [32] } });
      assert.ok(
        Math.abs(e.loss - r.final.target.loss) <= 1e-4,
        `${r.name}: merged loss ${e.loss} vs trained ${r.final.target.loss}`,
      );
      assert.ok(
        Math.abs(e.metric - r.final.target.metric) <= 0.002,
        `${r.name}: merged accuracy ${e.metric} vs trained ${r.final.target.metric}`,
      );
    }
  }
});

test('--lora-bias needs biases: charlm (Llama, no biases) refuses it', async () => {
  await assert.rejects(
    trainTask({
      task: 'charlm',
      epochs: 1,
      ranks: [1],
      loraBias: true,
      model: { hidden: 8, intermediate: 16, layers: 1, heads: 2, context: 8, maxTrain: 8 },
    }),
    /lora_bias needs a bias/,
  );
  await assert.rejects(trainTask({ task: 'mnist', ranks: [1], variants: ['lora', 'lora'] }), /repeat/);
});
