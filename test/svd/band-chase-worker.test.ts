/**
 * The parallel bulge chase runs band-chase-worker as a real module: from the TypeScript sources
 * (this process, under tsx) and from the build in dist/, in a plain Node process with no loader.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  bandToTridiagonal,
  bandToTridiagonalParallel,
  lowerBand,
  PARALLEL_MIN_N,
} from '../../src/svd/tridiagonal-from-band.js';

const DIST = new URL('../../dist/svd/tridiagonal-from-band.js', import.meta.url);

/** A band matrix of order n and bandwidth b with entries from a fixed LCG (the same in both processes). */
const FILL = `(band, b) => {
  let s = 12345;
  for (let i = 0; i < band.n; i++) for (let c = Math.max(0, i - b); c <= i; c++) {
    s = (s * 16807) % 2147483647;
    band.data[i * band.width + band.width + c] = s / 2147483647 - 0.5;
  }
}`;
const fill = new Function(`return ${FILL}`)() as (band: ReturnType<typeof lowerBand>, b: number) => void;

describe('band-chase worker module', () => {
  const n = PARALLEL_MIN_N + 11;
  const b = 4;
  const serial = lowerBand(n, 2 * b);
  fill(serial, b);
  const want = bandToTridiagonal(serial, b);

  // First: a worker source built once from function text would be cached for the other tests.
  it('does not rebuild the kernels from their source text (which instrumentation and bundlers rewrite)', async () => {
    // What coverage instrumentation or a minifier does to a function's text, at its worst: the
    // text no longer compiles on its own. The worker must not depend on it.
    const original = Function.prototype.toString;
    Function.prototype.toString = function () {
      return `function ${this.name}() { cov_1x2y.s[0]++; [instrumented] }`;
    };
    try {
      const shared = lowerBand(n, 2 * b, { shared: true });
      fill(shared, b);
      const got = await bandToTridiagonalParallel(shared, b, { threads: 2 });
      assert.deepEqual(got.d, want.d);
    } finally {
      Function.prototype.toString = original;
    }
  });

  it('from the sources: 2 threads give the serial result bit for bit', async () => {
    const shared = lowerBand(n, 2 * b, { shared: true });
    fill(shared, b);
    const got = await bandToTridiagonalParallel(shared, b, { threads: 2 });
    assert.deepEqual(got.d, want.d);
    assert.deepEqual(got.e, want.e);
  });

  it('from dist/ in plain Node (no TypeScript loader): the same result', {
    skip: existsSync(DIST) ? false : 'dist/ is not built (npm run build; npm test builds first)',
  }, () => {
    const script = `
      const { bandToTridiagonalParallel, lowerBand } = await import(${JSON.stringify(DIST.href)});
      const band = lowerBand(${n}, ${2 * b}, { shared: true });
      (${FILL})(band, ${b});
      const { d, e } = await bandToTridiagonalParallel(band, ${b}, { threads: 2 });
      console.log(JSON.stringify({ d: Array.from(d), e: Array.from(e) }));`;
    // A file, not `-e`: workers inherit execArgv and refuse --input-type. No --import tsx: dist/ must not need it.
    const dir = mkdtempSync(join(tmpdir(), 'deltarank-chase-'));
    let out: string;
    try {
      writeFileSync(join(dir, 'chase.mjs'), script);
      out = execFileSync(process.execPath, [join(dir, 'chase.mjs')], { encoding: 'utf8', maxBuffer: 1 << 24 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const got = JSON.parse(out) as { d: number[]; e: number[] };
    assert.deepEqual(got.d, Array.from(want.d));
    assert.deepEqual(got.e, Array.from(want.e));
  });
});
