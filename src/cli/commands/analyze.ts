import type { Argv, CommandModule } from 'yargs';
import {
  type AnalyzeOptions,
  type AnalyzeResult,
  analyzeAdapter,
  analyzeCheckpoints,
  analyzeDelta,
  checkpointIntruders,
  formatRankValue,
  type TensorIntruders,
} from '../../analyze/index.js';
import { UsageError } from '../../errors.js';
import { checkReportPath, renderAnalyzeReport, writeReport } from '../../report/index.js';
import { type CommonArgs, formatBytes, formatTable, printJson, say, writingTo } from '../output.js';
import {
  FILTER_OPTIONS,
  integerOption,
  numberOption,
  parseRegex,
  reportOption,
  seedOption,
  stringOption,
  tensorSizes,
  withProgress,
  workBySize,
} from './common.js';

interface AnalyzeArgs extends CommonArgs {
  base?: string;
  tuned?: string;
  delta?: string;
  adapter?: string;
  'top-k'?: number;
  exact?: boolean;
  refine: boolean;
  'refine-cap'?: number;
  jobs?: number;
  include?: string;
  exclude?: string;
  report?: string;
  force?: boolean;
  intruders?: boolean;
  seed: number;
}

export const analyzeCommand: CommandModule<object, AnalyzeArgs> = {
  command: 'analyze [base] [tuned]',
  describe: 'spectrum of every 2-D ΔW = W_tuned − W_base: how many ranks the fine-tune uses',
  builder: (y) =>
    y
      .positional('base', {
        type: 'string',
        describe:
          "base checkpoint: a .safetensors file, an index JSON, or a folder (with --adapter: that adapter's base)",
      })
      .positional('tuned', { type: 'string', describe: 'fine-tuned checkpoint of the same model' })
      .options({
        delta: stringOption('a checkpoint that already holds ΔW (in place of BASE TUNED)'),
        adapter: stringOption(
          'a PEFT LoRA adapter folder: the spectrum of the change it makes (in place of BASE TUNED; give BASE too for DoRA adapters)',
        ),
        'top-k': integerOption(
          'top-k',
          'most singular values of the first randomized pass per tensor (default 64); refinement goes further where a rank needs it',
        ),
        exact: { type: 'boolean', describe: 'complete spectra (all singular values), whatever the cost' },
        refine: {
          type: 'boolean',
          default: true,
          describe:
            'refine each tensor until its ranks are certified exact, within --refine-cap (--no-refine: one randomized pass)',
        },
        'refine-cap': numberOption(
          'refine-cap',
          'most estimated seconds one tensor may spend refining (default 60; 0.5 where the rest is a noise floor)',
        ),
        jobs: integerOption(
          'jobs',
          'most complete spectra computed at once, each on a worker thread (default: the cores, at most 4; memory grows with it)',
        ),
        ...FILTER_OPTIONS,
        ...reportOption(),
        force: { type: 'boolean', describe: 'replace an existing --report file' },
        intruders: {
          type: 'boolean',
          describe:
            'also count intruder dimensions per matrix (BASE TUNED only; needs the exact SVD of each W, matrices up to 512 on their smaller side)',
        },
        ...seedOption(),
      })
      .example('$0 analyze llama-7b/ llama-7b-chat/ --report report.html', 'spectra of a full fine-tune, with a report')
      .example('$0 analyze --adapter my-lora/ --json', 'spectra of a LoRA adapter, as JSON')
      .example(
        '$0 analyze llama-7b/ --adapter my-dora/',
        "what a DoRA adapter really changes (W' − W needs the base)",
      ) as unknown as Argv<AnalyzeArgs>,
  handler: async (args) => {
    // BASE beside --adapter is the adapter's base (needed for DoRA, gives ‖W‖ and modules_to_save changes).
    const pair = args.tuned !== undefined || (args.base !== undefined && args.adapter === undefined);
    const sources = [pair, args.delta !== undefined, args.adapter !== undefined].filter(Boolean).length;
    if (sources !== 1)
      throw new UsageError(
        'give BASE TUNED, or --delta FILE, or --adapter DIR with an optional BASE (exactly one of them)',
      );
    if (pair && (args.base === undefined || args.tuned === undefined)) throw new UsageError('give both BASE and TUNED');
    const include = parseRegex('include', args.include);
    const exclude = parseRegex('exclude', args.exclude);
    if (args.intruders && !pair)
      throw new UsageError('--intruders compares the singular vectors of two checkpoints: give BASE TUNED');
    if (args.report !== undefined) await checkReportPath(args.report, { force: args.force });
    // ETA by elements read, not tensors: the first tensor (the embeddings) is often the largest.
    const sizes = pair
      ? await tensorSizes(args.tuned!, (name) => (!include || include.test(name)) && (!exclude || !exclude.test(name)))
      : undefined;
    const work = sizes && workBySize(sizes);
    const result = await withProgress(args, (tick) => {
      const opts: AnalyzeOptions = {
        topK: args['top-k'],
        exact: args.exact,
        refine: args.refine,
        refineCapSeconds: args['refine-cap'],
        jobs: args.jobs,
        include,
        exclude,
        seed: args.seed,
        onProgress: (p) =>
          tick('analyze', p.index, p.total, `${formatBytes(p.bytesRead)} read  ${p.name}`, work?.finished(p.name)),
      };
      if (args.delta) return analyzeDelta(args.delta, opts);
      if (args.adapter) return analyzeAdapter(args.adapter, { ...opts, basePath: args.base });
      return analyzeCheckpoints(args.base!, args.tuned!, opts);
    });
    const intruders = args.intruders
      ? await checkpointIntruders(
          args.base!,
          args.tuned!,
          result.tensors.map((t) => t.name),
          { seed: args.seed },
        )
      : undefined;
    if (args.report !== undefined) {
      writingTo(args.report);
      await writeReport(args.report, renderAnalyzeReport(result));
      say(args, `report: ${args.report}`);
    }
    if (args.json) {
      // analyze documents carry their own schema version (2: certified bounds and rank intervals).
      const { schemaVersion, tool: _t, ...rest } = result;
      printJson({ schemaVersion, ...rest, ...(intruders ? { intruders } : {}) });
      return;
    }
    if (!args.quiet) process.stdout.write(renderText(result, intruders) + '\n');
  },
};

