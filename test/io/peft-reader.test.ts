import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { FormatError, UsageError } from '../../src/errors.js';
import {
  checkConfig,
  expertFactors,
  type LoraModule,
  readAdapter,
  resolveParamLora,
  writeAdapter,
  writeSafetensors,
} from '../../src/io/index.js';
import { put, scratch } from './helpers.js';

const P = 'base_model.model.';
const Q = 'model.layers.0.self_attn.q_proj';

/** An adapter folder with `tensors` (name → [shape, values]) and `config`. */
async function adapterDir(
  tensors: Record<string, [number[], ArrayLike<number>]>,
  config: Record<string, unknown>,
): Promise<string> {
  const dir = await scratch();
  const names = Object.keys(tensors);
  await writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    names.map((name) => ({ name, dtype: 'F32' as const, shape: tensors[name]![0] })),
    (_s, i) => Float32Array.from(tensors[names[i]!]![1]),
  );
  await put(dir, 'adapter_config.json', JSON.stringify({ peft_type: 'LORA', ...config }));
  return dir;
}

const seq = (n: number, k = 1) => Array.from({ length: n }, (_, i) => Math.sin(k * (i + 1)));
/** q_proj factors of rank 4 on 8 → 8. */
const qFactors = (): Record<string, [number[], number[]]> => ({
  [`${P}${Q}.lora_A.weight`]: [[4, 8], seq(32)],
  [`${P}${Q}.lora_B.weight`]: [[8, 4], seq(32, 2)],
});

async function rejects(dir: string, cls: typeof FormatError | typeof UsageError, pattern: RegExp): Promise<void> {
  await assert.rejects(readAdapter(dir), (err: unknown) => {
    assert.ok(err instanceof cls, String(err));
    assert.match((err as Error).message, pattern);
    return true;
  });
}

test("without lora_alpha the alpha is PEFT's default 8, not r (and without r, r is 8)", async () => {
  const got = await readAdapter(await adapterDir(qFactors(), { r: 4 }));
  assert.equal(got.modules[0]!.alpha, 8);
  assert.equal(got.settings.loraAlpha, 8);
  assert.equal(checkConfig({}).r, 8);
});

test('rank_pattern / alpha_pattern: the first key in the file that matches wins, as get_pattern_key does', async () => {
  // PEFT walks the keys in order: "q_proj" matches before the exact path is reached.
  const got = await readAdapter(
    await adapterDir(qFactors(), { r: 4, lora_alpha: 16, alpha_pattern: { q_proj: 2, [Q]: 3 } }),
  );
  assert.equal(got.modules[0]!.alpha, 2);
  // A tail must end at a dot: "proj" does not match "q_proj".
  const tail = await readAdapter(await adapterDir(qFactors(), { r: 4, lora_alpha: 16, alpha_pattern: { proj: 2 } }));
  assert.equal(tail.modules[0]!.alpha, 16);
});

test('every LoraConfig field: the understood and the irrelevant pass, the rest is refused naming the field', () => {
  const fine = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: 4,
    lora_alpha: 8,
    lora_dropout: 0.1,
    target_modules: ['q_proj'],
    exclude_modules: 'x',
    layers_to_transform: [0],
    layers_pattern: 'layers',
    bias: 'lora_only',
    fan_in_fan_out: true,
    use_rslora: true,
    init_lora_weights: 'gaussian',
    modules_to_save: ['lm_head'],
    rank_pattern: {},
    alpha_pattern: {},
    megatron_core: 'megatron.core',
    qalora_group_size: 16,
    inference_mode: true,
    eva_config: null,
    corda_config: null,
    loftq_config: {},
    use_qalora: false,
    layer_replication: null,
    peft_version: '0.21.0',
    revision: null,
    auto_mapping: { base_model_class: 'LlamaForCausalLM' },
    ensure_weight_tying: false,
    target_parameters: null,
    deltarank_task: 'mnist',
  };
  const s = checkConfig(fine);
  assert.deepEqual(
    [s.r, s.loraAlpha, s.useRslora, s.fanInFanOut, s.useDora, s.loraBias],
    [4, 8, true, true, false, false],
  );
  const refused: [string, unknown][] = [
    ['megatron_config', { tensor_model_parallel_size: 2 }],
    ['trainable_token_indices', [1, 2]],
    ['loftq_config', { loftq_bits: 4 }],
    ['lora_ga_config', { direction: 'ArB2r' }],
    ['use_qalora', true],
    ['layer_replication', [[0, 2]]],
    ['alora_invocation_tokens', [5]],
    ['arrow_config', { top_k: 2 }],
    ['use_bdlora', { nblocks: 2 }],
    ['kasa_config', { r: 2 }],
    ['velora_config', { rank: 2 }],
    ['monteclora_config', { num_samples: 2 }],
    ['some_future_field', 3],
  ];
  for (const [field, value] of refused) {
    assert.throws(
      () => checkConfig({ ...fine, [field]: value }),
      (err: unknown) => err instanceof FormatError && err.message.includes(`"${field}"`),
      field,
    );
  }
  for (const init of ['pissa', 'pissa_niter_4', 'olora', 'corda', 'loftq', 'lora_ga', 'mica']) {
    assert.throws(
      () => checkConfig({ ...fine, init_lora_weights: init }),
      /"init_lora_weights" is ".*": that initialisation changes the base weights/,
      init,
    );
  }
  assert.throws(() => checkConfig({ peft_type: 'ADALORA' }), /peft_type is "ADALORA", not "LORA"/);
  assert.throws(() => checkConfig({ bias: 'some' }), /"bias" is "some"/);
  assert.throws(() => checkConfig({ use_dora: true, lora_bias: true }), /"use_dora" and "lora_bias" are both true/);
  assert.throws(
    () => checkConfig({ rank_pattern: { q_proj: 'two' } }),
    /"rank_pattern" gives "q_proj" the value "two"/,
  );
});

