/**
 * Child process of the fidelity bench: one run on the tinyllama pair, then its wall time and peak
 * RSS as one JSON line. Token ids are seeded and uniform over the vocabulary (the synthetic pair has
 * no tokenizer); `verify` and `--calibrate` use different seeds, as held-out and calibration text would.
 *   node --import tsx bench/fidelity-run.ts verify DIR ADAPTER TOKENS
 *   node --import tsx bench/fidelity-run.ts extract|calibrate DIR OUT TOKENS
 */
import { join } from 'node:path';
import { extractAdapter } from '../src/extract/index.js';
import { readModelArch } from '../src/model/index.js';
import { createRng } from '../src/svd/index.js';
import { verifyAdapter } from '../src/verify/index.js';

const [mode, dir, path, count] = process.argv.slice(2);
const SEQ = 256;

const VOCAB = (await readModelArch(join(dir!, 'base'))).vocabSize;

function tokens(n: number, seed: number): number[][] {
  const rng = createRng(seed);
  const out: number[][] = [];
  for (let i = 0; i < n; i += SEQ)
    out.push(Array.from({ length: Math.min(SEQ, n - i) }, () => Math.floor(rng.uniform() * VOCAB)));
  return out;
}

const start = performance.now();
let detail: Record<string, unknown>;
const base = join(dir!, 'base');
const tuned = join(dir!, 'tuned');
if (mode === 'verify') {
  const r = await verifyAdapter(base, tuned, path!, tokens(Number(count), 1));
  detail = { tokens: r.tokens, klAdapter: r.kl.adapter, klBase: r.kl.base, recovered: r.recovered };
} else {
  const calibration = mode === 'calibrate' ? { sequences: tokens(Number(count), 2) } : undefined;
  const r = await extractAdapter(base, tuned, path!, { policy: { rank: 64 }, force: true, calibration });
  detail = {
    modules: r.modules.length,
    relativeError: r.summary.relativeError,
    outputError: r.calibration?.outputError,
    svdOutputError: r.calibration?.svdOutputError,
  };
}
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...detail }));
