import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEEP_ALL, pick, TAIL_POINTS, thinIndices } from '../../src/report/thin.js';

test('short series are kept whole', () => {
  assert.deepEqual(thinIndices(5), [0, 1, 2, 3, 4]);
  assert.deepEqual(thinIndices(KEEP_ALL + TAIL_POINTS).length, KEEP_ALL + TAIL_POINTS);
  assert.deepEqual(thinIndices(0), []);
});

test('long series keep the head, then log-spaced indices ending at the last', () => {
  for (const count of [1000, 4096, 32000]) {
    const idx = thinIndices(count);
    assert.deepEqual(
      idx.slice(0, KEEP_ALL),
      Array.from({ length: KEEP_ALL }, (_, i) => i),
    );
    assert.equal(idx[idx.length - 1], count - 1);
    assert.ok(idx.length <= KEEP_ALL + TAIL_POINTS + 1, `${count}: ${idx.length} kept`);
    const step = ((count - 1) / (KEEP_ALL - 1)) ** (1 / TAIL_POINTS);
    for (let j = KEEP_ALL; j < idx.length; j++) {
      assert.ok(idx[j]! > idx[j - 1]!, 'strictly increasing');
      // consecutive tail indices grow by the log step, up to rounding
      assert.ok(idx[j]! / idx[j - 1]! <= step * (1 + 1 / idx[j - 1]!) + 1e-12, `${count}: ${idx[j - 1]} → ${idx[j]}`);
    }
  }
  const small = thinIndices(100, { keepAll: 10, tail: 5 });
  assert.deepEqual(small.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(small[small.length - 1], 99);
  assert.ok(small.length <= 16);
});

test('pick reads values at the indices', () => {
  assert.deepEqual(pick(Float64Array.of(5, 6, 7, 8), [0, 3]), [5, 8]);
});
