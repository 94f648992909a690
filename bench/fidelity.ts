/**
 * fidelity bench: `verify` of the tinyllama pair with its rank-64 adapter on 2,048 tokens, and
 * `extract --rank 64 --calibrate` (2,048 calibration tokens) beside plain `extract --rank 64`,
 * each in a child process (wall time, peak RSS), all in the same run.
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTinyllamaPair } from './fixtures.js';
import type { BenchRow } from './types.js';

const MB = 1e6;
/** verify's peak RSS target (the issue's): one layer of two checkpoints, three models' activations, two lm_heads. */
const VERIFY_RSS_TARGET = 2e9;
const TOKENS = 2048;

function child(args: string[]): Record<string, number> & { seconds: number; maxRssBytes: number } {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fidelity-run.ts'), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

export async function bench(): Promise<BenchRow[]> {
  const dir = await ensureTinyllamaPair();
  const plainOut = join(tmpdir(), 'deltarank-bench', 'tinyllama-fidelity-r64');
  const calOut = join(tmpdir(), 'deltarank-bench', 'tinyllama-fidelity-r64-calibrated');
  const plain = child(['extract', dir, plainOut, '0']);
  const v = child(['verify', dir, plainOut, String(TOKENS)]);
  const cal = child(['calibrate', dir, calOut, String(TOKENS)]);
  await rm(plainOut, { recursive: true, force: true });
  await rm(calOut, { recursive: true, force: true });
  const s = (r: { seconds: number; maxRssBytes: number }) =>
    `${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB`;
  return [
    {
      area: 'fidelity',
      name: `verify tinyllama pair + its rank-64 adapter, ${v.tokens} tokens (3 models; KL(tuned‖adapter) ${v.klAdapter!.toFixed(4)}, KL(tuned‖base) ${v.klBase!.toFixed(4)})`,
      figure: s(v),
      target: `RSS ≤ ${(VERIFY_RSS_TARGET / MB).toFixed(0)} MB`,
      met: v.maxRssBytes <= VERIFY_RSS_TARGET,
    },
    {
      area: 'fidelity',
      name: `extract --rank 64 --calibrate (${TOKENS} tokens) tinyllama pair (output error ${cal.svdOutputError!.toFixed(3)} plain → ${cal.outputError!.toFixed(3)} calibrated)`,
      figure: s(cal),
      peer: `plain extract --rank 64 in the same run: ${s(plain)}`,
    },
  ];
}
