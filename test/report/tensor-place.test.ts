import assert from 'node:assert/strict';
import { test } from 'node:test';
import { orderModuleTypes, tensorPlace } from '../../src/report/tensor-place.js';

test('Llama names map to short module types and layers', () => {
  const cases: [string, string, number | null][] = [
    ['model.layers.0.self_attn.q_proj.weight', 'q', 0],
    ['model.layers.12.self_attn.k_proj.weight', 'k', 12],
    ['model.layers.3.self_attn.v_proj.weight', 'v', 3],
    ['model.layers.21.self_attn.o_proj.weight', 'o', 21],
    ['model.layers.7.mlp.gate_proj.weight', 'gate', 7],
    ['model.layers.7.mlp.up_proj.weight', 'up', 7],
    ['model.layers.7.mlp.down_proj.weight', 'down', 7],
    ['model.embed_tokens.weight', 'embeddings', null],
    ['lm_head.weight', 'lm_head', null],
    ['base_model.model.model.layers.4.self_attn.q_proj.lora_embedding_A', 'q', 4],
  ];
  for (const [name, moduleType, layer] of cases) assert.deepEqual(tensorPlace(name), { moduleType, layer }, name);
});

test('other architectures: last component is the type, h./blocks./layer. give the layer', () => {
  const cases: [string, string, number | null][] = [
    ['model.layers.0.fc.weight', 'fc', 0],
    ['model.layers.1.fc2.weight', 'fc2', 1],
    ['layers.0.dense.weight', 'dense', 0],
    ['fc1.weight', 'fc1', null],
    ['transformer.h.11.attn.c_attn.weight', 'c_attn', 11],
    ['blocks.5.mlp.fc1.weight', 'fc1', 5],
    ['bert.encoder.layer.3.attention.self.query.weight', 'query', 3],
    ['net.2.weight', 'net.2', null],
    ['model.layers.3.weight', 'layers', 3],
    ['classifier', 'classifier', null],
    // "h" only counts as a block list when followed by an index
    ['model.h.weight', 'h', null],
    ['mylayers.2.fc.weight', 'fc', null],
  ];
  for (const [name, moduleType, layer] of cases) assert.deepEqual(tensorPlace(name), { moduleType, layer }, name);
});

test('module types are ordered known-first, then as first seen', () => {
  assert.deepEqual(orderModuleTypes(['down', 'fc2', 'q', 'lm_head', 'fc1', 'embeddings', 'fc2', 'k']), [
    'q',
    'k',
    'down',
    'embeddings',
    'lm_head',
    'fc2',
    'fc1',
  ]);
});

test('names that recur inside a layer (GPT-2 c_proj, BERT dense, MoE experts) get one column each', () => {
  assert.deepEqual(tensorPlace('transformer.h.0.attn.c_proj.weight'), { moduleType: 'attn.c_proj', layer: 0 });
  assert.deepEqual(tensorPlace('transformer.h.0.mlp.c_proj.weight'), { moduleType: 'mlp.c_proj', layer: 0 });
  assert.deepEqual(tensorPlace('transformer.h.0.attn.c_attn.weight'), { moduleType: 'c_attn', layer: 0 });
  assert.deepEqual(tensorPlace('bert.encoder.layer.1.attention.output.dense.weight'), {
    moduleType: 'attention.output.dense',
    layer: 1,
  });
  assert.deepEqual(tensorPlace('bert.encoder.layer.1.output.dense.weight'), { moduleType: 'output.dense', layer: 1 });
  assert.deepEqual(tensorPlace('model.layers.0.block_sparse_moe.experts.3.w1.weight'), {
    moduleType: 'e3.w1',
    layer: 0,
  });
  assert.deepEqual(tensorPlace('model.layers.1.mlp.experts.0.gate_proj.weight'), {
    moduleType: 'e0.gate_proj',
    layer: 1,
  });
});
