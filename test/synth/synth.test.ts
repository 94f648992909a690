import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Matrix as MlMatrix, SingularValueDecomposition } from 'ml-matrix';
import { openCheckpoint } from '../../src/io/index.js';
import { llamaTensors, SYNTH_SHAPES, type SynthManifest, writeSynthPair } from '../../src/synth/index.js';
import { scratch } from '../io/helpers.js';

test('the tiny f32 pair stores exactly the planted spectrum: Weyl bounds hold for every 2-D ΔW', async () => {
  const out = join(await scratch(), 'pair');
  const manifest = await writeSynthPair(out, { shape: 'tiny', dtype: 'F32', seed: 7 });
  const onDisk = JSON.parse(await readFile(join(out, 'synth.json'), 'utf8')) as SynthManifest;
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(manifest)));
  assert.equal(onDisk.schemaVersion, 1);
  assert.equal(onDisk.tool.name, 'deltarank');
  const expectedNames = llamaTensors(SYNTH_SHAPES.tiny)
    .filter((t) => t.shape.length === 2)
    .map((t) => t.name);
  assert.deepEqual(
    manifest.modules.map((m) => m.name),
    expectedNames,
  );
  assert.equal(manifest.others.length, 2 * 2 + 1);

  const base = await openCheckpoint(join(out, 'base'));
  const tuned = await openCheckpoint(join(out, 'tuned'));
  try {
    const taus = new Set<number>();
    for (const m of manifest.modules) {
      const [rows, cols] = m.shape as [number, number];
      const w = await base.readFloat32(m.name);
      const t = await tuned.readFloat32(m.name);
      const delta = new MlMatrix(rows, cols);
      let dSq = 0;
      let wSq = 0;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const d = t[i * cols + j]! - w[i * cols + j]!;
          delta.set(i, j, d);
          dSq += d * d;
          wSq += w[i * cols + j]! ** 2;
        }
      }
      assert.ok(Math.abs(Math.sqrt(dSq) - m.deltaNorm) <= 1e-9 * m.deltaNorm, `${m.name} deltaNorm`);
      assert.ok(Math.abs(Math.sqrt(wSq) - m.baseNorm) <= 1e-9 * m.baseNorm, `${m.name} baseNorm`);
      assert.ok(
        Math.abs(m.deltaNorm / m.baseNorm - m.relativeUpdate) < 0.05 * m.relativeUpdate,
        `${m.name}: relative update ${m.deltaNorm / m.baseNorm} vs ${m.relativeUpdate}`,
      );
      assert.ok(Math.abs(m.baseNorm / Math.sqrt(rows * cols) - 0.02) < 0.002, `${m.name}: base scale`);

      const s = new SingularValueDecomposition(delta, {
        computeLeftSingularVectors: false,
        computeRightSingularVectors: false,
        autoTranspose: true,
      }).diagonal;
      const sigma = m.singularValues;
      assert.equal(sigma.length, m.plantedRank);
      for (let i = 1; i < sigma.length; i++)
        assert.ok(Math.abs(sigma[i]! / sigma[i - 1]! - Math.exp(-1 / m.tau)) < 1e-9, `${m.name}: σ ratio`);
      const plantedSq = sigma.reduce((a, x) => a + x * x, 0);
      assert.ok(
        Math.abs(m.noiseNorm ** 2 / (plantedSq + m.noiseNorm ** 2) - m.noiseShare) < 1e-6,
        `${m.name}: noise share`,
      );
      // Weyl: |s_i(L + N) − σ_i(L)| ≤ ‖N‖₂, and a Gaussian [m, n] matrix has ‖N‖₂ ≈ ‖N‖_F (√m + √n)/√(mn).
      const noiseSpectral = (1.25 * m.noiseNorm * (Math.sqrt(rows) + Math.sqrt(cols))) / Math.sqrt(rows * cols);
      for (let i = 0; i < s.length; i++) {
        const planted = sigma[i] ?? 0;
        assert.ok(
          Math.abs(s[i]! - planted) <= noiseSpectral + 1e-6 * sigma[0]!,
          `${m.name}: s[${i}] = ${s[i]} vs planted ${planted} ± ${noiseSpectral}`,
        );
      }
      // The top direction stands far above the noise, so the bound above is a real test.
      assert.ok(sigma[0]! > 5 * noiseSpectral, `${m.name}: σ₀ ${sigma[0]} vs noise ${noiseSpectral}`);
      taus.add(m.tau);
    }
    assert.ok(taus.size > manifest.modules.length / 2, 'τ varies across modules');
    for (const o of manifest.others) {
      const w = await base.readFloat32(o.name);
      const t = await tuned.readFloat32(o.name);
      const mean = w.reduce((a, x) => a + x, 0) / w.length;
      assert.ok(Math.abs(mean - 1) < 0.03, `${o.name}: norm weights near 1`);
      const d = Math.sqrt(t.reduce((a, x, i) => a + (x - w[i]!) ** 2, 0));
      assert.ok(d > 0 && Math.abs(d - o.deltaNorm) < 1e-9 * d, `${o.name}: changed, as recorded`);
    }
  } finally {
    await base.close();
    await tuned.close();
  }
});

