import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type ModelConfig, modelLayout, type TensorRole, taskTypeOf } from '../../src/io/index.js';

/** config.json fields and tensor names/shapes of tiny random models saved by transformers 5.18 (layer 0 of each). */
function fixture(name: string): { config: ModelConfig; tensors: { name: string; shape: number[] }[] } {
  const json = JSON.parse(readFileSync(new URL(`./fixtures/layouts/${name}.json`, import.meta.url), 'utf8')) as {
    config: ModelConfig;
    tensors: [string, number[]][];
  };
  return { config: json.config, tensors: json.tensors.map(([n, shape]) => ({ name: n, shape })) };
}

function roles(name: string): Record<string, TensorRole> {
  const { config, tensors } = fixture(name);
  return Object.fromEntries(modelLayout(config, tensors).tensors.map((t) => [t.name, t.role]));
}

describe('layout table on real tensor lists', () => {
  it('Llama: Linear projections, RMSNorm weights, untied embeddings and lm_head, CAUSAL_LM', () => {
    const { config, tensors } = fixture('llama');
    const l = modelLayout(config, tensors);
    assert.equal(l.family, 'decoder');
    assert.equal(l.taskType, 'CAUSAL_LM');
    assert.equal(l.tiedEmbeddings, false);
    assert.deepEqual(l.warnings, []);
    const r = roles('llama');
    assert.equal(r['model.layers.0.self_attn.q_proj.weight'], 'linear');
    assert.equal(r['model.layers.0.mlp.down_proj.weight'], 'linear');
    assert.equal(r['model.layers.0.input_layernorm.weight'], 'norm');
    assert.equal(r['model.norm.weight'], 'norm');
    assert.equal(r['model.embed_tokens.weight'], 'embedding');
    assert.equal(r['lm_head.weight'], 'lm_head');
    assert.ok(!Object.values(r).includes('unknown'));
    const q = l.byName.get('model.layers.0.self_attn.k_proj.weight')!;
    assert.deepEqual(
      [q.outFeatures, q.inFeatures, q.transposed, q.hasBias, q.module],
      [...tensors.find((t) => t.name === q.name)!.shape, false, false, 'model.layers.0.self_attn.k_proj'],
    );
  });

  it('Qwen2: q/k/v carry biases (hasBias), o_proj none', () => {
    const { config, tensors } = fixture('qwen2');
    const l = modelLayout(config, tensors);
    for (const p of ['q', 'k', 'v']) {
      assert.equal(l.byName.get(`model.layers.0.self_attn.${p}_proj.bias`)!.role, 'bias');
      assert.equal(l.byName.get(`model.layers.0.self_attn.${p}_proj.bias`)!.of, 'linear');
      assert.equal(l.byName.get(`model.layers.0.self_attn.${p}_proj.weight`)!.hasBias, true);
    }
    assert.equal(l.byName.get('model.layers.0.self_attn.o_proj.weight')!.hasBias, false);
  });

  it('Gemma: no lm_head stored, tie_word_embeddings: the embeddings are tied', () => {
    const { config, tensors } = fixture('gemma');
    const l = modelLayout(config, tensors);
    assert.equal(l.tiedEmbeddings, true);
    assert.ok(!tensors.some((t) => t.name.startsWith('lm_head')));
    // Whatever the config says, a causal LM that stores no head beside its embeddings ties them.
    assert.equal(modelLayout({ ...config, tie_word_embeddings: undefined }, tensors).tiedEmbeddings, true);
  });

  it('Phi-3 (fused qkv_proj, gate_up_proj) and Phi-2 (biases everywhere, LayerNorm with bias, lm_head.bias)', () => {
    const p3 = roles('phi3');
    assert.equal(p3['model.layers.0.self_attn.qkv_proj.weight'], 'linear');
    assert.equal(p3['model.layers.0.mlp.gate_up_proj.weight'], 'linear');
    const p2 = roles('phi');
    assert.equal(p2['model.layers.0.self_attn.dense.weight'], 'linear');
    assert.equal(p2['model.layers.0.mlp.fc1.bias'], 'bias');
    assert.equal(p2['model.layers.0.input_layernorm.bias'], 'norm');
    assert.equal(p2['model.final_layernorm.bias'], 'norm');
    assert.equal(p2['lm_head.bias'], 'bias');
    assert.ok(!Object.values(p2).includes('unknown'));
  });

  it('GPT-2: Conv1D weights [in, out] are transposed, wpe is a position embedding, LayerNorm biases are norms', () => {
    const { config, tensors } = fixture('gpt2');
    const l = modelLayout(config, tensors);
    assert.equal(l.family, 'gpt2');
    assert.equal(l.taskType, 'CAUSAL_LM');
    assert.equal(l.tiedEmbeddings, true);
    const c = l.byName.get('transformer.h.0.attn.c_attn.weight')!;
    assert.deepEqual(tensors.find((t) => t.name === c.name)!.shape, [32, 96], 'stored [in, out]');
    assert.deepEqual([c.role, c.transposed, c.outFeatures, c.inFeatures, c.hasBias], ['conv1d', true, 96, 32, true]);
    const wpe = l.byName.get('transformer.wpe.weight')!;
    assert.deepEqual([wpe.role, wpe.embedding], ['embedding', 'position']);
    assert.equal(l.byName.get('transformer.wte.weight')!.embedding, 'token');
    assert.equal(l.byName.get('transformer.h.0.ln_1.bias')!.role, 'norm');
    assert.equal(l.byName.get('transformer.h.0.mlp.c_fc.bias')!.of, 'conv1d');
    // Checkpoints of older transformers store the causal mask: a buffer, never a weight.
    const old = modelLayout(config, [
      ...tensors,
      { name: 'transformer.h.0.attn.bias', shape: [1, 1, 64, 64] },
      { name: 'transformer.h.0.attn.masked_bias', shape: [] },
    ]);
    assert.equal(old.byName.get('transformer.h.0.attn.bias')!.role, 'buffer');
    assert.equal(old.byName.get('transformer.h.0.attn.masked_bias')!.role, 'buffer');
  });

  it('BERT for sequence classification: SEQ_CLS, classifier head, position and token-type embeddings, nothing tied', () => {
    const { config, tensors } = fixture('bert-cls');
    const l = modelLayout(config, tensors);
    assert.equal(l.taskType, 'SEQ_CLS');
    assert.equal(l.tiedEmbeddings, false, 'a classifier has no output embedding to tie');
    const r = roles('bert-cls');
    assert.equal(r['classifier.weight'], 'classifier');
    assert.equal(r['classifier.bias'], 'bias');
    assert.equal(l.byName.get('classifier.bias')!.of, 'classifier');
    assert.equal(l.byName.get('bert.embeddings.token_type_embeddings.weight')!.embedding, 'token_type');
    assert.equal(l.byName.get('bert.embeddings.position_embeddings.weight')!.embedding, 'position');
    assert.equal(r['bert.embeddings.LayerNorm.bias'], 'norm');
    assert.equal(r['bert.encoder.layer.0.attention.self.query.weight'], 'linear');
    assert.equal(r['bert.pooler.dense.weight'], 'linear');
    assert.ok(!Object.values(r).includes('unknown'));
  });

  it('Mixtral and Qwen3-MoE: per-expert weights and the router, with the fused targets PEFT maps them to', () => {
    for (const [name, proj, block] of [
      ['mixtral', 'w1', 'model.layers.0.block_sparse_moe'],
      ['qwen3moe', 'gate_proj', 'model.layers.0.mlp'],
    ] as const) {
      const { config, tensors } = fixture(name);
      const l = modelLayout(config, tensors);
      const e = l.byName.get(`${block}.experts.2.${proj}.weight`)!;
      assert.equal(e.role, 'expert');
      assert.deepEqual(e.expert, { block, index: 2, proj });
      assert.equal(l.byName.get(`${block}.gate.weight`)!.role, 'router');
      assert.ok(l.fusedExperts, `${name}: PEFT fuses its experts`);
      assert.equal(l.tensors.filter((t) => t.role === 'expert').length, 12);
    }
    assert.deepEqual(
      modelLayout(fixture('mixtral').config, fixture('mixtral').tensors).fusedExperts!.fused.gate_up_proj,
      ['w1', 'w3'],
    );
    assert.equal(roles('qwen3moe')['model.layers.0.self_attn.q_norm.weight'], 'norm');
  });

  it('a resized vocabulary keeps its roles (the shapes, not the names, differ)', () => {
    const { config, tensors } = fixture('llama');
    const resized = tensors.map((t) =>
      t.name === 'model.embed_tokens.weight' || t.name === 'lm_head.weight' ? { ...t, shape: [100, 32] } : t,
    );
    const l = modelLayout({ ...config, vocab_size: 100 }, resized);
    assert.equal(l.byName.get('model.embed_tokens.weight')!.role, 'embedding');
    assert.deepEqual(
      [l.byName.get('lm_head.weight')!.outFeatures, l.byName.get('lm_head.weight')!.inFeatures],
      [100, 32],
    );
  });
});

