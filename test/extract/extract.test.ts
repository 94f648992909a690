import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Matrix as MlMatrix, SVD } from 'ml-matrix';
import { FormatError, ShapeError, UsageError } from '../../src/errors.js';
import { extractAdapter, mergeAdapter, resizeAdapter } from '../../src/extract/index.js';
import { openCheckpoint } from '../../src/io/index.js';
import { writeSynthPair } from '../../src/synth/index.js';

let dir: string;
const tiny = () => ({ base: join(dir, 'tiny', 'base'), tuned: join(dir, 'tiny', 'tuned') });
const small = () => ({ base: join(dir, 'small', 'base'), tuned: join(dir, 'small', 'tuned') });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-extract-'));
  await writeSynthPair(join(dir, 'tiny'), { shape: 'tiny', dtype: 'F32', seed: 11 });
  await writeSynthPair(join(dir, 'small'), { shape: 'small', dtype: 'BF16', seed: 12 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Exact σ of ΔW for a tensor of a pair, by ml-matrix. */
async function exactSigma(pair: { base: string; tuned: string }, name: string): Promise<{ s: number[]; frob: number }> {
  const b = await openCheckpoint(pair.base);
  const t = await openCheckpoint(pair.tuned);
  const [w, v] = [await b.readFloat32(name), await t.readFloat32(name)];
  const [m, n] = b.info(name).shape as [number, number];
  await b.close();
  await t.close();
  const rows = Array.from({ length: m }, (_, i) => Array.from({ length: n }, (_, j) => v[i * n + j]! - w[i * n + j]!));
  const frob = rows.flat().reduce((a, x) => a + x * x, 0);
  return {
    s: new SVD(new MlMatrix(rows), {
      computeLeftSingularVectors: false,
      computeRightSingularVectors: false,
      autoTranspose: true,
    }).diagonal,
    frob,
  };
}

function smallestRank(s: number[], frob: number, energy: number): number {
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc += s[i]! ** 2;
    if (acc / frob >= energy - 1e-12) return i + 1;
  }
  return s.length;
}

describe('extract: the adapter on disk', () => {
  it('has the layout, keys, shapes and config of docs/ARCHITECTURE.md', async () => {
    const out = join(dir, 'layout');
    const r = await extractAdapter(tiny().base, tiny().tuned, out, { policy: { rank: 8 } });
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.r, 8);
    assert.equal(config.lora_alpha, 8);
    assert.deepEqual(config.rank_pattern, {});
    assert.equal(config.use_rslora, false);
    assert.equal(config.bias, 'none');
    assert.equal(config.lora_dropout, 0);
    assert.equal(config.fan_in_fan_out, false);
    assert.equal(config.inference_mode, true);
    assert.ok(config.target_modules.includes('model.layers.0.self_attn.q_proj'));
    assert.ok(
      config.target_modules.every((m: string) => m.startsWith('model.') || m === 'lm_head'),
      'full module paths',
    );
    assert.deepEqual([...config.modules_to_save].sort(), [
      'model.layers.0.input_layernorm',
      'model.layers.0.post_attention_layernorm',
      'model.layers.1.input_layernorm',
      'model.layers.1.post_attention_layernorm',
      'model.norm',
    ]);
    const ck = await openCheckpoint(join(out, 'adapter_model.safetensors'));
    assert.equal(ck.metadata['format'], 'pt');
    const shape = (k: string) => ck.info(k).shape;
    assert.deepEqual(shape('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'), [8, 64]);
    assert.deepEqual(shape('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight'), [32, 8]);
    assert.deepEqual(shape('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'), [8, 176]);
    assert.deepEqual(shape('base_model.model.model.embed_tokens.lora_embedding_A'), [8, 256]);
    assert.deepEqual(shape('base_model.model.model.embed_tokens.lora_embedding_B'), [64, 8]);
    assert.deepEqual(shape('base_model.model.lm_head.lora_A.weight'), [8, 64]);
    assert.deepEqual(shape('base_model.model.model.norm.weight'), [64]);
    await ck.close();
    const doc = JSON.parse(await readFile(join(out, 'extraction.json'), 'utf8'));
    assert.equal(doc.schemaVersion, 1);
    assert.deepEqual(doc.policy, { rank: 8 });
    assert.equal(doc.modules.length, 16);
    assert.equal(doc.totalParams, r.totalParams);
    assert.equal(doc.modules[1].params, 8 * (64 + 64));
    // f32 factors of an exact SVD: the measured error is the Eckart–Young optimum, embeddings included.
    for (const m of r.modules)
      assert.ok(
        Math.abs(m.relativeError - m.optimalError) < 1e-4,
        `${m.module} (${m.kind}): ${m.relativeError} vs ${m.optimalError}`,
      );
    assert.ok(r.modules.some((m) => m.kind === 'embedding'));
  });

  it('merge(extract(rank = full)) gives back the tuned weights', async () => {
    const out = join(dir, 'full-rank');
    const r = await extractAdapter(tiny().base, tiny().tuned, out, { policy: { rank: 256 } });
    assert.ok(
      r.warnings.some((w) => /--rank 256 is above min\(m, n\) = 64; clamped to 64/.test(w)),
      'clamping is reported',
    );
    for (const m of r.modules)
      assert.ok(m.relativeError < 1e-5, `${m.module} (${m.kind}) at full rank: ${m.relativeError}`);
    const merged = join(dir, 'merged-full');
    await mergeAdapter(tiny().base, out, merged);
    const t = await openCheckpoint(tiny().tuned);
    const m = await openCheckpoint(merged);
    assert.deepEqual(
      m.tensors.map((x) => [x.name, x.dtype, x.shape]),
      t.tensors.map((x) => [x.name, x.dtype, x.shape]),
    );
    for (const info of t.tensors) {
      const [want, got] = [await t.readFloat32(info.name), await m.readFloat32(info.name)];
      let err = 0;
      let norm = 0;
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(want[i]! - got[i]!));
        norm = Math.max(norm, Math.abs(want[i]!));
      }
      assert.ok(err <= 2e-6 * norm, `${info.name}: max error ${err} against max |w| ${norm}`);
    }
    await t.close();
    await m.close();
  });

  it('relativeError is within 1.05× the optimum plus bf16 rounding, and measured', async () => {
    const out = join(dir, 'bf16-r16');
    const r = await extractAdapter(small().base, small().tuned, out, {
      policy: { rank: 16 },
      include: /layers\.[01]\.(self_attn\.[qv]_proj|mlp\.up_proj)\.weight$/,
    });
    assert.equal(r.modules.length, 6);
    assert.equal(r.dtype, 'BF16');
    for (const m of r.modules) {
      const { s, frob } = await exactSigma(small(), `${m.module}.weight`);
      const optimum = Math.sqrt(Math.max(0, 1 - s.slice(0, 16).reduce((a, v) => a + v * v, 0) / frob));
      // The optimum reported comes from the randomized σ, lower bounds of the exact ones: an upper bound, said so, and close.
      assert.equal(m.bound, true, `${m.module}: a randomized optimum is marked as a bound`);
      assert.ok(
        m.optimalError >= optimum * (1 - 1e-6),
        `${m.module}: ${m.optimalError} is an upper bound of the exact optimum ${optimum}`,
      );
      assert.ok(
        m.optimalError - optimum < 0.02 * optimum,
        `${m.module}: optimum ${m.optimalError} vs exact ${optimum}`,
      );
      // bf16 keeps 8 bits: rounding the factors adds about 2⁻⁹ relative error to B·A.
      assert.ok(m.relativeError <= 1.05 * optimum + 2 ** -8, `${m.module}: ${m.relativeError} vs optimum ${optimum}`);
      assert.ok(m.relativeError >= optimum - 1e-6, `${m.module}: measured error cannot beat Eckart–Young`);
    }
    assert.equal(r.summary.optimalIsBound, true);
  });
});

