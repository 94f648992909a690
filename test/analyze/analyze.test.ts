import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Matrix as MlMatrix, SVD } from 'ml-matrix';
import { analyzeCheckpoints, analyzeDelta, type TensorSpectrum } from '../../src/analyze/index.js';
import { FormatError, ShapeError, UsageError } from '../../src/errors.js';
import { openCheckpoint, writeCheckpoint } from '../../src/io/index.js';
import { writeSynthPair } from '../../src/synth/index.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';

/** LAPACK (torch.linalg.svdvals in f64) on every ΔW of a pair. */
const LAPACK_SCRIPT = join(import.meta.dirname, 'lapack_spectra.py');

/** Exact singular values of base→tuned ΔW for one tensor, by ml-matrix (independent of src/svd). */
async function exactSpectrum(dir: string, name: string): Promise<{ s: number[]; frob: number }> {
  const base = await openCheckpoint(join(dir, 'base'));
  const tuned = await openCheckpoint(join(dir, 'tuned'));
  const [w, t] = [await base.readFloat32(name), await tuned.readFloat32(name)];
  const [m, n] = base.info(name).shape as [number, number];
  await base.close();
  await tuned.close();
  const rows: number[][] = [];
  let frob = 0;
  for (let i = 0; i < m; i++) {
    const row: number[] = [];
    for (let j = 0; j < n; j++) {
      // ΔW as deltarank forms it: one f32 subtraction.
      const d = Math.fround(t[i * n + j]! - w[i * n + j]!);
      row.push(d);
      frob += d * d;
    }
    rows.push(row);
  }
  const svd = new SVD(new MlMatrix(rows), {
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
    autoTranspose: true,
  });
  return { s: svd.diagonal, frob };
}

function rankAtExact(s: number[], frob: number, t: number): number | null {
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc += s[i]! ** 2;
    if (acc / frob >= t - 1e-12) return i + 1;
  }
  return null;
}

/**
 * What the document certifies holds against the truth: every value inside its bounds, every exact
 * rankAt equal to the true rank, every interval holding it (and wider than one rank).
 */
