/**
 * extract bench: `extract --rank 64` of the tinyllama pair in a child process, wall time and peak
 * RSS, beside the torch loop writing the same adapter (bench/peers/torch_peer.py extract); and
 * `extract --energy 0.9`, whose adaptive ranks should cost about what the fixed rank 64 costs.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopPeer, RSS_TARGET_BYTES, runChild } from './analyze.js';
import { ensureTinyllamaPair } from './fixtures.js';
import { runTorch } from './torch-peer.js';
import type { BenchRow } from './types.js';

const MB = 1e6;

export async function bench(): Promise<BenchRow[]> {
  const dir = await ensureTinyllamaPair();
  const out = join(tmpdir(), 'deltarank-bench', 'tinyllama-lora-r64');
  const r = runChild(['extract', dir, out]);
  await rm(out, { recursive: true, force: true });
  const e = runChild(['extract-energy', dir, out]);
  await rm(out, { recursive: true, force: true });
  const torchOut = join(tmpdir(), 'deltarank-bench', 'tinyllama-lora-r64-torch');
  const torch = await loopPeer(dir, runTorch(['extract', dir, torchOut]), 'reading + writing');
  await rm(torchOut, { recursive: true, force: true });
  return [
    {
      area: 'extract',
      name: `extract --rank 64, tinyllama pair (${r['modules']} modules, ${((r['params'] as number) / 1e6).toFixed(1)}M parameters, model-level error ${(r['relativeError'] as number).toFixed(3)})`,
      figure: `${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB`,
      peer: torch.peer,
      target: `≤ torch loop; RSS ≤ ${(RSS_TARGET_BYTES / MB).toFixed(0)} MB`,
      met: r.maxRssBytes <= RSS_TARGET_BYTES && r.seconds <= torch.seconds,
    },
    {
      area: 'extract',
      name: `extract --energy 0.9, tinyllama pair (${e['modules']} modules, ranks median ${e['medianRank']}, max ${e['maxRank']}, ${((e['params'] as number) / 1e6).toFixed(1)}M parameters, model-level error ${(e['relativeError'] as number).toFixed(3)})`,
      figure: `${e.seconds.toFixed(1)} s, peak RSS ${(e.maxRssBytes / MB).toFixed(0)} MB`,
      peer: `extract --rank 64 in the same run: ${r.seconds.toFixed(1)} s`,
      target: '≤ 1.5 × --rank 64',
      met: e.seconds <= 1.5 * r.seconds,
    },
  ];
}
