/**
 * io bench: write the tinyllama pair with synth (kept for the other areas), then read every
 * tensor of both sides in a fresh process and compare its peak RSS with the target
 * 2 × (largest tensor in f32) + 200 MB. Each step runs as a child so its maxRSS is its own.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TINYLLAMA_PAIR, tinyllamaPairDir } from './fixtures.js';
import type { BenchRow } from './types.js';

/** Ceiling on the synth step: "a few minutes on 2 cores". */
const SYNTH_TARGET_SECONDS = 300;
const MB = 1e6;

function child<T>(script: string, args: string[] = []): T {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, script), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}

export async function bench(): Promise<BenchRow[]> {
  const dir = tinyllamaPairDir();
  const label = `tinyllama ${TINYLLAMA_PAIR.dtype} pair, ${TINYLLAMA_PAIR.shards} shards a side`;
  const w = child<{ seconds: number; bytes: number; maxRssBytes: number }>('io-synth.ts');
  type Read = { seconds: number; bytes: number; tensors: number; largestF32Bytes: number; maxRssBytes: number };
  const r = child<Read>('io-read.ts', [dir, 'fresh']);
  const reused = child<Read>('io-read.ts', [dir, 'reuse']);
  const rssTarget = 2 * r.largestF32Bytes + 200 * MB;
  return [
    {
      area: 'io',
      name: `synth write, ${label} (${(w.bytes / 1e9).toFixed(1)} GB)`,
      figure: `${w.seconds.toFixed(1)} s (${(w.bytes / MB / w.seconds).toFixed(0)} MB/s), peak RSS ${(w.maxRssBytes / MB).toFixed(0)} MB`,
      target: `≤ ${SYNTH_TARGET_SECONDS} s`,
      met: w.seconds <= SYNTH_TARGET_SECONDS,
    },
    {
      area: 'io',
      name: `read every tensor to f32, both sides (${r.tensors} tensors, page cache warm)`,
      figure: `${r.seconds.toFixed(1)} s (${(r.bytes / 1e9 / r.seconds).toFixed(2)} GB/s of stored bytes)`,
    },
    {
      area: 'io',
      name: 'the same into one reused f32 array (no fresh-page faults)',
      figure: `${reused.seconds.toFixed(1)} s (${(reused.bytes / 1e9 / reused.seconds).toFixed(2)} GB/s), peak RSS ${(reused.maxRssBytes / MB).toFixed(0)} MB`,
    },
    {
      area: 'io',
      name: 'reader peak RSS (a new array per tensor)',
      figure: `${(r.maxRssBytes / MB).toFixed(0)} MB`,
      target: `≤ 2 × largest f32 tensor (${(r.largestF32Bytes / MB).toFixed(0)} MB) + 200 MB = ${(rssTarget / MB).toFixed(0)} MB`,
      met: r.maxRssBytes <= rssTarget,
    },
  ];
}