test('the tiny pair has the Hugging Face layout and config, and is byte-identical for a seed', async () => {
  const root = await scratch();
  await writeSynthPair(join(root, 'a'), { shape: 'tiny', dtype: 'BF16', shards: 2, seed: 3 });
  await writeSynthPair(join(root, 'b'), { shape: 'tiny', dtype: 'BF16', shards: 2, seed: 3 });
  await writeSynthPair(join(root, 'c'), { shape: 'tiny', dtype: 'BF16', shards: 2, seed: 4 });
  assert.deepEqual((await readdir(join(root, 'a'))).sort(), ['base', 'synth.json', 'tuned']);
  const files = (await readdir(join(root, 'a', 'tuned'))).sort();
  assert.deepEqual(files, [
    'config.json',
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
    'model.safetensors.index.json',
  ]);
  for (const side of ['base', 'tuned']) {
    for (const f of files) {
      const a = await readFile(join(root, 'a', side, f));
      assert.ok(
        a.equals(await readFile(join(root, 'b', side, f))),
        `${side}/${f} differs between runs with the same seed`,
      );
      if (f.endsWith('.safetensors'))
        assert.ok(!a.equals(await readFile(join(root, 'c', side, f))), `${side}/${f} ignores the seed`);
    }
  }
  const config = JSON.parse(await readFile(join(root, 'a', 'base', 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(
    { ...config },
    {
      ...config,
      architectures: ['LlamaForCausalLM'],
      hidden_size: 64,
      intermediate_size: 176,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 256,
      torch_dtype: 'bfloat16',
      tie_word_embeddings: false,
    },
  );
  const ckpt = await openCheckpoint(join(root, 'a', 'tuned'));
  try {
    const byName = new Map(ckpt.tensors.map((t) => [t.name, t]));
    assert.deepEqual(byName.get('model.layers.1.self_attn.k_proj.weight')?.shape, [32, 64], 'grouped-query k_proj');
    assert.deepEqual(byName.get('model.layers.0.mlp.down_proj.weight')?.shape, [64, 176]);
    assert.deepEqual(byName.get('lm_head.weight')?.shape, [256, 64]);
    assert.deepEqual(byName.get('model.norm.weight')?.shape, [64]);
    assert.equal(ckpt.tensors.length, 2 + 2 * 9 + 1);
    assert.ok(ckpt.tensors.every((t) => t.dtype === 'BF16'));
  } finally {
    await ckpt.close();
  }
  await assert.rejects(writeSynthPair(join(root, 'a'), { shape: 'tiny' }), /already exists; pass --force/);
});

test('--high-rank: ΔW spreads its energy over most directions (rank at 90 % a large share of min(m, n)), deterministic', async () => {
  const out = join(await scratch(), 'high-rank');
  const manifest = await writeSynthPair(out, { shape: 'tiny', dtype: 'F32', seed: 2, highRank: true });
  assert.equal(manifest.highRank, true);
  assert.ok(manifest.modules.every((m) => m.spectrum === 'power-law' && m.singularValues.length === 0));
  const base = await openCheckpoint(join(out, 'base'));
  const tuned = await openCheckpoint(join(out, 'tuned'));
  try {
    for (const m of manifest.modules.filter((x) => x.name.includes('layers.0.'))) {
      const [rows, cols] = m.shape as [number, number];
      const [w, t] = [await base.readFloat32(m.name), await tuned.readFloat32(m.name)];
      const d = new MlMatrix(rows, cols);
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < cols; j++) d.set(i, j, Math.fround(t[i * cols + j]! - w[i * cols + j]!));
      const s = new SingularValueDecomposition(d, {
        computeLeftSingularVectors: false,
        computeRightSingularVectors: false,
        autoTranspose: true,
      }).diagonal;
      const total = s.reduce((a, v) => a + v * v, 0);
      let acc = 0;
      let r90 = 0;
      while (acc < 0.9 * total) acc += s[r90++]! ** 2;
      // The low-rank pairs put 90 % in a few directions; this one needs over a third of them.
      assert.ok(r90 > 0.35 * Math.min(rows, cols), `${m.name}: rank at 90 % ${r90} of ${Math.min(rows, cols)}`);
      assert.ok(
        Math.abs(Math.sqrt(total) / m.baseNorm - m.relativeUpdate) < 0.1 * m.relativeUpdate,
        `${m.name}: relative update`,
      );
    }
  } finally {
    await base.close();
    await tuned.close();
  }
  const again = await writeSynthPair(join(await scratch(), 'again'), {
    shape: 'tiny',
    dtype: 'F32',
    seed: 2,
    highRank: true,
  });
  assert.deepEqual(
    again.modules.map((m) => m.deltaNorm),
    manifest.modules.map((m) => m.deltaNorm),
  );
});