describe('extract: rank policies', () => {
  it('--energy and --error pick the ranks an exact SVD gives', async () => {
    for (const policy of [{ energy: 0.9 }, { error: 0.2 }]) {
      const r = await extractAdapter(tiny().base, tiny().tuned, join(dir, `policy-${Object.keys(policy)[0]}`), {
        policy,
        embeddings: 'skip',
      });
      const target = policy.energy ?? 1 - policy.error! ** 2;
      for (const m of r.modules) {
        const { s, frob } = await exactSigma(tiny(), `${m.module}.weight`);
        assert.equal(m.rank, smallestRank(s, frob, target), `${m.module} with ${JSON.stringify(policy)}`);
      }
    }
  });

  it('--budget spends no more than N and beats every fixed rank of the same cost', async () => {
    const opts = { embeddings: 'skip' as const, norms: 'skip' as const };
    for (const rank of [2, 6]) {
      const fixed = await extractAdapter(tiny().base, tiny().tuned, join(dir, `fixed-${rank}`), {
        policy: { rank },
        ...opts,
      });
      const budget = fixed.summary.loraParams;
      const greedy = await extractAdapter(tiny().base, tiny().tuned, join(dir, `budget-${rank}`), {
        policy: { budget },
        ...opts,
      });
      assert.ok(greedy.summary.loraParams <= budget, `spent ${greedy.summary.loraParams} of ${budget}`);
      const sq = (r: typeof fixed) => r.modules.reduce((a, m) => a + (m.relativeError * m.deltaNorm) ** 2, 0);
      assert.ok(
        sq(greedy) <= sq(fixed) * (1 + 1e-6),
        `rank ${rank}: budget error² ${sq(greedy)} vs fixed ${sq(fixed)}`,
      );
      assert.ok(new Set(greedy.modules.map((m) => m.rank)).size > 1, 'the budget allocates different ranks');
    }
  });

  it('a budget too small for one rank everywhere fails with the minimum', async () => {
    await assert.rejects(
      extractAdapter(tiny().base, tiny().tuned, join(dir, 'too-small'), { policy: { budget: 1000 } }),
      (e: unknown) =>
        e instanceof UsageError &&
        /`budget` 1000 is too small: one rank in each of the 16 modules takes 2976 parameters \(the minimum\)/.test(
          e.message,
        ),
    );
  });
});

