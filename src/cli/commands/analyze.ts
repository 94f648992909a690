import type { CommandModule } from 'yargs';
import { analyzeAdapter, analyzeCheckpoints, analyzeDelta, type AnalyzeOptions, type AnalyzeResult } from '../../analyze/index.js';
import { UsageError } from '../../errors.js';
import { checkReportPath, renderAnalyzeReport, writeReport } from '../../report/index.js';
import { createProgress, formatBytes, formatTable, printJson, say, type CommonArgs } from '../output.js';
import { parseRegex } from './common.js';

interface AnalyzeArgs extends CommonArgs {
  base?: string;
  tuned?: string;
  delta?: string;
  adapter?: string;
  'top-k'?: number;
  exact?: boolean;
  include?: string;
  exclude?: string;
  report?: string;
  seed: number;
}

export const analyzeCommand: CommandModule<object, AnalyzeArgs> = {
  command: 'analyze [base] [tuned]',
  describe: 'spectrum of every 2-D ΔW = W_tuned − W_base: how many ranks the fine-tune uses',
  builder: (y) =>
    y
      .positional('base', { type: 'string', describe: 'base checkpoint: a .safetensors file, an index JSON, or a folder (with --adapter: that adapter\'s base)' })
      .positional('tuned', { type: 'string', describe: 'fine-tuned checkpoint of the same model' })
      .option('delta', { type: 'string', describe: 'a checkpoint that already holds ΔW (in place of BASE TUNED)' })
      .option('adapter', { type: 'string', describe: 'a PEFT LoRA adapter folder: the spectrum of the change it makes (in place of BASE TUNED; give BASE too for DoRA adapters)' })
      .option('top-k', { type: 'number', describe: 'most singular values per tensor (default 64)' })
      .option('exact', { type: 'boolean', describe: 'complete spectra (all singular values), whatever the cost' })
      .option('include', { type: 'string', describe: 'only tensors whose name matches this regex' })
      .option('exclude', { type: 'string', describe: 'leave out tensors whose name matches this regex' })
      .option('report', { type: 'string', describe: 'write the HTML report here' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the randomized SVD' })
      .example('$0 analyze llama-7b/ llama-7b-chat/ --report report.html', 'spectra of a full fine-tune, with a report')
      .example('$0 analyze --adapter my-lora/ --json', 'spectra of a LoRA adapter, as JSON')
      .example('$0 analyze llama-7b/ --adapter my-dora/', 'what a DoRA adapter really changes (W\' − W needs the base)'),
  handler: async (args) => {
    // BASE beside --adapter is the adapter's base (needed for DoRA, gives ‖W‖ and modules_to_save changes).
    const pair = args.tuned !== undefined || (args.base !== undefined && args.adapter === undefined);
    const sources = [pair, args.delta !== undefined, args.adapter !== undefined].filter(Boolean).length;
    if (sources !== 1) throw new UsageError('give BASE TUNED, or --delta FILE, or --adapter DIR with an optional BASE (exactly one of them)');
    if (pair && (args.base === undefined || args.tuned === undefined)) throw new UsageError('give both BASE and TUNED');
    if (args.report) await checkReportPath(args.report);

    let progress: ReturnType<typeof createProgress> | undefined;
    const opts: AnalyzeOptions = {
      topK: args['top-k'],
      exact: args.exact,
      include: parseRegex('include', args.include),
      exclude: parseRegex('exclude', args.exclude),
      seed: args.seed,
      onProgress: (p) => {
        progress ??= createProgress(args, 'analyze', p.total);
        progress.update(p.index, `${formatBytes(p.bytesRead)} read  ${p.name}`);
      },
    };
    let result: AnalyzeResult;
    try {
      if (args.delta) result = await analyzeDelta(args.delta, opts);
      else if (args.adapter) result = await analyzeAdapter(args.adapter, { ...opts, basePath: args.base });
      else result = await analyzeCheckpoints(args.base!, args.tuned!, opts);
    } finally {
      progress?.finish();
    }
    if (args.report) {
      await writeReport(args.report, renderAnalyzeReport(result));
      say(args, `report: ${args.report}`);
    }
    if (args.json) {
      const { schemaVersion: _v, tool: _t, ...rest } = result;
      printJson(rest);
      return;
    }
    if (!args.quiet) process.stdout.write(renderText(result) + '\n');
  },
};

function renderText(r: AnalyzeResult): string {
  const keys = r.thresholds.map(String);
  const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '-' : v.toPrecision(digits));
  const rows = r.tensors.map((t) => [
    t.name,
    t.shape.join('×'),
    fmt(t.deltaNorm),
    fmt(t.relativeUpdate),
    ...keys.map((k) => (t.rankAt[k] === null ? `>${t.singularValues.length}` : String(t.rankAt[k]))),
    t.stableRank.toFixed(1),
    t.method,
  ]);
  const lines = [formatTable(['tensor', 'shape', '‖ΔW‖', 'rel', ...keys.map((k) => `r${Math.round(Number(k) * 100)}`), 'stable', 'method'], rows)];
  if (r.others.length > 0) lines.push('', `${r.others.length} other tensors (norms, biases) changed by ‖Δ‖ up to ${fmt(Math.max(...r.others.map((o) => o.deltaNorm)))}`);
  if (r.skipped.length > 0) lines.push('', `skipped ${r.skipped.length}:`, ...r.skipped.slice(0, 10).map((s) => `  ${s.name}: ${s.reason}`));
  if (r.skipped.length > 10) lines.push(`  … and ${r.skipped.length - 10} more (see --json)`);
  lines.push('', `${r.tensors.length} matrices analyzed in ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}
