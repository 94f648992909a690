import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.js';
import { type ExtractionCoverage, extractAdapter, policyFromFlags } from '../../extract/index.js';
import { checkReportPath, renderExtractReport } from '../../report/index.js';
import { type CommonArgs, formatTable, printJson, say, warn } from '../output.js';
import { type CalibrateArgs, calibrateOptions, calibrationFrom } from './calibrate-flags.js';
import {
  checkOutput,
  checkRankLimits,
  dtypeFlag,
  FILTER_OPTIONS,
  integerOption,
  onePolicy,
  outOptions,
  parseCount,
  parseRegex,
  rankOptions,
  reportOption,
  seedOption,
  stringOption,
  tensorSizes,
  withProgress,
  workBySize,
  writeReportWith,
} from './common.js';

interface ExtractArgs extends CommonArgs, CalibrateArgs {
  base: string;
  tuned: string;
  out: string;
  rank?: number;
  energy?: number;
  error?: number;
  budget?: string;
  'budget-relative'?: string;
  'max-rank'?: number;
  'min-rank'?: number;
  include?: string;
  exclude?: string;
  dtype?: string;
  embeddings: 'lora' | 'full' | 'skip';
  norms?: 'full' | 'skip';
  profile: 'peft' | 'vllm';
  biases?: 'lora' | 'skip';
  report?: string;
  force?: boolean;
  seed: number;
}

