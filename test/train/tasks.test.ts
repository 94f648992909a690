import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FormatError } from '../../src/errors.js';
import { createRng } from '../../src/svd/random.js';
import { CHARLM_VOCAB, charlmTask } from '../../src/train/charlm-task.js';
import { IMAGE_SIDE, mnistTask, rotateQuarterTurn } from '../../src/train/mnist-task.js';
import { CODE, PROSE } from '../../src/train/texts.js';

test('mnist: Hugging Face-style names in PyTorch layout, config.json round trip, config inferred from shapes', () => {
  const config = mnistTask.defaultConfig();
  assert.deepEqual(mnistTask.shapes(config), [
    ['model.layers.0.fc.weight', [256, 784]],
    ['model.layers.0.fc.bias', [256]],
    ['model.layers.1.fc.weight', [256, 256]],
    ['model.layers.1.fc.bias', [256]],
    ['classifier.weight', [10, 256]],
    ['classifier.bias', [10]],
  ]);
  assert.deepEqual(mnistTask.loraTargets(config), ['model.layers.0.fc', 'model.layers.1.fc', 'classifier']);
  assert.deepEqual(mnistTask.configFromJson(mnistTask.configJson(config), 'config.json'), config);
  const weights = mnistTask.init({ hidden: [32, 8] }, createRng(1));
  assert.deepEqual(mnistTask.inferConfig(weights), { hidden: [32, 8] });
  // PyTorch's Linear init: uniform in ±1/√fan_in.
  const w0 = weights.get('model.layers.0.fc.weight')!;
  assert.ok(w0.every((v) => Math.abs(v) <= 1 / Math.sqrt(784)));
  assert.ok(weights.get('classifier.bias')!.every((v) => Math.abs(v) <= 1 / Math.sqrt(8)));
  assert.throws(() => mnistTask.configFromJson({ deltarank_task: 'charlm' }, 'x/config.json'), FormatError);
});

test('mnist: 10,000 digits split in halves, 80/20 train/test; the target half is turned a quarter turn', async () => {
  const data = await mnistTask.data(mnistTask.defaultConfig());
  assert.deepEqual(
    [data.source.train.size, data.source.test.size, data.target.train.size, data.target.test.size],
    [4000, 1000, 4000, 1000],
  );
  const all = [data.source.train, data.source.test, data.target.train, data.target.test].map((s) =>
    s.batch(Int32Array.from({ length: s.size }, (_, i) => i)),
  );
  // Every class appears in every split, in roughly its share.
  for (const b of all) {
    const counts = new Array(10).fill(0);
    for (const l of b.labels) counts[l]++;
    assert.ok(
      counts.every((c) => c > b.count * 0.06),
      counts.join(','),
    );
  }
  // Upright digits have more ink in the middle columns than rows; turned ones the reverse.
  const inkBalance = (inputs: Float32Array, n: number) => {
    let rows = 0;
    let cols = 0;
    for (let k = 0; k < n; k++) {
      for (let r = 0; r < IMAGE_SIDE; r++) {
        for (let c = 0; c < IMAGE_SIDE; c++) {
          const v = inputs[k * 784 + r * IMAGE_SIDE + c]!;
          if (r >= 10 && r < 18) rows += v;
          if (c >= 10 && c < 18) cols += v;
        }
      }
    }
    return cols / rows;
  };
  const source = inkBalance(all[1]!.inputs as Float32Array, 1000);
  const target = inkBalance(all[3]!.inputs as Float32Array, 1000);
  assert.ok(source > 1.05 && target < 1 / 1.05, `column/row ink: source ${source}, target ${target}`);
  const image = Float32Array.from({ length: 784 }, (_, i) => i);
  const once = rotateQuarterTurn(image);
  assert.equal(once[0 * IMAGE_SIDE + 27], 0, 'top-left goes to top-right');
  assert.equal(once[27 * IMAGE_SIDE + 27], 27, 'top-right goes to bottom-right');
  assert.deepEqual(rotateQuarterTurn(rotateQuarterTurn(rotateQuarterTurn(once))), image);
});

test('charlm: Llama names, config.json round trip, inferred config', () => {
  const config = charlmTask.defaultConfig();
  const names = charlmTask.shapes(config).map(([n]) => n);
  assert.equal(names[0], 'model.embed_tokens.weight');
  assert.deepEqual(names.slice(1, 10), [
    'model.layers.0.input_layernorm.weight',
    'model.layers.0.self_attn.q_proj.weight',
    'model.layers.0.self_attn.k_proj.weight',
    'model.layers.0.self_attn.v_proj.weight',
    'model.layers.0.self_attn.o_proj.weight',
    'model.layers.0.post_attention_layernorm.weight',
    'model.layers.0.mlp.gate_proj.weight',
    'model.layers.0.mlp.up_proj.weight',
    'model.layers.0.mlp.down_proj.weight',
  ]);
  assert.deepEqual(names.slice(-2), ['model.norm.weight', 'lm_head.weight']);
  const shapes = new Map(charlmTask.shapes(config));
  assert.deepEqual(shapes.get('model.layers.1.mlp.down_proj.weight'), [config.hidden, config.intermediate]);
  assert.deepEqual(shapes.get('lm_head.weight'), [CHARLM_VOCAB.length, config.hidden]);
  const json = charlmTask.configJson(config);
  assert.equal(json['model_type'], 'llama');
  assert.equal(json['deltarank_task'], 'charlm');
  assert.deepEqual(charlmTask.configFromJson(json, 'config.json'), config);
  assert.deepEqual(charlmTask.inferConfig(charlmTask.init(config, createRng(1))), config);
  assert.throws(() => charlmTask.configFromJson({ ...json, hidden_size: 'x' }, 'c.json'), /hidden_size/);
});

test('charlm: the two texts differ in character statistics', () => {
  assert.ok(PROSE.length > 3000 && CODE.length > 3000);
  assert.equal(new Set(CHARLM_VOCAB).size, CHARLM_VOCAB.length);
  const share = (text: string, chars: string) => [...text].filter((c) => chars.includes(c)).length / text.length;
  const symbols = '()[]{}=_:';
  assert.ok(share(CODE, symbols) > 10 * share(PROSE, symbols));
  const capitals = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  assert.ok(share(PROSE, capitals) > 2 * share(CODE, capitals));
  // Total variation distance between the two character distributions.
  const dist = (t: string) => new Map([...CHARLM_VOCAB].map((c) => [c, share(t, c)]));
  const p = dist(PROSE);
  const q = dist(CODE);
  const tv = 0.5 * [...CHARLM_VOCAB].reduce((s, c) => s + Math.abs(p.get(c)! - q.get(c)!), 0);
  assert.ok(tv > 0.3, `total variation ${tv}`);
});
