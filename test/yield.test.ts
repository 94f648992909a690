/**
 * Cooperative yielding: the helpers of src/yield.ts, and the long routes of the SVD engine keep
 * the event loop turning (so a signal is served) while they compute for a second or more.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adaptiveSvd, exactSvd, type Matrix, singularValues } from '../src/svd/index.js';
import { finishCooperatively, finishNow, turnDue, turnEventLoop, YIELD_INTERVAL_MS, yieldIfDue } from '../src/yield.js';

/** Busy for `ms` without letting the loop turn. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A generator kernel: `steps` stretches of `ms` each, yielding between them when a turn is due. */
function* kernel(steps: number, ms: number): Generator<void, number, undefined> {
  for (let i = 0; i < steps; i++) {
    if (turnDue()) yield;
    spin(ms);
  }
  return steps;
}

/**
 * The longest time the event loop went without turning while `work` ran, in ms (a 5 ms interval's
 * ticks, and the stretch from the last one to the end), and how long it ran.
 */
async function longestStall(work: () => Promise<unknown>): Promise<{ stallMs: number; ranMs: number }> {
  await turnEventLoop();
  const t0 = performance.now();
  let last = t0;
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  await work();
  const end = performance.now();
  clearInterval(timer);
  return { stallMs: Math.max(stallMs, end - last), ranMs: end - t0 };
}

/** A dense m×n matrix with a flat spectrum (uniform entries): every route must work on all of it. */
function flat(m: number, n: number, seed: number): Matrix {
  let x = seed;
  const data = new Float32Array(m * n);
  for (let i = 0; i < data.length; i++) data[i] = ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return { rows: m, cols: n, data };
}

/** Largest stall allowed: the interval, the longest step between two checks and a loaded machine's hiccups. */
const STALL_MS = 300;

describe('yield helpers', () => {
  it('yieldIfDue makes no promise until the interval has passed, then turns the loop (timers run)', async () => {
    await turnEventLoop();
    assert.equal(turnDue(), false);
    assert.equal(yieldIfDue(), undefined);
    let ticked = false;
    setImmediate(() => {
      ticked = true;
    });
    spin(YIELD_INTERVAL_MS + 5);
    assert.equal(turnDue(), true);
    const p = yieldIfDue();
    assert.ok(p instanceof Promise);
    await p;
    assert.equal(ticked, true, 'a callback queued before the yield ran during it');
    assert.equal(turnDue(), false);
  });

  it('a generator kernel gives the same result synchronously and cooperatively; only the latter lets callbacks run', async () => {
    await turnEventLoop();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    assert.equal(finishNow(kernel(30, 10)), 30);
    const syncTicks = ticks;
    assert.equal(await finishCooperatively(kernel(30, 10)), 30);
    clearInterval(timer);
    assert.equal(syncTicks, 0, 'nothing ran during the synchronous run');
    assert.ok(ticks - syncTicks >= 3, `the interval ran during the cooperative one (${ticks - syncTicks} times)`);
  });
});

describe('the long SVD routes keep the event loop turning', () => {
  const cases: [string, () => Promise<unknown>][] = [
    // One-sided Jacobi with vectors through the QR (q ≥ 1.25·p): ≈ 1 s here.
    [
      'exactSvd 400×240 with vectors (QR, Jacobi, back-application)',
      () => exactSvd(flat(400, 240, 1), { vectors: true }),
    ],
    // The bidiagonal route: band chase and bidiagonal QR in plain TypeScript.
    ['singularValues 1536×1536 (bidiagonal route)', () => singularValues(flat(1536, 1536, 2))],
    [
      'singularValues 1536×1536, gram route (band chase, tridiagonal QL)',
      () => singularValues(flat(1536, 1536, 3), { route: 'gram' }),
    ],
    // A flat spectrum grows the basis to its cap: the K×K Jacobi core and the right vectors take the time.
    [
      'adaptiveSvd to energy 0.99 of a flat 600×600 (K = 328)',
      () => adaptiveSvd(flat(600, 600, 4), { energy: 0.99, maxRank: 320 }),
    ],
  ];
  for (const [name, work] of cases) {
    it(name, async (t) => {
      const { stallMs, ranMs } = await longestStall(work);
      t.diagnostic(`ran ${ranMs.toFixed(0)} ms, longest stretch without a turn ${stallMs.toFixed(0)} ms`);
      assert.ok(stallMs < STALL_MS, `the event loop waited ${stallMs.toFixed(0)} ms (of ${ranMs.toFixed(0)} ms)`);
    });
  }
});
