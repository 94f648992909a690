/**
 * # 2. Extract a LoRA adapter from a full fine-tune, verify it, merge it back
 *
 * The conversion users ask for most: a PEFT adapter that stands for a full fine-tune.
 * `extractAdapter` takes the truncated SVD of every ΔW (Eckart–Young: the best rank-r
 * approximation) and splits the singular values evenly between lora_B and lora_A.
 * Here we extract by energy, check the errors measured from the factors as written against
 * the optimum √(1 − E(r)), give the same parameter budget to the greedy allocator, and merge
 * the adapter into the base to see how close the merged model is to the real fine-tune.
 *
 * Run: `node --import tsx notebooks/02-extract-verify-merge.ts` (add `--small` for a quick run).
 * Writes `reports/extract-verify-merge.html`.
 *
 * What to look at in the report:
 * - "Extraction": the rank chosen per module, and measured error against the optimum (every
 *   point sits on the diagonal: the factors lose nothing beyond bf16 rounding);
 * - the spectrum sections below it, computed on the way.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  extractAdapter,
  mergeAdapter,
  openCheckpoint,
  renderExtractReport,
  writeReport,
  writeSynthPair,
} from 'deltarank';

const small = process.argv.includes('--small');
const reports = process.env['DELTARANK_REPORTS'] ?? 'reports';
const work = await mkdtemp(join(tmpdir(), 'deltarank-notebook-'));
const pair = join(work, 'pair');
await writeSynthPair(pair, { shape: small ? 'tiny' : 'small', dtype: 'BF16', seed: 2 });

// Per module, the smallest rank that keeps 90 % of ‖ΔW‖².
const byEnergy = await extractAdapter(join(pair, 'base'), join(pair, 'tuned'), join(work, 'lora-energy'), {
  policy: { energy: 0.9 },
});
const s = byEnergy.summary;
console.log(
  `--energy 0.9: ${s.modules} modules, ${s.loraParams} parameters, model-level error ${s.relativeError.toFixed(4)} (optimum ${s.optimalError.toFixed(4)})`,
);
const worst = Math.max(...byEnergy.modules.map((m) => m.relativeError / Math.max(m.optimalError, 1e-12)));
console.log(`worst measured/optimum ratio over modules: ${worst.toFixed(4)}`);

// The same number of parameters, allocated greedily to minimise the total squared error.
const byBudget = await extractAdapter(join(pair, 'base'), join(pair, 'tuned'), join(work, 'lora-budget'), {
  policy: { budget: s.loraParams },
});
console.log(
  `--budget ${s.loraParams}: model-level error ${byBudget.summary.relativeError.toFixed(4)} with ${byBudget.summary.loraParams} parameters`,
);

// Merge the energy adapter into the base: W + s·B·A, same shards and names as the base.
await mergeAdapter(join(pair, 'base'), join(work, 'lora-energy'), join(work, 'merged'));
const tuned = await openCheckpoint(join(pair, 'tuned'));
const base = await openCheckpoint(join(pair, 'base'));
const merged = await openCheckpoint(join(work, 'merged'));
let num = 0;
let den = 0;
for (const m of byEnergy.modules) {
  const name = `${m.module}.weight`;
  const [t, b, g] = [await tuned.readFloat32(name), await base.readFloat32(name), await merged.readFloat32(name)];
  for (let i = 0; i < t.length; i++) {
    num += (t[i]! - g[i]!) ** 2;
    den += (t[i]! - b[i]!) ** 2;
  }
}
console.log(
  `merged vs tuned: ‖W_merged − W_tuned‖ / ‖ΔW‖ = ${Math.sqrt(num / den).toFixed(4)} over the LoRA modules (bf16 storage of the merged weights included)`,
);
await Promise.all([tuned.close(), base.close(), merged.close()]);

await writeReport(
  join(reports, 'extract-verify-merge.html'),
  renderExtractReport(byEnergy, { title: 'Extract, verify, merge' }),
);
console.log(`report: ${join(reports, 'extract-verify-merge.html')}`);
await rm(work, { recursive: true, force: true });
