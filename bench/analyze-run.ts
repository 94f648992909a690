/**
 * Child process of the analyze and extract benches: one run on the tinyllama pair, then its
 * wall time and peak RSS as one JSON line (the process's own, not the bench runner's).
 *   node --import tsx bench/analyze-run.ts analyze|analyze-exact|extract|extract-energy DIR [OUT]
 */
import { join } from 'node:path';
import { analyzeCheckpoints } from '../src/analyze/index.js';
import { extractAdapter } from '../src/extract/index.js';
import { gemmEngine } from '../src/svd/index.js';

const [mode, dir, out] = process.argv.slice(2);
const start = performance.now();
let detail: Record<string, unknown>;
if (mode === 'analyze' || mode === 'analyze-exact') {
  const r = await analyzeCheckpoints(join(dir!, 'base'), join(dir!, 'tuned'), { exact: mode === 'analyze-exact' });
  const ranks = r.tensors.flatMap((t) => Object.values(t.rankAt));
  detail = {
    tensors: r.tensors.length,
    methods: [...new Set(r.tensors.map((t) => t.method))],
    ranks: ranks.length,
    exactRanks: ranks.filter((x) => typeof x === 'number').length,
    completed: r.tensors.filter((t) => t.complete).length,
    medianRank90: median(r.tensors.map((t) => t.rankAt['0.9']).filter((x): x is number => typeof x === 'number')),
  };
} else {
  const policy = mode === 'extract-energy' ? { energy: 0.9 } : { rank: 64 };
  const r = await extractAdapter(join(dir!, 'base'), join(dir!, 'tuned'), out!, { policy, force: true });
  const ranks = r.modules.map((m) => m.rank).sort((a, b) => a - b);
  detail = {
    modules: r.modules.length,
    params: r.summary.loraParams,
    relativeError: r.summary.relativeError,
    medianRank: ranks[ranks.length >> 1] ?? 0,
    maxRank: ranks.at(-1) ?? 0,
  };
}
const seconds = (performance.now() - start) / 1000;
console.log(
  JSON.stringify({
    seconds,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    engine: (await gemmEngine()).name,
    ...detail,
  }),
);

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}