function renderText(r: AnalyzeResult, intruders?: TensorIntruders[]): string {
  const keys = r.thresholds.map(String);
  const fmt = (v: number | null | undefined, digits = 3) =>
    v === null || v === undefined ? '-' : v.toPrecision(digits);
  const rows = r.tensors.map((t) => [
    t.name,
    t.shape.join('×'),
    fmt(t.deltaNorm),
    fmt(t.relativeUpdate),
    ...keys.map((k) => formatRankValue(t.rankAt[k])),
    t.stableRank.toFixed(1),
    t.method + (t.refinement === null ? '' : t.complete ? ' (refined)' : '*'),
    ...(intruders ? [intruders.find((x) => x.name === t.name)?.count ?? '-'] : []),
  ]);
  const lines = [
    formatTable(
      [
        'tensor',
        'shape',
        '‖ΔW‖',
        'rel',
        ...keys.map((k) => `r${Math.round(Number(k) * 100)}`),
        'stable',
        'method',
        ...(intruders ? ['intruders'] : []),
      ],
      rows,
    ),
  ];
  const open = r.tensors.filter((t) => keys.some((k) => typeof t.rankAt[k] !== 'number'));
  lines.push('', 'ranks are certified: "30" is exact, "30–32" the interval the bounds prove');
  if (open.length > 0)
    lines.push(
      `${open.length} tensors with ranks left as intervals (* or see --json "refinement"), e.g. ${open[0]!.name}: ${open[0]!.refinement ?? 'no refinement asked'}`,
    );
  if (r.others.length > 0)
    lines.push(
      '',
      `${r.others.length} other tensors (norms, biases) changed by ‖Δ‖ up to ${fmt(r.others.reduce((m, o) => Math.max(m, o.deltaNorm), 0))}`,
    );
  if (r.skipped.length > 0)
    lines.push('', `skipped ${r.skipped.length}:`, ...r.skipped.slice(0, 10).map((s) => `  ${s.name}: ${s.reason}`));
  if (r.skipped.length > 10) lines.push(`  … and ${r.skipped.length - 10} more (see --json)`);
  lines.push('', `${r.tensors.length} matrices analyzed in ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}