test('lora_B.bias, DoRA magnitudes and keys of other methods are checked against the config', async () => {
  const bias = { [`${P}${Q}.lora_B.bias`]: [[8], seq(8)] as [number[], number[]] };
  const mag = { [`${P}${Q}.lora_magnitude_vector`]: [[8], seq(8)] as [number[], number[]] };
  const withBias = await readAdapter(await adapterDir({ ...qFactors(), ...bias }, { r: 4, lora_bias: true }));
  assert.deepEqual(withBias.modules[0]!.bias, Float32Array.from(seq(8)));
  assert.deepEqual(withBias.fullWeights, [], "lora_B.bias is the module's, not a full weight");
  const withMag = await readAdapter(await adapterDir({ ...qFactors(), ...mag }, { r: 4, use_dora: true }));
  assert.deepEqual(withMag.modules[0]!.magnitude, Float32Array.from(seq(8)));

  await rejects(
    await adapterDir({ ...qFactors(), ...bias }, { r: 4 }),
    FormatError,
    /lora_B\.bias" is a lora_B bias but adapter_config\.json does not set "lora_bias": true/,
  );
  await rejects(
    await adapterDir(qFactors(), { r: 4, lora_bias: true }),
    FormatError,
    /has no lora_B\.bias but adapter_config\.json sets "lora_bias": true/,
  );
  await rejects(
    await adapterDir({ ...qFactors(), ...mag }, { r: 4 }),
    FormatError,
    /is a DoRA magnitude but adapter_config\.json does not set "use_dora": true/,
  );
  await rejects(
    await adapterDir(qFactors(), { r: 4, use_dora: true }),
    FormatError,
    /has no lora_magnitude_vector but adapter_config\.json sets "use_dora": true/,
  );
  await rejects(
    await adapterDir({ ...qFactors(), [`${P}${Q}.lora_magnitude_vector`]: [[7], seq(7)] }, { r: 4, use_dora: true }),
    FormatError,
    /has shape \[7\], expected \[8\]/,
  );
  await rejects(
    await adapterDir({ [`${P}${Q}.lora_A.default.weight`]: [[4, 8], seq(32)] }, { r: 4 }),
    FormatError,
    /"base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.default\.weight" is not one of PEFT 0\.21's LoRA keys/,
  );
  await rejects(
    await adapterDir({ ...qFactors(), [`${P}${Q}.lora_E`]: [[4, 1], seq(4)] }, { r: 4 }),
    FormatError,
    /lora_E" is not one of PEFT 0\.21's LoRA keys/,
  );
});

test('full weights are named by the base tensor they replace; the saved key is kept beside', async () => {
  const got = await readAdapter(
    await adapterDir(
      {
        [`${P}model.embed_tokens.base_layer.weight`]: [[6, 2], seq(12)],
        [`${P}lm_head.modules_to_save.weight`]: [[6, 2], seq(12, 3)],
        [`${P}transformer.h.0.attn.c_attn.base_layer.bias`]: [[3], seq(3)],
        [`${P}model.norm.weight`]: [[2], seq(2)],
      },
      { r: 4, bias: 'lora_only', modules_to_save: ['lm_head', 'norm'] },
    ),
  );
  const pairs = got.fullWeights.map((w, i) => [w.name, got.fullWeightKeys[i]]);
  assert.deepEqual(pairs.sort(), [
    ['lm_head.weight', 'lm_head.modules_to_save.weight'],
    ['model.embed_tokens.weight', 'model.embed_tokens.base_layer.weight'],
    ['model.norm.weight', 'model.norm.weight'],
    ['transformer.h.0.attn.c_attn.bias', 'transformer.h.0.attn.c_attn.base_layer.bias'],
  ]);
  await rejects(
    await adapterDir(
      { [`${P}lm_head.weight`]: [[2], seq(2)], [`${P}lm_head.modules_to_save.weight`]: [[2], seq(2)] },
      { r: 4 },
    ),
    FormatError,
    /both replace "lm_head\.weight"/,
  );
});

