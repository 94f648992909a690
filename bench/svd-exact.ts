/**
 * Exact SVD: all singular values of Gaussian matrices by the default complete route (two-stage
 * bidiagonalisation in f64, LAPACK accuracy) against torch.linalg.svdvals (f32 LAPACK, with its
 * accuracy and its f64 time beside), measured in the same run (quoted from docs/ARCHITECTURE.md
 * when torch is missing).
 *   npm run bench -- svd-exact
 */
import { loadavg } from 'node:os';
import { singularValues } from '../src/svd/exact-svd.js';
import { gaussianMatrix } from '../src/svd/random.js';
import { describe, runTorch } from './torch-peer.js';
import type { BenchRow } from './types.js';

/**
 * Runs on each side, in one process each, after a small warm-up: the figure is their median, and
 * the first run (which, on this side, also allocates the route's arrays) is shown beside it.
 */
const RUNS = 3;

/**
 * Shapes measured, with torch.linalg.svdvals quoted from docs/ARCHITECTURE.md for when
 * torch is missing, and whether the shape is held to torch's time: 4096² and 11008×4096
 * are; 1024² is shown for scale, where fixed costs per panel weigh most.
 */
const CASES: [m: number, n: number, quoted: number, targeted: boolean][] = [
  [1024, 1024, 0.17, false],
  [4096, 4096, 7.9, true],
  [11008, 4096, 10.2, true],
];

/**
 * The peer's f32 accuracy against its own f64 values, and its f64 time: f32 LAPACK is the faster
 * peer, f64 the one that meets the accuracy this route is held to (1e-5 relative on σ ≥ 1e-6·σ₁).
 */
function accuracy(peer: Record<string, unknown>): string {
  const f32 = `f32 max rel err ${(peer['f32MaxRelErr'] as number).toExponential(1)}, ${peer['f32Outside']} of ${peer['held']} σ ≥ 1e-6·σ₁ off by > 1e-5`;
  return `${f32}; in f64 ${(peer['seconds64'] as number).toFixed(2)} s (1 run)`;
}

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return (performance.now() - t0) / 1000;
}

export async function bench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const only = process.env['DELTARANK_BENCH_SHAPES']?.split(',');
  // Warm the GEMM sessions and the JIT on a small case, as torch's figure excludes its start-up.
  await singularValues(gaussianMatrix(300, 300, 1));
  for (const [m, n, quoted, targeted] of CASES) {
    if (only && !only.includes(`${m}x${n}`)) continue;
    const a = gaussianMatrix(m, n, m + n);
    let method = '';
    const run = async () => {
      method = (await singularValues(a)).method;
    };
    // Other work on the machine slows the GEMM threads most: say how busy it was.
    const load = loadavg()[0]!;
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) times.push(await seconds(run));
    // The first call allocates the route's work arrays; later ones reuse them (src/svd/scratch.ts).
    const first = times[0]!;
    times.sort((x, y) => x - y);
    const median = times[Math.floor(times.length / 2)]!;
    const peer = runTorch(['svdvals', String(m), String(n), String(RUNS)]);
    const torch = peer ? (peer['seconds'] as number) : quoted;
    rows.push({
      area: 'svd',
      name: `all σ ${m}×${n} (${method}, f64, median of ${RUNS}, the first ${first.toFixed(2)} s, load ${load.toFixed(1)})`,
      figure: `${median.toFixed(2)} s`,
      peer: peer
        ? `torch.linalg.svdvals ${torch.toFixed(2)} s in f32 (${describe(peer)}, median of ${peer['runs']}, the first ${(peer['firstSeconds'] as number).toFixed(2)} s): ${(median / torch).toFixed(2)}×, first runs ${(first / (peer['firstSeconds'] as number)).toFixed(2)}×; ${accuracy(peer)}`
        : `torch.linalg.svdvals ${torch} s (quoted)`,
      ...(targeted ? { target: '≤ 1.0× torch', met: median <= torch } : {}),
    });
  }
  return rows;
}
