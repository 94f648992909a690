import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pairTensors } from '../../src/analyze/pairing.js';
import { modelLayout, type TensorInfo } from '../../src/io/index.js';

const info = (name: string, shape: number[]): TensorInfo =>
  ({
    name,
    shape,
    dtype: 'F32',
    offset: 0,
    byteLength: 4 * shape.reduce((a, b) => a * b, 1),
    file: 'x',
  }) as unknown as TensorInfo;

describe('pairTensors with the layout table', () => {
  it("skips GPT-2's stored attention mask as a buffer and keeps the Conv1D weights as matrices", () => {
    const tensors = [
      info('transformer.h.0.attn.c_attn.weight', [8, 24]),
      info('transformer.h.0.attn.bias', [1, 1, 4, 4]),
      info('transformer.h.0.ln_1.bias', [8]),
    ];
    const layout = modelLayout({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }, tensors);
    const p = pairTensors(tensors, tensors, { layout });
    assert.deepEqual(
      p.matrices.map((m) => m.name),
      ['transformer.h.0.attn.c_attn.weight'],
    );
    assert.deepEqual(
      p.others.map((m) => m.name),
      ['transformer.h.0.ln_1.bias'],
    );
    assert.deepEqual(p.skipped, [{ name: 'transformer.h.0.attn.bias', reason: 'causal attention mask (a buffer)' }]);
    // Without the table the mask is one more tensor to read.
    assert.equal(pairTensors(tensors, tensors).others.length, 2);
  });
});
