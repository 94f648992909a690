import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SpectrumLike } from '../../src/report/frontier.js';
import { fixedRankFrontier, greedyFrontier, rankGrid } from '../../src/report/frontier.js';
import { plantedTensor } from './synthetic.js';

/** A complete spectrum from explicit singular values. */
function spectrum(shape: [number, number], s: number[], k = s.length): SpectrumLike {
  const total = s.reduce((a, v) => a + v * v, 0);
  let acc = 0;
  const energy = s.slice(0, k).map((v) => (acc += v * v) / total);
  return {
    shape,
    deltaNorm: Math.sqrt(total),
    singularValues: s.slice(0, k),
    energy,
    complete: k === Math.min(...shape),
  };
}

/** Relative error of keeping the top r of each tensor, from the whole spectra. */
function trueError(full: number[][], ranks: number[]): number {
  let total = 0;
  let kept = 0;
  full.forEach((s, t) => {
    s.forEach((v, i) => {
      total += v * v;
      if (i < ranks[t]!) kept += v * v;
    });
  });
  return Math.sqrt(1 - kept / total);
}

test('rank grid doubles up to the largest k, which it includes', () => {
  assert.deepEqual(rankGrid(300), [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
  assert.deepEqual(rankGrid(256), [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  assert.deepEqual(rankGrid(1), [1]);
  assert.deepEqual(rankGrid(0), []);
});

test('fixed rank on a flat spectrum: error √(1 − r/n), params r·(m + n), capped at full rank', () => {
  const flat = spectrum([8, 8], Array(8).fill(1));
  const pts = fixedRankFrontier([flat], [1, 2, 4, 8, 16]);
  for (const p of pts) {
    const r = Math.min(p.rank, 8);
    assert.equal(p.params, r * 16);
    assert.ok(Math.abs(p.error - Math.sqrt(1 - r / 8)) < 1e-12, `r=${p.rank}: ${p.error}`);
    assert.equal(p.bound, false);
  }
});

test('fixed rank weights tensors by ‖ΔW‖² and flags spectra that stop early as upper bounds', () => {
  const a = plantedTensor('a', [64, 48], { tau: 5, a: 2 });
  const b = plantedTensor('b', [40, 96], { tau: 12, a: 1, k: 10 });
  const pts = fixedRankFrontier([a.spectrum, b.spectrum], [4, 10, 16, 48]);
  const full = [Array.from(a.full), Array.from(b.full)];
  for (const p of pts) {
    const truth = trueError(full, [p.rank, p.rank]);
    assert.equal(p.params, Math.min(p.rank, 48) * 112 + Math.min(p.rank, 40) * 136);
    if (p.rank <= 10) {
      assert.equal(p.bound, false);
      assert.ok(Math.abs(p.error - truth) < 1e-12, `r=${p.rank}: ${p.error} vs ${truth}`);
    } else {
      assert.equal(p.bound, true, `r=${p.rank} is past b's 10 values`);
      assert.ok(p.error > truth, `r=${p.rank}: bound ${p.error} must exceed the true ${truth}`);
    }
  }
  // a is complete and 48 = min(64, 48): it contributes no error there; b's stands at E(10)
  const at48 = pts[3]!;
  const bTail = 1 - b.spectrum.energy[9]!;
  const expected = Math.sqrt(
    (b.spectrum.deltaNorm ** 2 * bTail) / (a.spectrum.deltaNorm ** 2 + b.spectrum.deltaNorm ** 2),
  );
  assert.ok(Math.abs(at48.error - expected) < 1e-12);
});

test('greedy frontier equals the brute-force best allocation at each of its points', () => {
  const s1 = Array.from({ length: 6 }, (_, i) => 3 * 0.6 ** i);
  const s2 = Array.from({ length: 4 }, (_, i) => 2 * 0.8 ** i + 0.1);
  const s3 = Array.from({ length: 5 }, (_, i) => 1.5 / (i + 1));
  const shapes: [number, number][] = [
    [6, 10],
    [20, 4],
    [5, 30],
  ];
  const tensors = [spectrum(shapes[0]!, s1), spectrum(shapes[1]!, s2), spectrum(shapes[2]!, s3)];
  const { points, exactUntil } = greedyFrontier(tensors);
  assert.equal(exactUntil, null);
  assert.equal(points.length, 15);
  const cost = shapes.map(([m, n]) => m + n);
  for (const p of points) {
    let best = Infinity;
    for (let r1 = 0; r1 <= 6; r1++)
      for (let r2 = 0; r2 <= 4; r2++)
        for (let r3 = 0; r3 <= 5; r3++) {
          if (r1 * cost[0]! + r2 * cost[1]! + r3 * cost[2]! > p.params) continue;
          best = Math.min(best, trueError([s1, s2, s3], [r1, r2, r3]));
        }
    assert.ok(Math.abs(p.error - best) < 1e-12, `${p.params} params: greedy ${p.error}, best ${best}`);
  }
  assert.ok(points[points.length - 1]!.error < 1e-7, 'every value taken leaves no error');
});

test('greedy frontier is exact until a truncated spectrum could hide a better pick', () => {
  const a = plantedTensor('a', [12, 10], { tau: 3, a: 1 });
  const b = plantedTensor('b', [16, 14], { tau: 6, a: 0.7, k: 5 });
  const truncated = greedyFrontier([a.spectrum, b.spectrum]);
  const whole = greedyFrontier([a.spectrum, plantedTensor('b', [16, 14], { tau: 6, a: 0.7 }).spectrum]);
  const bar = b.full[4]! ** 2 / 30;
  const expectedUntil = (() => {
    const picks = [
      ...Array.from(a.full, (v) => ({ r: (v * v) / 22, c: 22 })),
      ...Array.from(b.full.subarray(0, 5), (v) => ({ r: (v * v) / 30, c: 30 })),
    ];
    return picks.filter((p) => p.r >= bar).reduce((s, p) => s + p.c, 0);
  })();
  assert.equal(truncated.exactUntil, expectedUntil);
  const exact = truncated.points.filter((p) => p.params <= expectedUntil);
  assert.ok(exact.length > 3);
  exact.forEach((p, i) => {
    assert.equal(p.params, whole.points[i]!.params);
    assert.ok(Math.abs(p.error - whole.points[i]!.error) < 1e-12);
  });
  const full = [Array.from(a.full), Array.from(b.full)];
  const beyond = truncated.points.filter((q) => q.params > expectedUntil);
  assert.ok(beyond.length > 0);
  for (const p of beyond) {
    let best = Infinity;
    for (let ra = 0; ra <= 10; ra++)
      for (let rb = 0; rb <= 14; rb++)
        if (ra * 22 + rb * 30 <= p.params) best = Math.min(best, trueError(full, [ra, rb]));
    assert.ok(p.error >= best - 1e-12, `${p.params} params: ${p.error} beats the optimum ${best}`);
  }
});

test('greedy frontier of a large model is thinned and keeps its end point', () => {
  const tensors = Array.from(
    { length: 40 },
    (_, t) => plantedTensor(`t${t}`, [512, 256], { tau: 4 + t, k: 100 }).spectrum,
  );
  const { points } = greedyFrontier(tensors);
  assert.ok(points.length <= 64 + 256 + 1, `${points.length} points`);
  for (let i = 1; i < points.length; i++) {
    assert.ok(points[i]!.params > points[i - 1]!.params);
    assert.ok(points[i]!.error <= points[i - 1]!.error + 1e-15);
  }
  const last = points[points.length - 1]!;
  assert.equal(last.params, 40 * 100 * 768);
  const kept = tensors.reduce((s, t) => s + t.deltaNorm ** 2 * t.energy[99]!, 0);
  const total = tensors.reduce((s, t) => s + t.deltaNorm ** 2, 0);
  assert.ok(Math.abs(last.error - Math.sqrt(1 - kept / total)) < 1e-9);
});

test('a conv kernel counts as [out, in·kh·kw]', () => {
  const conv = { ...spectrum([8, 18], Array(8).fill(1)), shape: [8, 2, 3, 3] };
  const [p] = fixedRankFrontier([conv], [4]);
  assert.equal(p!.params, 4 * (8 + 18));
  assert.ok(Math.abs(p!.error - Math.sqrt(0.5)) < 1e-12);
});
