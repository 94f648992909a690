/**
 * What several commands share: option blocks (outputs, rank policies, seeds, filters), the
 * parsing of their values into one-line UsageErrors, the checks made before any work starts,
 * and the progress idiom. Commands import from here, never from each other.
 */
import type { Options } from 'yargs';
import type { CompareOptions, CompareOutput, FidelityScores } from '../../compare/index.js';
import { UsageError } from '../../errors.js';
import type { DType } from '../../io/index.js';
import { type CommonArgs, createProgress, formatTable, type Progress, writingTo } from '../output.js';

/** An option that takes a value: `--report` with nothing after it is an error, not an empty string. */
function valued(o: Options): Options {
  return { requiresArg: true, ...o };
}

/** A value given twice (`--rank 4 --rank 8`) arrives as an array. */
function single(flag: string, v: unknown): unknown {
  if (Array.isArray(v)) throw new UsageError(`--${flag} given ${v.length} times; give it once`);
  return v;
}

/** An integer ≥ `min`, or a UsageError quoting what was typed ("abc", not NaN). */
function parseInteger(flag: string, v: unknown, min = 1): number {
  const raw = single(flag, v);
  const text = String(raw).trim();
  const n = typeof raw === 'number' ? raw : /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `--${flag} must be ${min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`}, got "${text}"`,
    );
  }
  return n;
}

/** A finite number, or a UsageError quoting what was typed. */
function parseNumber(flag: string, v: unknown): number {
  const raw = single(flag, v);
  const text = String(raw).trim();
  const n = typeof raw === 'number' ? raw : text === '' ? NaN : Number(text);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got "${text}"`);
  return n;
}

/** An integer option (`--rank`, `--seed`, `--shards`…) parsed when the arguments are. */
export function integerOption(
  flag: string,
  describe: string,
  { min = 1, default: def }: { min?: number; default?: number } = {},
): Options {
  // No yargs type: type 'number' would turn "abc" into NaN before the message could quote it.
  return valued({
    describe,
    ...(def !== undefined ? { default: def } : {}),
    coerce: (v: unknown) => parseInteger(flag, v, min),
  });
}

/** A number option (`--energy`, `--error`, `--alpha`). */
export function numberOption(flag: string, describe: string): Options {
  return valued({ describe, coerce: (v: unknown) => parseNumber(flag, v) });
}

/** A string option that needs a value. */
export function stringOption(describe: string, extra: Options = {}): Options {
  return valued({ type: 'string', describe, ...extra });
}

/** `--out DIR` and `--force`, for commands writing one folder. */
export function outOptions(
  describe: string,
  force = 'replace an existing --out folder',
): Record<'out' | 'force', Options> {
  return { out: stringOption(describe, { demandOption: true }), force: { type: 'boolean', describe: force } };
}

/** `--report FILE.html`. */
export function reportOption(
  describe = 'write the HTML report here (refused if it exists, unless --force)',
): Record<'report', Options> {
  return { report: stringOption(describe) };
}

/** `--seed S` of the randomized SVD (or of training). */
export function seedOption(describe = 'seed of the randomized SVD'): Record<'seed', Options> {
  return { seed: integerOption('seed', describe, { min: 0, default: 0 }) };
}

/** `--include RE` and `--exclude RE`. */
export const FILTER_OPTIONS: Record<'include' | 'exclude', Options> = {
  include: stringOption('only tensors whose name matches this regex'),
  exclude: stringOption('leave out tensors whose name matches this regex'),
};

/** The per-module rank policies and their caps, shared by extract and resize. */
export function rankOptions(of: string): Record<'rank' | 'energy' | 'error' | 'max-rank', Options> {
  return {
    rank: integerOption('rank', 'the same rank for every module'),
    energy: numberOption('energy', `per module, the smallest rank keeping this share of ${of}`),
    error: numberOption('error', 'per module, the smallest rank with relative Frobenius error ≤ this'),
    'max-rank': integerOption('max-rank', 'no module above this rank'),
  };
}

/**
 * Exactly one of the policy flags this command takes, or a UsageError that lists only those
 * (resize has no budget and does not offer one).
 */
