/**
 * `extract` checked by the real thing: tiny random models built and fine-tuned (seeded AdamW steps)
 * by transformers itself, extracted here, loaded back by PEFT. One Python process builds every
 * model (build_models.py), one checks every adapter (check_adapters.py); the assertions name the
 * architecture and the key or the figure that failed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ExtractOptions, extractAdapter, mergeAdapter } from '../../src/extract/index.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The rank of the low-rank adapters (hidden size 32): below min(m, n) of every module but the smallest heads. */
const RANK = 4;
/** At or above min(m, n) of every module of these models: the adapter is ΔW itself. */
const FULL_RANK = 128;
/** Eckart–Young: ‖ΔW − merged ΔW‖_F within this factor of √(Σ_{i>r} σ_i²). */
const OPTIMUM_FACTOR = 1.05;
/** Full-rank logits against the fine-tune's, relative Frobenius (f32 weights, f32 factors). */
const LOGITS_RTOL = 1e-4;
/**
 * extraction.json's relativeError and optimalError against torch's, relative (f32 factors and
 * weights; torch's σ in f64), and absolute where an error is f32 rounding (~1e-7).
 */
const ERROR_RTOL = 1e-5;
const OPTIMUM_RTOL = 1e-5;
const REPORT_ATOL = 1e-6;

/** Each case: the model build_models.py makes, and the extract options beyond the defaults. */
const ALL_CASES: Record<string, { model: string; opts?: Partial<ExtractOptions> }> = {
  llama: { model: 'llama' },
  qwen2: { model: 'qwen2' },
  gemma: { model: 'gemma' },
  phi3: { model: 'phi3' },
  gpt2: { model: 'gpt2' },
  // Tied embeddings saved whole: the route for GPT-2 that PEFT 0.21 loads without a warning.
  'gpt2 --embeddings full': { model: 'gpt2', opts: { embeddings: 'full' } },
  bert_cls: { model: 'bert_cls' },
  mixtral: { model: 'mixtral' },
  qwen3_moe: { model: 'qwen3_moe' },
  // A resized vocabulary cannot be a LoRA: embeddings and lm_head are saved whole.
  llama_resized: { model: 'llama_resized', opts: { embeddings: 'full' } },
};

const MOE_PATTERN_WARNING =
  'PEFT 0.21 warns that the rank and alpha patterns its own v4→v5 conversion adds for the fused gate_up_proj (rank 2r: w1 and w3 side by side) match no module (its check looks at modules, not parameters); it loads and merges exactly';
type CheckName = 'load' | 'merge' | 'logits' | 'complete' | 'error' | 'optimum' | 'ourMerge';
/**
 * Failures known today, per case and check, with why: those tests still run and report, marked
 * TODO so that they do not hold the suite red. Remove an entry when its test passes.
 */
const KNOWN: Record<string, Partial<Record<CheckName, string>>> = {
  gpt2: {
    load: "PEFT 0.21 warns 'fan_in_fan_out is set to True but the target module is torch.nn.Linear': fan_in_fan_out is one flag for the whole adapter, GPT-2's layers are Conv1D and the lm_head tied to the LoRA on wte is a Linear (use --embeddings full)",
  },
  // Even an adapter PEFT saves itself for these models warns so when loaded again.
  mixtral: { load: MOE_PATTERN_WARNING },
  qwen3_moe: { load: MOE_PATTERN_WARNING },
};

/**
 * DELTARANK_PEFT_CASES=gpt2,gemma runs only those (while fixing one); DELTARANK_PEFT_DIR=DIR builds
 * the models and adapters in DIR and keeps them (models built there before are reused).
 */
const ONLY = process.env['DELTARANK_PEFT_CASES']?.split(',').filter(Boolean);
const CASES = Object.fromEntries(Object.entries(ALL_CASES).filter(([c]) => !ONLY || ONLY.includes(c)));
const KEEP = process.env['DELTARANK_PEFT_DIR'];

