/**
 * The PyTorch peer (bench/peers/torch_peer.py), run as a child process when a Python with torch
 * is found: `DELTARANK_BENCH_PYTHON`, else the repository's `.venv/bin/python` (pip's torch with
 * MKL), else `python3`, else /usr/bin/python3 (where Debian's python3-torch installs). Without
 * one, rows fall back to docs/ARCHITECTURE.md's quoted figures and say so.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface TorchRun {
  wallSeconds: number;
  maxRssBytes: number;
  torch: string;
  threads: number;
  reader: string;
  [key: string]: unknown;
}

const SCRIPT = join(import.meta.dirname, 'peers', 'torch_peer.py');
let found: string | null | undefined;

/** The Python that imports torch, or null; looked up once. */
export function torchPython(): string | null {
  if (found !== undefined) return found;
  const venv = join(import.meta.dirname, '..', '.venv', 'bin', 'python');
  const candidates = [
    process.env['DELTARANK_BENCH_PYTHON'],
    existsSync(venv) ? venv : undefined,
    'python3',
    '/usr/bin/python3',
  ].filter((c): c is string => !!c);
  found = null;
  for (const python of candidates) {
    try {
      execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
      found = python;
      break;
    } catch {
      // not this one
    }
  }
  if (found === null)
    process.stderr.write('bench: no Python with torch found (set DELTARANK_BENCH_PYTHON); torch figures are quoted\n');
  return found;
}

/** One peer command's JSON result, or null when no torch is available. */
export function runTorch(args: string[]): TorchRun | null {
  const python = torchPython();
  if (python === null) return null;
  const out = execFileSync(python, ['-W', 'ignore', SCRIPT, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as TorchRun;
}

/** "torch 1.13, 2 threads": which peer produced a figure. */
export function describe(r: TorchRun): string {
  return `torch ${r.torch}, ${r.threads} threads`;
}