export function onePolicy<T extends Record<string, unknown>>(flags: T): T {
  const given = Object.entries(flags).filter(([, v]) => v !== undefined);
  if (given.length !== 1) {
    const names = Object.keys(flags).map((k) => `--${k}`);
    const list = `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
    throw new UsageError(
      `choose exactly one of ${list} (got ${given.length === 0 ? 'none' : given.map(([k]) => `--${k}`).join(', ')})`,
    );
  }
  return flags;
}

/** --rank, --min-rank and --max-rank that contradict each other are refused, not quietly clamped. */
export function checkRankLimits({
  rank,
  minRank,
  maxRank,
}: {
  rank?: number;
  minRank?: number;
  maxRank?: number;
}): void {
  if (rank !== undefined && maxRank !== undefined && rank > maxRank)
    throw new UsageError(`--rank ${rank} is above --max-rank ${maxRank}; give one of them`);
  if (minRank !== undefined && maxRank !== undefined && minRank > maxRank)
    throw new UsageError(`--min-rank ${minRank} is above --max-rank ${maxRank}`);
}

/**
 * Refuse an existing output folder before any work, so a rerun without --force fails in a
 * moment rather than after the whole computation (the writer checks again when it renames).
 */
export async function checkOutput(out: string, force: boolean | undefined): Promise<void> {
  const { exists } = await import('../../io/index.js');
  writingTo(out);
  if (!force && (await exists(out))) throw new UsageError(`${out} already exists; pass --force to replace it`);
}

/** Compile a user regex, or a UsageError naming the flag. */
export function parseRegex(flag: string, source: string | undefined): RegExp | undefined {
  if (source === undefined) return undefined;
  try {
    return new RegExp(source);
  } catch (err) {
    throw new UsageError(`--${flag}: not a valid regular expression: ${source} (${(err as Error).message})`);
  }
}

/** "20M" → 20e6, "1.5G" → 1.5e9, "4096" → 4096; UsageError otherwise. */
export function parseCount(flag: string, text: string | number): number {
  if (typeof text === 'number') {
    if (!(text > 0) || !Number.isFinite(text)) throw new UsageError(`--${flag} must be a positive number, got ${text}`);
    return Math.floor(text);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$/.exec(text);
  if (!m) throw new UsageError(`--${flag} must be a count such as 4096, 500k, 20M or 1.5G, got "${text}"`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  if (n <= 0) throw new UsageError(`--${flag} must be positive, got "${text}"`);
  return n;
}

/** "1,2,4,8" → [1, 2, 4, 8]; UsageError on anything else. */
export function parseRanks(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const ranks = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || ranks.some((r) => r < 1)) {
    throw new UsageError(`--ranks must be positive integers separated by commas, such as 1,2,4,8; got "${text}"`);
  }
  return ranks;
}

/** `--dtype bf16|f16|f32` as the checkpoint dtype it names (undefined: keep the input's). */
export function dtypeFlag(flag: string | undefined): DType | undefined {
  if (flag === undefined) return undefined;
  const d = ({ bf16: 'BF16', f16: 'F16', f32: 'F32' } as const)[flag as 'bf16' | 'f16' | 'f32'];
  if (!d) throw new UsageError(`--dtype must be bf16, f16 or f32, got ${flag}`);
  return d;
}

/** One progress report: `done` of `total` units, under `label` (a new label starts a new line). */
export type Tick = (
  label: string,
  done: number,
  total: number,
  detail?: string,
  work?: { done: number; total: number },
) => void;

/**
 * Run `work` with a progress line that it drives through `tick`, and clear the line however
 * `work` ends: the idiom every long command shares.
 * @example await withProgress(args, (tick) => mergeAdapter(b, a, out, { onProgress: (p) => tick('merge', p.index, p.total, p.name) }));
 */
export async function withProgress<T>(args: CommonArgs, work: (tick: Tick) => Promise<T>): Promise<T> {
  let progress: Progress | undefined;
  let shown = '';
  try {
    return await work((label, done, total, detail, amount) => {
      if (label !== shown) {
        progress?.finish();
        shown = label;
        progress = createProgress(args, label, total);
      }
      progress!.update(done, detail, amount);
    });
  } finally {
    progress?.finish();
  }
}

/**
 * How much of a run's work is done, by tensor size rather than count (the first tensor is often
 * the largest: counting tensors would promise an ETA of a few seconds on an hour's run).
 * `sizes` maps tensor names (with or without ".weight") to element counts.
 */
export function workBySize(sizes: Map<string, number>): { finished(name: string): { done: number; total: number } } {
  let total = 0;
  for (const n of sizes.values()) total += n;
  let done = 0;
  return {
    finished(name) {
      done += sizes.get(name) ?? sizes.get(`${name}.weight`) ?? 0;
      return { done: Math.min(done, total), total };
    },
  };
}

/** Element counts of the tensors of a checkpoint, from its header alone (cheap); those `keep` accepts. */
export async function tensorSizes(
  path: string,
  keep: (name: string, shape: number[]) => boolean = () => true,
): Promise<Map<string, number>> {
  const { openCheckpoint } = await import('../../io/index.js');
  const ckpt = await openCheckpoint(path);
  try {
    const sizes = new Map<string, number>();
    for (const t of ckpt.tensors)
      if (keep(t.name, t.shape))
        sizes.set(
          t.name,
          t.shape.reduce((a, b) => a * b, 1),
        );
    return sizes;
  } finally {
    await ckpt.close();
  }
}

/** Run compare with a progress line (`compare` and `demo`). */
export async function runCompare(args: CommonArgs, dir: string, opts: CompareOptions): Promise<CompareOutput> {
  // compare trains nothing but scores models with tfjs: loaded here, not when the CLI starts.
  const { compareRun } = await import('../../compare/index.js');
  return withProgress(args, (tick) =>
    compareRun(dir, { ...opts, onProgress: (p) => tick('compare', p.index, p.total, p.step) }),
  );
}

/** compare.json: everything but the bulky analysis and extraction, which have files of their own. */
export function comparisonDocument(r: CompareOutput): object {
  const { schemaVersion: _v, tool: _t, analysis: _a, extraction: _e, ...doc } = r;
  return doc;
}

/** The score table of a comparison, for a terminal. */
export function renderScores(r: CompareOutput): string {
  const pct = r.metric.name === 'accuracy';
  const f = (v: number | undefined) => (v === undefined ? '-' : pct ? `${(100 * v).toFixed(1)}%` : v.toFixed(3));
  const intruders = (run: string) => r.intruders?.find((x) => x.run === run)?.total ?? '-';
  type Extraction = CompareOutput['ranks'][number]['extracted'];
  const extractionRow = (label: string, e: Extraction) => [
    label,
    e.params,
    f(e.target),
    f(e.source),
    '-',
    ...fidelityCells(e),
  ];
  const rows: (string | number)[][] = [
    ['base', '-', f(r.base.target), f(r.base.source), '-', ...fidelityCells({ fidelity: r.baseFidelity })],
    ['full fine-tune', r.full.params, f(r.full.target), f(r.full.source), intruders('full')],
    ...r.ranks.flatMap((x) => [
      ...(x.variants ?? []).map((v) => [
        `trained ${v.variant} r=${x.rank}`,
        v.params,
        f(v.target),
        f(v.source),
        intruders(v.run),
      ]),
      extractionRow(`extracted LoRA r=${x.rank}`, x.extracted),
      ...(x.calibrated ? [extractionRow(`calibrated LoRA r=${x.rank}`, x.calibrated)] : []),
    ]),
  ];
  return formatTable(
    [
      'model',
      'params',
      `target ${r.metric.name}`,
      `source ${r.metric.name}`,
      'intruders',
      'KL(full‖·) target',
      'top-1 = full',
      'output error',
    ],
    rows,
  );
}

/** KL to the full fine-tune and top-1 agreement on the target task, and the output error on the calibration inputs. */
function fidelityCells(x: { fidelity?: FidelityScores; outputError?: number }): string[] {
  if (!x.fidelity) return ['-', '-', '-'];
  return [
    x.fidelity.target.kl.toPrecision(3),
    `${(100 * x.fidelity.target.top1).toFixed(1)}%`,
    x.outputError === undefined ? '-' : x.outputError.toFixed(4),
  ];
}

/**
 * Write the HTML report of a command whose other output `out` is already in place, so that
 * both stand or neither does: until the report is renamed into place, `out` is provisional (an
 * interrupt removes it, as it does a temporary), and a failed report removes it too, so a rerun
 * is not refused for an output that came without its report.
 */
export async function writeReportWith(out: string, report: string | undefined, render: () => string): Promise<void> {
  if (report === undefined) return;
  const { holdProvisionally } = await import('../../io/index.js');
  const { writeReport } = await import('../../report/index.js');
  const held = holdProvisionally(out);
  writingTo(report);
  try {
    await writeReport(report, render());
    held.commit();
  } catch (err) {
    await held.discard();
    throw new OutputsWithdrawn(err, out);
  }
}

/** A failure after which an output already written was removed again: the message says so. */
class OutputsWithdrawn extends Error {
  constructor(
    readonly failure: unknown,
    readonly removed: string,
  ) {
    super(failure instanceof Error ? failure.message : String(failure), { cause: failure });
    this.name = 'OutputsWithdrawn';
  }
}
