import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng } from '../../src/svd/random.js';

test('seeded streams: reproducible, uniform and normal moments right, shuffles are permutations', () => {
  const n = 200_000;
  const a = createRng(42);
  const b = createRng(42);
  const xs = Array.from({ length: 1000 }, () => a.uniform());
  assert.deepEqual(
    Array.from({ length: 1000 }, () => b.uniform()),
    xs,
  );
  assert.notDeepEqual(
    Array.from({ length: 1000 }, () => createRng(43).uniform()),
    xs,
  );

  const u = createRng(1);
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const v = u.uniform();
    assert.ok(v >= 0 && v < 1);
    sum += v;
    sq += v * v;
  }
  // Uniform [0, 1): mean 1/2, variance 1/12; tolerances ≈ 5 standard errors.
  assert.ok(Math.abs(sum / n - 0.5) < 5 * Math.sqrt(1 / 12 / n));
  assert.ok(Math.abs(sq / n - (sum / n) ** 2 - 1 / 12) < 0.002);

  const g = createRng(2);
  let m1 = 0;
  let m2 = 0;
  for (let i = 0; i < n; i++) {
    const v = g.normal();
    m1 += v;
    m2 += v * v;
  }
  assert.ok(Math.abs(m1 / n) < 5 / Math.sqrt(n));
  assert.ok(Math.abs(m2 / n - 1) < 5 * Math.sqrt(2 / n));

  const perm = createRng(3).shuffle(Int32Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(
    [...perm].sort((p, q) => p - q),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.ok(perm.some((v, i) => v !== i));
});

test('fork depends on the seed and the label only, not on draws made before it', () => {
  const r = createRng(9);
  const before = r.fork('init').uniform();
  for (let i = 0; i < 10; i++) r.uniform();
  assert.equal(r.fork('init').uniform(), before);
  assert.notEqual(r.fork('order').uniform(), before);
  assert.notEqual(createRng(10).fork('init').uniform(), before);
});