describe('extract: modules that are not plain linears', () => {
  it('--embeddings full and --profile vllm', async () => {
    const full = await extractAdapter(tiny().base, tiny().tuned, join(dir, 'emb-full'), {
      policy: { rank: 4 },
      embeddings: 'full',
    });
    assert.ok(full.modulesToSave.includes('model.embed_tokens') && full.modulesToSave.includes('lm_head'));
    assert.ok(!full.modules.some((m) => m.module === 'lm_head'));
    const vllm = await extractAdapter(tiny().base, tiny().tuned, join(dir, 'vllm'), {
      policy: { rank: 4 },
      profile: 'vllm',
    });
    const config = JSON.parse(await readFile(join(dir, 'vllm', 'adapter_config.json'), 'utf8'));
    assert.ok(config.modules_to_save === null || config.modules_to_save.length === 0, 'no modules_to_save');
    assert.equal(vllm.modulesToSave.length, 0);
    const ck = await openCheckpoint(join(dir, 'vllm', 'adapter_model.safetensors'));
    assert.ok(
      ck.tensors.every((t) => /lora_(embedding_)?[AB]/.test(t.name)),
      'only LoRA factors',
    );
    await ck.close();
  });
});

describe('extract: tied embeddings', () => {
  it('handles lm_head once, with the input embeddings, when config.json ties them', async () => {
    const pair = join(dir, 'tied');
    await writeSynthPair(pair, { shape: 'tiny', dtype: 'F32', seed: 13 });
    const configFile = join(pair, 'base', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    await writeFile(configFile, JSON.stringify({ ...config, tie_word_embeddings: true }));
    const r = await extractAdapter(join(pair, 'base'), join(pair, 'tuned'), join(dir, 'tied-lora'), {
      policy: { rank: 4 },
    });
    assert.ok(r.modules.some((m) => m.module === 'model.embed_tokens'));
    assert.ok(!r.modules.some((m) => m.module === 'lm_head'));
    assert.match(r.skipped.find((s) => s.name === 'lm_head.weight')!.reason, /tied to the token embeddings/);
    const config2 = JSON.parse(await readFile(join(dir, 'tied-lora', 'adapter_config.json'), 'utf8'));
    assert.equal(config2.ensure_weight_tying, true, 'PEFT ties the lm_head adapter to the embeddings only when asked');
  });
});

describe('merge and resize', () => {
  it('resize to rank 4 of a rank-8 extraction equals extracting rank 4', async () => {
    const opts = { embeddings: 'skip' as const, norms: 'skip' as const };
    await extractAdapter(tiny().base, tiny().tuned, join(dir, 'r8'), { policy: { rank: 8 }, ...opts });
    const direct = await extractAdapter(tiny().base, tiny().tuned, join(dir, 'r4'), { policy: { rank: 4 }, ...opts });
    const resized = await resizeAdapter(join(dir, 'r8'), join(dir, 'r8to4'), { rank: 4 });
    const m1 = await mergeAdapter(tiny().base, join(dir, 'r4'), join(dir, 'merged-r4'));
    const m2 = await mergeAdapter(tiny().base, join(dir, 'r8to4'), join(dir, 'merged-r8to4'));
    assert.deepEqual(m1.merged, m2.merged);
    // Both are best rank-4 approximations of ΔW (Eckart–Young): the same error against the tuned weights,
    // though not the same weights where σ_4 ≈ σ_5 leaves the rank-4 subspace ill-determined.
    const t = await openCheckpoint(tiny().tuned);
    const c1 = await openCheckpoint(join(dir, 'merged-r4'));
    const c2 = await openCheckpoint(join(dir, 'merged-r8to4'));
    for (const name of m1.merged) {
      const want = await t.readFloat32(name);
      const dist = async (c: typeof c1) => {
        const got = await c.readFloat32(name);
        let sq = 0;
        for (let i = 0; i < want.length; i++) sq += (want[i]! - got[i]!) ** 2;
        return Math.sqrt(sq);
      };
      const [e1, e2] = [await dist(c1), await dist(c2)];
      const d = direct.modules.find((x) => `${x.module}.weight` === name)!;
      assert.ok(Math.abs(e1 - e2) <= 0.01 * e1, `${name}: direct ${e1} vs resized ${e2}`);
      assert.ok(Math.abs(e1 / d.deltaNorm - d.relativeError) < 1e-4, `${name}: merge reproduces the measured error`);
    }
    await t.close();
    await c1.close();
    await c2.close();
    for (const m of resized.modules) {
      assert.equal(m.rank, 4);
      assert.equal(m.fromRank, 8);
      assert.ok(m.energy > 0 && m.energy <= 1);
    }
  });

  it('fails clearly on an adapter folder missing a file, and on an adapter of another model', async () => {
    await extractAdapter(tiny().base, tiny().tuned, join(dir, 'broken'), { policy: { rank: 2 } });
    await unlink(join(dir, 'broken', 'adapter_model.safetensors'));
    await assert.rejects(
      mergeAdapter(tiny().base, join(dir, 'broken'), join(dir, 'nope')),
      (e: unknown) => e instanceof FormatError && /adapter_model\.safetensors/.test(e.message),
    );
    await extractAdapter(small().base, small().tuned, join(dir, 'small-r2'), {
      policy: { rank: 2 },
      include: /layers\.0\.self_attn\.q_proj/,
    });
    await assert.rejects(
      mergeAdapter(tiny().base, join(dir, 'small-r2'), join(dir, 'nope')),
      (e: unknown) => e instanceof ShapeError && /q_proj is \[512, 512\] but .* is \[64, 64\]/.test(e.message),
    );
  });

  it('refuses an existing output without force and leaves nothing behind on failure', async () => {
    await assert.rejects(
      extractAdapter(tiny().base, tiny().tuned, join(dir, 'r8'), { policy: { rank: 2 } }),
      (e: unknown) => e instanceof UsageError && /already exists/.test(e.message),
    );
    await assert.rejects(
      extractAdapter(tiny().base, join(dir, 'small', 'tuned'), join(dir, 'never'), { policy: { rank: 2 } }),
      ShapeError,
    );
    await assert.rejects(readFile(join(dir, 'never', 'adapter_config.json')), /ENOENT/);
  });
});