export function checkCertified(t: TensorSpectrum, s: number[], frob: number): void {
  const k = t.singularValues.length;
  assert.equal(t.bounds.lower.length, k);
  assert.equal(t.bounds.upper.length, k);
  // The truth is f64 LAPACK on the same f32 ΔW; a relative 1e-12 covers its own rounding.
  const tiny = 1e-12 * s[0]!;
  for (let i = 0; i < k; i++) {
    assert.ok(
      t.bounds.lower[i]! <= s[i]! + tiny,
      `${t.name}: σ_${i + 1} = ${s[i]} below its lower bound ${t.bounds.lower[i]} (${t.method})`,
    );
    assert.ok(
      t.bounds.upper[i]! >= s[i]! - tiny,
      `${t.name}: σ_${i + 1} = ${s[i]} above its upper bound ${t.bounds.upper[i]} (${t.method})`,
    );
  }
  for (const key of Object.keys(t.rankAt)) {
    const exact = rankAtExact(s, frob, Number(key));
    const got = t.rankAt[key]!;
    assert.notEqual(got, null, `${t.name}: rankAt ${key} is null`);
    if (typeof got === 'number') assert.equal(got, exact, `${t.name}: rankAt ${key} claimed exact (${t.method})`);
    else
      assert.ok(
        exact !== null && got.lo < got.hi && got.lo <= exact && exact <= got.hi,
        `${t.name}: rankAt ${key} ∈ ${got.lo}–${got.hi} misses ${exact}`,
      );
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-analyze-'));
  await writeSynthPair(join(dir, 'tiny'), { shape: 'tiny', dtype: 'F32', seed: 3 });
  await writeSynthPair(join(dir, 'small'), { shape: 'small', dtype: 'BF16', seed: 5 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every reported value against the exact SVD, to the SVD issue's tolerances. */
async function checkAgainstExact(pair: string, result: Awaited<ReturnType<typeof analyzeCheckpoints>>): Promise<void> {
  for (const t of result.tensors) {
    const { s, frob } = await exactSpectrum(join(dir, pair), t.name);
    assert.ok(
      Math.abs(t.deltaNorm - Math.sqrt(frob)) <= 1e-6 * Math.sqrt(frob),
      `${t.name}: ‖ΔW‖ ${t.deltaNorm} vs ${Math.sqrt(frob)}`,
    );
    const k = t.singularValues.length;
    assert.ok(k > 0 && k <= s.length);
    // Randomized values are lower bounds (QᵀA's σ interlace A's). They are accurate to 1e-4 where the
    // spectrum stands well clear of σ_{k+1} (4×); in a flat noise floor near it no few power iterations separate them.
    const floor = k < s.length ? s[k]! : 0;
    for (let i = 0; i < k; i++) {
      assert.ok(
        t.singularValues[i]! <= s[i]! * (1 + 1e-5) + 1e-12,
        `${t.name}: σ_${i + 1} ${t.singularValues[i]} above exact ${s[i]}`,
      );
      if (s[i]! < 1e-3 * s[0]! || s[i]! < 4 * floor) continue;
      const rel = Math.abs(t.singularValues[i]! - s[i]!) / s[i]!;
      assert.ok(
        rel <= 1e-4,
        `${t.name}: σ_${i + 1} ${t.singularValues[i]} vs exact ${s[i]} (rel ${rel.toExponential(2)}, ${t.method})`,
      );
    }
    let acc = 0;
    let accurate = true;
    for (let i = 0; i < k; i++) {
      acc += s[i]! ** 2;
      if (s[i]! < 4 * floor) accurate = false;
      const e = acc / frob;
      assert.ok(t.energy[i]! <= e + 1e-6, `${t.name}: E(${i + 1}) ${t.energy[i]} above exact ${e}`);
      if (accurate) assert.ok(Math.abs(t.energy[i]! - e) <= 1e-4, `${t.name}: E(${i + 1}) ${t.energy[i]} vs ${e}`);
    }
    checkCertified(t, s, frob);
    assert.ok(Math.abs(t.stableRank - frob / s[0]! ** 2) <= 1e-3 * t.stableRank, `${t.name}: stable rank`);
    assert.equal(t.complete, k === Math.min(...t.shape));
    if (t.complete) {
      const sum = s.reduce((a, v) => a + v, 0);
      const entropy = -s.reduce((a, v) => (v > 0 ? a + (v / sum) * Math.log(v / sum) : a), 0);
      assert.ok(
        Math.abs(t.effectiveRank! - Math.exp(entropy)) <= 1e-3 * Math.exp(entropy),
        `${t.name}: effective rank`,
      );
    } else assert.equal(t.effectiveRank, null);
  }
}

describe('analyze against an exact SVD of the stored ΔW', () => {
  it('tiny pair (f32): every tensor, default settings', async () => {
    const result = await analyzeCheckpoints(join(dir, 'tiny', 'base'), join(dir, 'tiny', 'tuned'));
    assert.equal(result.tensors.length, 16);
    assert.ok(result.others.length > 0, 'norm weights reported by their change');
    assert.deepEqual(result.skipped, []);
    await checkAgainstExact('tiny', result);
  });

  it('small pair (bf16, adaptive path): attention and MLP tensors', async () => {
    const include = /layers\.0\.(self_attn\.q_proj|mlp\.down_proj)\.weight$/;
    const result = await analyzeCheckpoints(join(dir, 'small', 'base'), join(dir, 'small', 'tuned'), {
      include,
      topK: 32,
      refine: false,
    });
    assert.equal(result.tensors.length, 2);
    assert.ok(
      result.tensors.every((t) => t.method === 'adaptive' && !t.complete),
      result.tensors.map((t) => t.method).join(),
    );
    await checkAgainstExact('small', result);
  });

  it("small pair (bf16), default settings: every rankAt certified exact and equal to LAPACK's, every σ inside its bounds", {
    skip: NO_PYTHON,
  }, async () => {
    const pair = join(dir, 'small');
    const result = await analyzeCheckpoints(join(pair, 'base'), join(pair, 'tuned'));
    const truth = await runPython<Record<string, { s: number[]; frob: number }>>(LAPACK_SCRIPT, [
      join(pair, 'base'),
      join(pair, 'tuned'),
    ]);
    assert.equal(result.tensors.length, 30);
    assert.equal(result.schemaVersion, 2);
    for (const t of result.tensors) {
      const { s, frob } = truth[t.name]!;
      assert.ok(Math.abs(t.deltaNorm ** 2 - frob) <= 1e-6 * frob, `${t.name}: ‖ΔW‖²`);
      for (const [key, r] of Object.entries(t.rankAt))
        assert.equal(typeof r, 'number', `${t.name}: rankAt ${key} = ${JSON.stringify(r)} (${t.refinement})`);
      checkCertified(t, s, frob);
      // Complete spectra at LAPACK accuracy: within 1e-5 relative for every σ ≥ 1e-6·σ₁.
      if (t.complete)
        for (let i = 0; i < s.length && s[i]! >= 1e-6 * s[0]!; i++)
          assert.ok(
            Math.abs(t.singularValues[i]! - s[i]!) <= 1e-5 * s[i]!,
            `${t.name}: σ_${i + 1} ${t.singularValues[i]} vs LAPACK ${s[i]}`,
          );
    }
  });

  it('a refinement cap of 0 leaves open ranks as intervals that hold the truth, and says why', async () => {
    const include = /layers\.1\.(self_attn\.o_proj|mlp\.gate_proj)\.weight$/;
    const result = await analyzeCheckpoints(join(dir, 'small', 'base'), join(dir, 'small', 'tuned'), {
      include,
      refineCapSeconds: 0,
    });
    assert.equal(result.refineCapSeconds, 0);
    assert.equal(result.tensors.length, 2);
    for (const t of result.tensors) {
      assert.equal(t.method, 'adaptive');
      assert.ok(
        Object.values(t.rankAt).some((r) => typeof r !== 'number'),
        `${t.name}: some rank stays open`,
      );
      assert.match(t.refinement ?? '', /left as intervals: .*(noise floor|cap)/);
    }
    await checkAgainstExact('small', result);
  });

  it('the same document one spectrum at a time and several at once (`jobs`), default and --exact', async () => {
    const [base, tuned] = [join(dir, 'small', 'base'), join(dir, 'small', 'tuned')];
    for (const exact of [false, true]) {
      const include = /layers\.1\./;
      const one = await analyzeCheckpoints(base, tuned, { exact, include, jobs: 1 });
      const three = await analyzeCheckpoints(base, tuned, { exact, include, jobs: 3 });
      assert.ok(one.tensors.length >= 7);
      assert.deepEqual(
        three.tensors.map((t) => t.name),
        one.tensors.map((t) => t.name),
        'listed in checkpoint order',
      );
      for (const [i, t] of three.tensors.entries()) {
        const u = one.tensors[i]!;
        assert.deepEqual(t.rankAt, u.rankAt, `${t.name}: rankAt`);
        assert.equal(t.method, u.method);
        for (const [k, v] of t.singularValues.entries())
          assert.ok(Math.abs(v - u.singularValues[k]!) <= 1e-12 * u.singularValues[0]!, `${t.name}: σ_${k + 1}`);
      }
    }
    await assert.rejects(analyzeCheckpoints(base, tuned, { jobs: 0 }), (e: unknown) => {
      assert.ok(e instanceof UsageError && e.option === 'jobs', String(e));
      return true;
    });
  });

  it('--exact gives complete spectra', async () => {
    const result = await analyzeCheckpoints(join(dir, 'small', 'base'), join(dir, 'small', 'tuned'), {
      include: /layers\.1\.self_attn\.k_proj/,
      exact: true,
    });
    assert.equal(result.tensors.length, 1);
    assert.equal(result.tensors[0]!.complete, true);
    assert.equal(result.tensors[0]!.singularValues.length, 128);
    await checkAgainstExact('small', result);
  });
});

describe('analyze inputs', () => {
  it('--delta reads ΔW directly and agrees with base/tuned', async () => {
    const base = await openCheckpoint(join(dir, 'tiny', 'base'));
    const tuned = await openCheckpoint(join(dir, 'tiny', 'tuned'));
    const names = base.tensors.map((t) => t.name);
    const deltaDir = join(dir, 'delta');
    await writeCheckpoint(
      deltaDir,
      base.tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape })),
      async (spec) => {
        const [w, v] = [await base.readFloat32(spec.name), await tuned.readFloat32(spec.name)];
        return v.map((x, i) => x - w[i]!);
      },
    );
    await base.close();
    await tuned.close();
    const direct = await analyzeDelta(deltaDir);
    const paired = await analyzeCheckpoints(join(dir, 'tiny', 'base'), join(dir, 'tiny', 'tuned'));
    assert.equal(direct.tensors.length, paired.tensors.length);
    for (const [i, t] of direct.tensors.entries()) {
      assert.equal(t.baseNorm, null);
      assert.equal(t.relativeUpdate, null);
      assert.deepEqual(t.rankAt, paired.tensors[i]!.rankAt);
      assert.ok(Math.abs(t.deltaNorm - paired.tensors[i]!.deltaNorm) < 1e-6 * t.deltaNorm);
    }
    assert.equal(names.length, direct.tensors.length + direct.others.length);
  });

  it('base and tuned of different models fail, listing mismatches', async () => {
    await assert.rejects(analyzeCheckpoints(join(dir, 'tiny', 'base'), join(dir, 'small', 'tuned')), (e: unknown) => {
      assert.ok(e instanceof ShapeError);
      assert.match(
        e.message,
        /different models: \d+ of \d+ common tensors differ in shape, e\.g\. model\.\S+: shape \[/,
      );
      return true;
    });
  });

  it('a resized vocabulary or a tensor on one side only is skipped, not fatal', async () => {
    const src = await openCheckpoint(join(dir, 'tiny', 'tuned'));
    const odd = join(dir, 'odd');
    const specs = src.tensors
      .filter((t) => t.name !== 'model.norm.weight')
      .map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.name === 'model.embed_tokens.weight' ? [t.shape[0]! + 2, t.shape[1]!] : t.shape,
      }));
    specs.push({ name: 'extra.weight', dtype: 'F32', shape: [3] });
    await writeCheckpoint(odd, specs, async (spec) => {
      if (spec.name === 'extra.weight') return new Float32Array(3);
      const data = await src.readFloat32(spec.name);
      if (spec.name !== 'model.embed_tokens.weight') return data;
      const grown = new Float32Array(data.length + 2 * spec.shape[1]!);
      grown.set(data);
      return grown;
    });
    await src.close();
    const result = await analyzeCheckpoints(join(dir, 'tiny', 'base'), odd);
    const reasons = Object.fromEntries(result.skipped.map((s) => [s.name, s.reason]));
    assert.equal(reasons['model.embed_tokens.weight'], 'shape [256,64] vs [258,64]');
    assert.equal(reasons['model.norm.weight'], 'only in base');
    assert.equal(reasons['extra.weight'], 'only in tuned');
    assert.equal(result.tensors.length, 15);
  });

  it('non-finite values in ΔW name the tensor', async () => {
    const src = await openCheckpoint(join(dir, 'tiny', 'tuned'));
    const bad = join(dir, 'nan');
    await writeCheckpoint(
      bad,
      src.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
      async (spec) => {
        const data = await src.readFloat32(spec.name);
        if (spec.name === 'model.layers.1.mlp.up_proj.weight') data[17] = Number.NaN;
        return data;
      },
    );
    await src.close();
    await assert.rejects(analyzeCheckpoints(join(dir, 'tiny', 'base'), bad), (e: unknown) => {
      assert.ok(e instanceof FormatError);
      assert.match(e.message, /model\.layers\.1\.mlp\.up_proj\.weight: ΔW has non-finite values .* element 17/);
      return true;
    });
  });
});
