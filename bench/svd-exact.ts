/**
 * Exact SVD: all singular values of square Gaussian matrices (the Gram route) against
 * torch.linalg.svdvals, measured in the same run (quoted from docs/ARCHITECTURE.md when torch is missing).
 */
import { loadavg } from 'node:os';
import { singularValues } from '../src/svd/exact-svd.js';
import { gaussianMatrix } from '../src/svd/random.js';
import { describe, runTorch } from './torch-peer.js';
import type { BenchRow } from './types.js';

/** Above this many seconds one run stands for the median: three would crowd the bench on 2 cores. */
const SLOW_RUN_S = 5;

/** torch.linalg.svdvals on this machine, quoted from docs/ARCHITECTURE.md for when torch is missing. */
const QUOTED: [n: number, torchSeconds: number][] = [
  [1024, 0.3],
  [4096, 1.6],
];

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return (performance.now() - t0) / 1000;
}

export async function bench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  // Warm the GEMM sessions and the JIT on a small case, as torch's figure excludes its start-up.
  await singularValues(gaussianMatrix(300, 300, 1));
  for (const [n, quoted] of QUOTED) {
    const a = gaussianMatrix(n, n, n);
    let method = '';
    const run = async () => {
      method = (await singularValues(a)).method;
    };
    // Other work on the machine slows the GEMM threads most: say how busy it was.
    const load = loadavg()[0]!;
    const times = [await seconds(run)];
    if (times[0]! < SLOW_RUN_S) times.push(await seconds(run), await seconds(run));
    times.sort((x, y) => x - y);
    const median = times[Math.floor(times.length / 2)]!;
    const peer = runTorch(['svdvals', String(n)]);
    const torch = peer ? (peer['seconds'] as number) : quoted;
    rows.push({
      area: 'svd',
      name: `all σ ${n}×${n} (${method}, ${times.length === 1 ? '1 run' : `median of ${times.length}`}, load ${load.toFixed(1)})`,
      figure: `${median.toFixed(2)} s`,
      peer: peer ? `torch.linalg.svdvals ${torch.toFixed(2)} s (${describe(peer)}, ${peer['runs'] === 1 ? '1 run' : `median of ${peer['runs']}`})` : `torch.linalg.svdvals ${torch} s (quoted)`,
      target: '≤ 2× torch',
      met: median <= 2 * torch,
    });
  }
  return rows;
}