export const extractCommand: CommandModule<object, ExtractArgs> = {
  command: 'extract <base> <tuned>',
  describe: 'a PEFT LoRA adapter of a full fine-tune (truncated SVD of every ΔW)',
  builder: (y) =>
    calibrateOptions(y)
      .positional('base', {
        type: 'string',
        demandOption: true,
        describe: 'base checkpoint (file, index JSON or folder)',
      })
      .positional('tuned', { type: 'string', demandOption: true, describe: 'fine-tuned checkpoint of the same model' })
      .options({
        ...outOptions('adapter folder to write', 'replace an existing --out folder and --report file'),
        ...rankOptions('‖ΔW‖²'),
        budget: stringOption(
          'total adapter parameters (e.g. 20M), ranks allocated to minimise the total squared error',
        ),
        'budget-relative': stringOption('like --budget, minimising the sum of relative squared errors'),
        'min-rank': integerOption('min-rank', 'no module below this rank (budget default 1)', { min: 0 }),
        ...FILTER_OPTIONS,
        dtype: stringOption("dtype of the factors (default: the checkpoint's)", { choices: ['bf16', 'f16', 'f32'] }),
        embeddings: stringOption('input embeddings and lm_head', {
          choices: ['lora', 'full', 'skip'],
          default: 'lora',
        }),
        norms: stringOption(
          'norm weights: saved whole (modules_to_save) or left out (default full; skip with --profile vllm)',
          { choices: ['full', 'skip'] },
        ),
        profile: stringOption('vllm: no modules_to_save, no bias', { choices: ['peft', 'vllm'], default: 'peft' }),
        biases: stringOption(
          'changed biases of LoRA modules: lora_B.bias (PEFT lora_bias) where PEFT loads that cleanly, else the tuned bias whole (bias: lora_only); or left out (default lora; skip with --profile vllm)',
          { choices: ['lora', 'skip'] },
        ),
        ...reportOption('write the HTML report (spectra and extraction) here'),
        ...seedOption(),
      })
      .example('$0 extract base/ tuned/ --out lora/ --rank 16', 'rank 16 everywhere')
      .example(
        '$0 extract base/ tuned/ --out lora/ --budget 20M --report extract.html',
        'best adapter of 20M parameters',
      )
      .example(
        '$0 extract base/ tuned/ --out lora/ --rank 16 --calibrate calib.txt',
        'rank 16, minimising the output error on calib.txt',
      ) as unknown as Argv<ExtractArgs>,
  handler: async (args) => {
    const flags = onePolicy({
      rank: args.rank,
      energy: args.energy,
      error: args.error,
      budget: args.budget === undefined ? undefined : parseCount('budget', args.budget),
      'budget-relative':
        args['budget-relative'] === undefined ? undefined : parseCount('budget-relative', args['budget-relative']),
    });
    const policy = policyFromFlags({
      rank: flags.rank,
      energy: flags.energy,
      error: flags.error,
      budget: flags.budget,
      budgetRelative: flags['budget-relative'],
    });
    checkRankLimits({ rank: args.rank, minRank: args['min-rank'], maxRank: args['max-rank'] });
    if (args.profile === 'vllm' && args.norms === 'full')
      throw new UsageError('--profile vllm writes no modules_to_save: drop --norms full');
    if (args.profile === 'vllm' && args.biases === 'lora')
      throw new UsageError('--profile vllm writes LoRA factors only: drop --biases lora');
    const include = parseRegex('include', args.include);
    const exclude = parseRegex('exclude', args.exclude);
    // Everything that can be refused is refused before the first tensor is read.
    await checkOutput(args.out, args.force);
    if (args.report !== undefined) await checkReportPath(args.report, { force: args.force });
    const calibration = await calibrationFrom(args, args.tuned);
    const work = workBySize(
      await tensorSizes(
        args.tuned,
        (name, shape) => shape.length === 2 && (!include || include.test(name)) && (!exclude || !exclude.test(name)),
      ),
    );
    const result = await withProgress(args, (tick) =>
      extractAdapter(args.base, args.tuned, args.out, {
        policy,
        maxRank: args['max-rank'],
        minRank: args['min-rank'],
        include,
        exclude,
        dtype: dtypeFlag(args.dtype),
        embeddings: args.embeddings,
        norms: args.norms,
        profile: args.profile,
        biases: args.biases,
        force: args.force,
        seed: args.seed,
        calibration,
        onProgress: (p) => {
          const label = p.phase === 'factors' ? 'extract' : p.phase;
          tick(label, p.index, p.total, p.name, p.phase === 'factors' ? work.finished(p.name) : undefined);
        },
      }),
    );
    for (const w of result.warnings) warn(args, w);
    // A resized vocabulary cannot be a LoRA: say so here, not only inside extraction.json.
    const resized = result.skipped.filter((s) => /resized vocabulary/.test(s.reason));
    if (resized.length > 0)
      warn(
        args,
        `${resized.map((s) => s.name).join(', ')}: the vocabulary was resized, so no LoRA can hold it; left out of the adapter (--embeddings full saves it whole)`,
      );
    await writeReportWith(result.out, args.report, () => renderExtractReport(result));
    if (args.report !== undefined) say(args, `report: ${args.report}`);
    const { spectra: _s, schemaVersion: _v, tool: _t, ...doc } = result;
    if (args.json) return printJson(doc);
    if (args.quiet) return;
    const rows = result.modules.map((m) => [
      m.module,
      m.shape.join('×'),
      m.rank,
      m.energy.toFixed(4),
      m.relativeError.toFixed(4),
      `${m.bound ? '≤ ' : ''}${m.optimalError.toFixed(4)}`,
      m.params,
    ]);
    const s = result.summary;
    process.stdout.write(
      [
        formatTable(['module', 'shape', 'rank', 'energy', 'rel. error', 'optimum', 'params'], rows),
        '',
        `${s.modules} LoRA modules, ${s.loraParams.toLocaleString('en-US')} parameters (${((100 * s.loraParams) / Math.max(1, s.denseParams)).toFixed(2)} % of the dense ΔW)` +
          (s.fullParams > 0 ? `, ${s.fullParams.toLocaleString('en-US')} saved whole` : ''),
        `model-level relative error ${s.relativeError.toFixed(4)} (optimum at these ranks ${s.optimalIsBound ? '≤ ' : ''}${s.optimalError.toFixed(4)}${s.optimalIsBound ? ': randomized SVDs give lower bounds of σ, so an upper bound of the optimum' : ''})`,
        coverageLine(result.coverage),
        result.calibration
          ? `calibrated on ${result.calibration.tokens.toLocaleString('en-US')} tokens (${result.calibration.inputs} inputs): output error ${result.calibration.outputError.toFixed(4)}, plain SVD at these ranks ${result.calibration.svdOutputError.toFixed(4)}`
          : '',
        result.skipped.length > 0 ? `skipped ${result.skipped.length} tensors (see extraction.json)` : '',
        `adapter written to ${result.out} in ${result.seconds.toFixed(1)} s`,
      ]
        .filter((l) => l !== '')
        .join('\n') + '\n',
    );
  },
};

/** The model-level line: what share of every changed parameter's ‖ΔW‖² the adapter carries, and the largest it leaves out. */
function coverageLine(c: ExtractionCoverage): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  const top = c.leftOut.slice(0, 3).map((l) => `${l.name} ${pct(l.share)}`);
  return (
    `the adapter reproduces ${pct(c.reproduced)} of Σ‖ΔW‖² over all ${c.changedParams.toLocaleString('en-US')} changed parameters` +
    ` (truncation ${pct(c.truncated)}, not carried ${pct(c.leftOutShare)}${top.length > 0 ? `: ${top.join(', ')}${c.leftOut.length > 3 ? ', …' : ''}` : ''})`
  );
}
