/**
 * analyze bench: default `analyze` of the tinyllama pair (bf16, 3 shards a side) in a child
 * process, its wall time and peak RSS, beside the torch loop that reads both sides tensor by
 * tensor and runs svd_lowrank(q = 74, niter = 2) on every ΔW (bench/peers/torch_peer.py). Without
 * torch, the loop's SVD time is estimated from the quoted per-matrix figure.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { openCheckpoint } from '../src/io/index.js';
import { ensureHighRankPair, ensureTinyllamaPair } from './fixtures.js';
import { describe, runTorch, type TorchRun } from './torch-peer.js';
import type { BenchRow } from './types.js';

const MB = 1e6;
/** Peak RSS target of the analyze and extract issues. */
export const RSS_TARGET_BYTES = 1.5e9;
/** torch.svd_lowrank(4096×4096, q = 74, niter = 2) on this machine, quoted from docs/ARCHITECTURE.md. */
const TORCH_LOWRANK_4096_SECONDS = 0.16;

export interface ChildRun {
  seconds: number;
  maxRssBytes: number;
  engine: string;
  [key: string]: unknown;
}

/** One `bench/analyze-run.ts` child: its own wall time and peak RSS. */
export function runChild(args: string[]): ChildRun {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'analyze-run.ts'), ...args],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    },
  );
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

/** The peer cell and the seconds to meet: the measured torch loop, or the estimate without torch. */
export async function loopPeer(
  dir: string,
  torch: TorchRun | null,
  what: string,
): Promise<{ peer: string; seconds: number }> {
  if (torch) {
    return {
      peer: `torch loop (${what}; ${torch['matrices']} matrices, ${describe(torch)}, ${torch.reader} reader): ${torch.wallSeconds.toFixed(1)} s, peak RSS ${(torch.maxRssBytes / MB).toFixed(0)} MB`,
      seconds: torch.wallSeconds,
    };
  }
  const estimate = await torchLowrankEstimate(dir);
  return {
    peer: `torch loop: ≈ ${estimate.toFixed(1)} s of svd_lowrank alone (estimated from the quoted ${TORCH_LOWRANK_4096_SECONDS} s per 4096²) + ${what}`,
    seconds: estimate,
  };
}

/** "312 of 624 ranks exact, 40 spectra completed": what the certified document says of itself. */
function certified(r: ChildRun): string {
  return `${r['exactRanks']} of ${r['ranks']} ranks certified exact, ${r['completed']} complete spectra`;
}

/**
 * Rows, each selectable by `DELTARANK_BENCH_ROWS=default,exact,high-rank` (all by default):
 * default analyze of the tinyllama pair beside the svd_lowrank loop; `--exact` beside the
 * svdvals loop; default analyze of a high-rank pair (synth --shape small --high-rank) beside the
 * svdvals loop over it (the work its exact ranks need).
 */
export async function bench(): Promise<BenchRow[]> {
  const only = process.env['DELTARANK_BENCH_ROWS']?.split(',');
  const want = (row: string) => !only || only.includes(row);
  const rows: BenchRow[] = [];
  if (want('default') || want('exact')) {
    const dir = await ensureTinyllamaPair();
    if (want('default')) {
      const r = runChild(['analyze', dir]);
      const torch = await loopPeer(dir, runTorch(['analyze', dir]), 'reading');
      rows.push({
        area: 'analyze',
        name: `analyze tinyllama pair, default settings (${r['tensors']} matrices, ${(r['methods'] as string[]).join('/')}, ${r.engine}; ${certified(r)})`,
        figure: `${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB`,
        peer: torch.peer,
        target: `≤ torch loop; RSS ≤ ${(RSS_TARGET_BYTES / MB).toFixed(0)} MB`,
        met: r.maxRssBytes <= RSS_TARGET_BYTES && r.seconds <= torch.seconds,
      });
    }
    if (want('exact')) {
      const r = runChild(['analyze-exact', dir]);
      const torch = runTorch(['analyze-exact', dir]);
      rows.push({
        area: 'analyze',
        name: `analyze --exact tinyllama pair (${r['tensors']} matrices, ${(r['methods'] as string[]).join('/')}; ${certified(r)})`,
        figure: `${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB`,
        peer: torch
          ? `torch loop with svdvals per ΔW (${describe(torch)}, ${torch.reader} reader): ${torch.wallSeconds.toFixed(1)} s, peak RSS ${(torch.maxRssBytes / MB).toFixed(0)} MB`
          : 'no torch',
        target: '≤ torch loop',
        ...(torch ? { met: r.seconds <= torch.wallSeconds } : {}),
      });
    }
  }
  if (want('high-rank')) {
    const dir = await ensureHighRankPair();
    const r = runChild(['analyze', dir]);
    const torch = runTorch(['analyze-exact', dir]);
    rows.push({
      area: 'analyze',
      name: `analyze high-rank pair (synth --shape small --high-rank, ${r['tensors']} matrices, median rank at 90 % ${r['medianRank90']}), default settings (${(r['methods'] as string[]).join('/')}; ${certified(r)})`,
      figure: `${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB`,
      peer: torch
        ? `torch loop with svdvals per ΔW (${describe(torch)}): ${torch.wallSeconds.toFixed(1)} s`
        : 'no torch',
      target: 'every rankAt exact',
      met: r['exactRanks'] === r['ranks'],
    });
  }
  return rows;
}
