/**
 * analyze bench: default `analyze` of the tinyllama pair (bf16, 3 shards a side) in a child
 * process, its wall time and peak RSS. The peer — a torch loop reading both files with the
 * official safetensors reader and running svd_lowrank(q = 74, niter = 2) on every linear ΔW —
 * cannot run here (no PyTorch), so its SVD time is estimated from the quoted per-matrix figure.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { openCheckpoint } from '../src/io/index.js';
import { ensureTinyllamaPair } from './fixtures.js';
import type { BenchRow } from './types.js';

const MB = 1e6;
/** Peak RSS target of the analyze and extract issues. */
export const RSS_TARGET_BYTES = 1.5e9;
/** torch.svd_lowrank(4096×4096, q = 74, niter = 2) on this machine, quoted from DESIGN.md. */
const TORCH_LOWRANK_4096_SECONDS = 0.11;

export interface ChildRun {
  seconds: number;
  maxRssBytes: number;
  engine: string;
  [key: string]: unknown;
}

/** One `bench/analyze-run.ts` child: its own wall time and peak RSS. */
export function runChild(args: string[]): ChildRun {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'analyze-run.ts'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as ChildRun;
}

/**
 * The torch loop's SVD time estimated from the quoted 4096² figure, scaled by m·n per matrix
 * (the cost of svd_lowrank at fixed q is linear in m·n).
 */
export async function torchLowrankEstimate(dir: string): Promise<number> {
  const ck = await openCheckpoint(join(dir, 'base'));
  try {
    const mn = ck.tensors.filter((t) => t.shape.length === 2).reduce((a, t) => a + t.shape[0]! * t.shape[1]!, 0);
    return (TORCH_LOWRANK_4096_SECONDS * mn) / (4096 * 4096);
  } finally {
    await ck.close();
  }
}

export async function bench(): Promise<BenchRow[]> {
  const dir = await ensureTinyllamaPair();
  const r = runChild(['analyze', dir]);
  const torch = await torchLowrankEstimate(dir);
  return [
    {
      area: 'analyze',
      name: `analyze tinyllama pair, default settings (${r['tensors']} matrices, ${(r['methods'] as string[]).join('/')}, ${r.engine})`,
      figure: `${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB`,
      peer: `torch loop: ≈ ${torch.toFixed(1)} s of svd_lowrank alone (estimated from the quoted 0.11 s per 4096²) + reading`,
      target: `≤ torch loop; RSS ≤ ${(RSS_TARGET_BYTES / MB).toFixed(0)} MB`,
      met: r.maxRssBytes <= RSS_TARGET_BYTES && r.seconds <= torch,
    },
  ];
}