describe('layout table: what it does not know', () => {
  it('a tensor no rule of a known family matches is unknown, with a note, never linear', () => {
    const { config, tensors } = fixture('llama');
    const l = modelLayout(config, [...tensors, { name: 'model.layers.0.self_attn.mystery.weight', shape: [32, 32] }]);
    const t = l.byName.get('model.layers.0.self_attn.mystery.weight')!;
    assert.equal(t.role, 'unknown');
    assert.match(t.note!, /no rule of the decoder layout/);
  });

  it('a model type missing from the table gets the generic rules and a warning naming what was assumed', () => {
    const l = modelLayout({ model_type: 'brandnew', architectures: ['BrandNewForCausalLM'] }, [
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8] },
      { name: 'model.layers.0.block.mix.weight', shape: [8, 8] },
    ]);
    assert.equal(l.family, 'generic');
    assert.equal(l.byName.get('model.layers.0.self_attn.q_proj.weight')!.role, 'linear');
    assert.equal(l.byName.get('model.layers.0.block.mix.weight')!.note, 'assumed nn.Linear [out, in]');
    assert.equal(l.warnings.length, 1);
    assert.match(l.warnings[0]!, /"brandnew" is not in the layout table.*1 tensors assumed nn\.Linear.*block\.mix/);
    assert.match(modelLayout(null, []).warnings[0]!, /no config\.json/);
  });

  it('task types come from architectures, null when unsure', () => {
    const t = (arch: string, model_type = 'x') => taskTypeOf({ architectures: [arch], model_type });
    assert.equal(t('LlamaForCausalLM'), 'CAUSAL_LM');
    assert.equal(t('GPT2LMHeadModel'), 'CAUSAL_LM');
    assert.equal(t('BertForSequenceClassification'), 'SEQ_CLS');
    assert.equal(t('BertForTokenClassification'), 'TOKEN_CLS');
    assert.equal(t('BertForQuestionAnswering'), 'QUESTION_ANS');
    assert.equal(t('BertModel'), 'FEATURE_EXTRACTION');
    assert.equal(t('T5ForConditionalGeneration', 't5'), 'SEQ_2_SEQ_LM');
    assert.equal(t('LlavaForConditionalGeneration', 'llava'), null);
    assert.equal(t('BertForMaskedLM'), null);
    assert.equal(taskTypeOf(null), null);
    assert.equal(taskTypeOf({}), null);
  });
});