test("target_parameters: nested wrappers, PEFT's expert layout of the factors, resolution by rank and shape", async () => {
  const E = 3;
  const r = 2;
  const owner = 'model.layers.0.mlp.experts';
  // outer wrapper: down_proj-like [E, 5, 4] (in 4, out 5); inner (base_layer): gate_up-like [E, 6, 5] (in 5, out 6)
  const dir = await adapterDir(
    {
      [`${P}${owner}.lora_A.weight`]: [[E * r, 4], seq(E * r * 4)],
      [`${P}${owner}.lora_B.weight`]: [[5, E * r], seq(5 * E * r, 2)],
      [`${P}${owner}.base_layer.lora_A.weight`]: [[E * r, 5], seq(E * r * 5, 3)],
      [`${P}${owner}.base_layer.lora_B.weight`]: [[6, E * r], seq(6 * E * r, 4)],
    },
    { r, lora_alpha: 4, target_parameters: ['experts.gate_up_proj', 'experts.down_proj'] },
  );
  const got = await readAdapter(dir);
  assert.equal(got.modules.length, 0);
  assert.deepEqual(
    got.paramModules.map((p) => [p.owner, p.level, p.candidates.sort()]),
    [
      [owner, 0, ['down_proj', 'gate_up_proj']],
      [owner, 1, ['down_proj', 'gate_up_proj']],
    ],
  );
  const outer = got.paramModules.find((p) => p.level === 0)!;
  // Both candidates share r, so only the base's shapes tell which is which.
  assert.throws(
    () => resolveParamLora(outer, got.settings),
    (e: unknown) => e instanceof UsageError && /may adapt .* give the base checkpoint/.test((e as Error).message),
  );
  const shapes: Record<string, number[]> = { [`${owner}.gate_up_proj`]: [E, 6, 5], [`${owner}.down_proj`]: [E, 5, 4] };
  const res = resolveParamLora(outer, got.settings, (n) => shapes[n]);
  assert.deepEqual(res, { name: `${owner}.down_proj`, rank: r, alpha: 4, experts: E, transposed: false });
  // [E, in, out] storage (is_transposed modules) is told apart by the shape too.
  assert.equal(
    resolveParamLora(outer, got.settings, (n) => (n.endsWith('down_proj') ? [E, 4, 5] : undefined)).transposed,
    true,
  );
  assert.throws(() => resolveParamLora(outer, got.settings, () => [E, 9, 9]), FormatError);
  // PEFT's get_delta_weight: einsum("o r e, e r i -> e o i", B.reshape(out, r, E), A.reshape(E, r, in)).
  for (let e = 0; e < E; e++) {
    const { a, b } = expertFactors(outer, res, e);
    for (let o = 0; o < 5; o++)
      for (let i = 0; i < 4; i++) {
        let want = 0;
        for (let j = 0; j < r; j++) want += outer.b[o * E * r + j * E + e]! * outer.a[(e * r + j) * 4 + i]!;
        let got2 = 0;
        for (let j = 0; j < r; j++) got2 += b[o * r + j]! * a[j * 4 + i]!;
        assert.ok(Math.abs(got2 - want) < 1e-12, `expert ${e} [${o}, ${i}]`);
      }
  }
  await rejects(
    await adapterDir(
      {
        [`${P}${Q}.base_layer.lora_A.weight`]: [[4, 8], seq(32)],
        [`${P}${Q}.base_layer.lora_B.weight`]: [[8, 4], seq(32)],
      },
      { r: 4 },
    ),
    FormatError,
    /nested PEFT wrapper, which only target_parameters makes/,
  );
});

test("ensure_weight_tying: lm_head factors that are the embedding's transposed are its tied twin", async () => {
  const emb: LoraModule = {
    module: 'model.embed_tokens',
    kind: 'embedding',
    rank: 2,
    alpha: 2,
    a: Float32Array.from(seq(12)),
    b: Float32Array.from(seq(8, 2)),
    inFeatures: 6,
    outFeatures: 4,
  };
  const dir = join(await scratch(), 'tied');
  await writeAdapter(dir, {
    modules: [emb],
    dtype: 'F32',
    tiedModules: [{ module: 'lm_head', source: 'model.embed_tokens' }],
  });
  const got = await readAdapter(dir);
  assert.equal(got.settings.ensureWeightTying, true);
  assert.deepEqual(got.tied, [{ module: 'lm_head', source: 'model.embed_tokens' }]);
  // The same layout without ensure_weight_tying is two modules, not a tie.
  const untied = await readAdapter(
    await adapterDir(
      Object.fromEntries(
        (await readAdapter(dir)).modules.flatMap((m) => [
          m.kind === 'embedding'
            ? [`${P}${m.module}.lora_embedding_A`, [[m.rank, m.inFeatures], m.a]]
            : [`${P}${m.module}.lora_A.weight`, [[m.rank, m.inFeatures], m.a]],
          m.kind === 'embedding'
            ? [`${P}${m.module}.lora_embedding_B`, [[m.outFeatures, m.rank], m.b]]
            : [`${P}${m.module}.lora_B.weight`, [[m.outFeatures, m.rank], m.b]],
        ]),
      ),
      { r: 2, lora_alpha: 2 },
    ),
  );
  assert.deepEqual(untied.tied, []);
  assert.equal(untied.modules.length, 2);
});