interface Built {
  error?: string;
  traceback?: string;
  what: string;
  task: string;
  base: string;
  tuned: string;
}
interface ModuleCheck {
  module: string;
  rank: number;
  error: number;
  optimum: number;
  ratio: number | null;
  reported_error: number;
  reported_optimum: number;
  /** extraction.json marks optimalError as an upper bound (randomized singular values). */
  reported_bound: boolean;
}
interface Check {
  error?: string;
  traceback?: string;
  config: Record<string, unknown>;
  left_out: Record<string, string>;
  missing_keys: string[] | null;
  unexpected_keys: string[] | null;
  warnings: string[];
  logits: {
    unmerged_vs_reference: number;
    merged_vs_reference: number;
    merged_vs_tuned: number;
    base_vs_tuned: number;
    deltarank_merged_vs_reference?: number;
  };
  modules: ModuleCheck[];
  worst_ratio: number | null;
  worst_error: number | null;
  weight_problems: string[];
  deltarank_merge?: { worst: number; problems: string[] };
}

const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : x.toPrecision(3));

describe('extract → PEFT 0.21 / transformers 5 (tiny random models)', { skip: NO_PYTHON }, () => {
  let root = '';
  let built: Record<string, Built> = {};
  const setupErrors: Record<string, string> = {};
  const mergeErrors: Record<string, string> = {};
  let checks: Record<string, Check> = {};

  before(async () => {
    root = KEEP ?? (await mkdtemp(join(tmpdir(), 'deltarank-peft-')));
    const models = [...new Set(Object.values(CASES).map((c) => c.model))];
    built = (
      await runPython<{ models: Record<string, Built> }>(join(HERE, 'build_models.py'), [
        join(root, 'models'),
        ...models,
      ])
    ).models;
    const jobs: object[] = [];
    for (const [arch, { model, opts }] of Object.entries(CASES)) {
      const m = built[model]!;
      if (m.error) {
        for (const label of ['r4', 'full'])
          setupErrors[`${arch}/${label}`] =
            `build_models.py could not build ${model}: ${m.error}\n${m.traceback ?? ''}`;
        continue;
      }
      for (const [label, rank] of [
        ['r4', RANK],
        ['full', FULL_RANK],
      ] as const) {
        const id = `${arch}/${label}`;
        const adapter = join(root, 'adapters', arch.replace(/\W+/g, '_'), label);
        try {
          await extractAdapter(m.base, m.tuned, adapter, { policy: { rank }, force: true, ...opts });
        } catch (e) {
          setupErrors[id] = `extract failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
          continue;
        }
        const merged = `${adapter}-merged`;
        try {
          await mergeAdapter(m.base, adapter, merged, { force: true });
        } catch (e) {
          mergeErrors[id] = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        }
        jobs.push({
          id,
          base: m.base,
          tuned: m.tuned,
          task: m.task,
          adapter,
          ...(mergeErrors[id] ? {} : { deltarank_merged: merged }),
        });
      }
    }
    await writeFile(join(root, 'jobs.json'), JSON.stringify(jobs));
    checks = (
      await runPython<{ results: Record<string, Check> }>(join(HERE, 'check_adapters.py'), [join(root, 'jobs.json')])
    ).results;
  });
  after(async () => {
    if (!KEEP && root) await rm(root, { recursive: true, force: true });
  });

  /** The check of one adapter, or a failure naming why there is none. */
  function checked(id: string): Check {
    if (setupErrors[id]) assert.fail(`${id}: ${setupErrors[id]}`);
    const c = checks[id];
    assert.ok(c, `${id}: no result from check_adapters.py`);
    if (c.error) assert.fail(`${id}: PEFT side failed: ${c.error}\n${c.traceback ?? ''}`);
    return c;
  }

  const todo = (arch: string, check: CheckName): { todo?: string } => {
    const why = KNOWN[arch]?.[check];
    return why ? { todo: why } : {};
  };

  for (const arch of Object.keys(CASES)) {
    test(
      `${arch}: PEFT loads both adapters with no missing or unexpected key and no warning`,
      todo(arch, 'load'),
      () => {
        for (const label of ['r4', 'full']) {
          const id = `${arch}/${label}`;
          const c = checked(id);
          assert.deepEqual(c.missing_keys, [], `${id}: PEFT's load result has missing keys`);
          assert.deepEqual(c.unexpected_keys, [], `${id}: PEFT's load result has unexpected keys`);
          assert.deepEqual(c.warnings, [], `${id}: warnings while PEFT loaded the adapter`);
        }
      },
    );

    test(
      `${arch}: merge_and_unload is base + the best rank-${RANK} ΔW of every module (≤ ${OPTIMUM_FACTOR}× Eckart–Young)`,
      todo(arch, 'merge'),
      (t) => {
        const id = `${arch}/r4`;
        const c = checked(id);
        t.diagnostic(
          `${id}: worst error/optimum ${c.worst_ratio?.toFixed(5) ?? '—'} over ${c.modules.length} modules; left out: ${JSON.stringify(c.left_out)}`,
        );
        assert.deepEqual(c.weight_problems, [], `${id}: merged weights`);
        for (const m of c.modules) {
          if (m.ratio !== null)
            assert.ok(
              m.ratio <= OPTIMUM_FACTOR,
              `${id}: ${m.module} rank ${m.rank}: error ${fmt(m.error)} is ${fmt(m.ratio)}× the optimum ${fmt(m.optimum)}`,
            );
        }
      },
    );

    test(
      `${arch}: at full rank, merged and unmerged logits are the fine-tune's to ${LOGITS_RTOL} relative`,
      todo(arch, 'logits'),
      (t) => {
        const id = `${arch}/full`;
        const c = checked(id);
        const l = c.logits;
        t.diagnostic(
          `${id}: logits rel. diff unmerged ${fmt(l.unmerged_vs_reference)}, merged ${fmt(l.merged_vs_reference)} (merged vs the fine-tune with nothing left out ${fmt(l.merged_vs_tuned)}; base vs fine-tune ${fmt(l.base_vs_tuned)}); worst module error ${fmt(c.worst_error)}; left out: ${JSON.stringify(c.left_out)}`,
        );
        assert.ok(
          l.base_vs_tuned > 100 * LOGITS_RTOL,
          `${id}: the fine-tune barely moved the logits (${fmt(l.base_vs_tuned)}); this check would prove nothing`,
        );
        assert.deepEqual(c.weight_problems, [], `${id}: merged weights`);
        assert.ok(
          l.unmerged_vs_reference <= LOGITS_RTOL,
          `${id}: unmerged PEFT logits differ from the fine-tune's by ${fmt(l.unmerged_vs_reference)} relative`,
        );
        assert.ok(
          l.merged_vs_reference <= LOGITS_RTOL,
          `${id}: merged logits differ from the fine-tune's by ${fmt(l.merged_vs_reference)} relative`,
        );
      },
    );

    test(
      `${arch}: extraction.json's measured errors ‖ΔW − s·B·A‖/‖ΔW‖ per module are torch's (≤ ${ERROR_RTOL} relative)`,
      todo(arch, 'error'),
      (t) => {
        const worst = { truncated: 0, exact: 0 };
        for (const label of ['r4', 'full']) {
          const id = `${arch}/${label}`;
          for (const m of checked(id).modules) {
            const diff = Math.abs(m.reported_error - m.error);
            // Modules kept at full rank (all of them in the full-rank adapter) have errors of f32 rounding, ~1e-7: absolute.
            if (m.error >= 1e-3) worst.truncated = Math.max(worst.truncated, diff / m.error);
            else worst.exact = Math.max(worst.exact, diff);
            assert.ok(
              diff <= REPORT_ATOL + ERROR_RTOL * m.error,
              `${id}: ${m.module} rank ${m.rank}: extraction.json says relativeError ${m.reported_error.toPrecision(6)}, torch measures ${m.error.toPrecision(6)}`,
            );
          }
        }
        t.diagnostic(
          `${arch}: |extraction.json − torch| at most ${fmt(worst.truncated)} relative where truncated, ${fmt(worst.exact)} absolute where (nearly) exact`,
        );
      },
    );

    test(
      `${arch}: extraction.json's optimalError per module is torch's Eckart–Young optimum, or an upper bound of it where it says so`,
      todo(arch, 'optimum'),
      (t) => {
        let bounds = 0;
        let exact = 0;
        let worstExcess = 0;
        for (const label of ['r4', 'full']) {
          const id = `${arch}/${label}`;
          for (const m of checked(id).modules) {
            const what = `${id}: ${m.module} rank ${m.rank}: extraction.json says optimalError ${m.reported_optimum.toPrecision(6)}${m.reported_bound ? ' (a bound)' : ''}, torch finds ${m.optimum.toPrecision(6)}`;
            if (m.reported_bound) {
              bounds++;
              if (m.optimum > 0) worstExcess = Math.max(worstExcess, m.reported_optimum / m.optimum - 1);
              // An upper bound of the optimum, and no looser than the error the factors reach.
              assert.ok(
                m.reported_optimum >= m.optimum * (1 - OPTIMUM_RTOL) - REPORT_ATOL,
                `${what}: below the optimum`,
              );
              assert.ok(
                m.reported_optimum <= m.reported_error * (1 + OPTIMUM_RTOL) + REPORT_ATOL,
                `${what}: above the error the adapter reaches (${m.reported_error.toPrecision(6)})`,
              );
            } else {
              exact++;
              assert.ok(Math.abs(m.reported_optimum - m.optimum) <= REPORT_ATOL + OPTIMUM_RTOL * m.optimum, what);
            }
          }
        }
        t.diagnostic(
          `${arch}: ${exact} optima exact, ${bounds} upper bounds (at most ${fmt(worstExcess)} above the optimum)`,
        );
      },
    );

    test(
      `${arch}: deltarank merge of both adapters equals PEFT's merge_and_unload (≤ 1e-5 relative per tensor), and loads in transformers`,
      todo(arch, 'ourMerge'),
      (t) => {
        const worst: string[] = [];
        for (const label of ['r4', 'full']) {
          const id = `${arch}/${label}`;
          const c = checked(id);
          if (mergeErrors[id]) assert.fail(`${id}: deltarank merge failed: ${mergeErrors[id]}`);
          assert.ok(c.deltarank_merge, `${id}: no comparison of the merges`);
          assert.deepEqual(c.deltarank_merge.problems, [], `${id}: deltarank merge against PEFT's`);
          worst.push(`${label} ${fmt(c.deltarank_merge.worst)}`);
        }
        const full = checked(`${arch}/full`).logits.deltarank_merged_vs_reference;
        t.diagnostic(
          `${arch}: deltarank merge vs PEFT's, worst tensor: ${worst.join(', ')}; the full-rank merge loaded in transformers: logits ${fmt(full)} from the fine-tune's`,
        );
        assert.ok(
          full !== undefined && full <= LOGITS_RTOL,
          `${arch}/full: the folder deltarank merge wrote, loaded by transformers, gives logits ${fmt(full)} relative from the fine-tune's`,
        );
      },
    );

    test(`${arch}: the full-rank extraction leaves no changed tensor out`, todo(arch, 'complete'), () => {
      const id = `${arch}/full`;
      const c = checked(id);
      assert.deepEqual(c.left_out, {}, `${id}: tensors the fine-tune changed that the adapter does not carry`);
    });
  }
});
