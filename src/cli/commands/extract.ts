import type { CommandModule } from 'yargs';
import { UsageError } from '../../errors.js';
import { extractAdapter, policyFromFlags } from '../../extract/index.js';
import { checkReportPath, renderExtractReport, writeReport } from '../../report/index.js';
import { createProgress, formatTable, printJson, say, warn, type CommonArgs } from '../output.js';
import { dtypeFlag, parseCount, parseRegex } from './common.js';
import { calibrateOptions, calibrationFrom, type CalibrateArgs } from './calibrate-flags.js';

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
  report?: string;
  force?: boolean;
  seed: number;
}

export const extractCommand: CommandModule<object, ExtractArgs> = {
  command: 'extract <base> <tuned>',
  describe: 'a PEFT LoRA adapter of a full fine-tune (truncated SVD of every ΔW)',
  builder: (y) =>
    calibrateOptions(y)
      .positional('base', { type: 'string', demandOption: true, describe: 'base checkpoint (file, index JSON or folder)' })
      .positional('tuned', { type: 'string', demandOption: true, describe: 'fine-tuned checkpoint of the same model' })
      .option('out', { type: 'string', demandOption: true, describe: 'adapter folder to write' })
      .option('rank', { type: 'number', describe: 'the same rank for every module' })
      .option('energy', { type: 'number', describe: 'per module, the smallest rank keeping this share of ‖ΔW‖²' })
      .option('error', { type: 'number', describe: 'per module, the smallest rank with relative Frobenius error ≤ this' })
      .option('budget', { type: 'string', describe: 'total adapter parameters (e.g. 20M), ranks allocated to minimise the total squared error' })
      .option('budget-relative', { type: 'string', describe: 'like --budget, minimising the sum of relative squared errors' })
      .option('max-rank', { type: 'number', describe: 'no module above this rank' })
      .option('min-rank', { type: 'number', describe: 'no module below this rank (budget default 1)' })
      .option('include', { type: 'string', describe: 'only tensors whose name matches this regex' })
      .option('exclude', { type: 'string', describe: 'leave out tensors whose name matches this regex' })
      .option('dtype', { choices: ['bf16', 'f16', 'f32'], describe: "dtype of the factors (default: the checkpoint's)" })
      .option('embeddings', { choices: ['lora', 'full', 'skip'] as const, default: 'lora' as const, describe: 'input embeddings and lm_head' })
      .option('norms', { choices: ['full', 'skip'] as const, describe: 'norm weights: saved whole (modules_to_save) or left out (default full; skip with --profile vllm)' })
      .option('profile', { choices: ['peft', 'vllm'] as const, default: 'peft' as const, describe: 'vllm: no modules_to_save, no bias' })
      .option('report', { type: 'string', describe: 'write the HTML report (spectra and extraction) here' })
      .option('force', { type: 'boolean', describe: 'replace an existing --out folder' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the randomized SVD' })
      .example('$0 extract base/ tuned/ --out lora/ --rank 16', 'rank 16 everywhere')
      .example('$0 extract base/ tuned/ --out lora/ --budget 20M --report extract.html', 'best adapter of 20M parameters')
      .example('$0 extract base/ tuned/ --out lora/ --rank 16 --calibrate calib.txt', 'rank 16, minimising the output error on calib.txt'),
  handler: async (args) => {
    const policy = policyFromFlags({
      rank: args.rank,
      energy: args.energy,
      error: args.error,
      budget: args.budget === undefined ? undefined : parseCount('budget', args.budget),
      budgetRelative: args['budget-relative'] === undefined ? undefined : parseCount('budget-relative', args['budget-relative']),
    });
    if (args.profile === 'vllm' && args.norms === 'full') throw new UsageError('--profile vllm writes no modules_to_save: drop --norms full');
    if (args.report) await checkReportPath(args.report);
    let progress: ReturnType<typeof createProgress> | undefined;
    let phase = '';
    let result;
    try {
      result = await extractAdapter(args.base, args.tuned, args.out, {
        policy,
        maxRank: args['max-rank'],
        minRank: args['min-rank'],
        include: parseRegex('include', args.include),
        exclude: parseRegex('exclude', args.exclude),
        dtype: dtypeFlag(args.dtype),
        embeddings: args.embeddings,
        norms: args.norms,
        profile: args.profile,
        force: args.force,
        seed: args.seed,
        calibration: await calibrationFrom(args, args.tuned),
        onProgress: (p) => {
          if (p.phase !== phase) {
            progress?.finish();
            phase = p.phase;
            progress = createProgress(args, p.phase, p.total);
          }
          progress!.update(p.index, p.name);
        },
      });
    } finally {
      progress?.finish();
    }
    for (const w of result.warnings) warn(args, w);
    if (args.report) {
      await writeReport(args.report, renderExtractReport(result));
      say(args, `report: ${args.report}`);
    }
    const { spectra: _s, schemaVersion: _v, tool: _t, ...doc } = result;
    if (args.json) return printJson(doc);
    if (args.quiet) return;
    const rows = result.modules.map((m) => [m.module, m.shape.join('×'), m.rank, m.energy.toFixed(4), m.relativeError.toFixed(4), m.optimalError.toFixed(4), m.params]);
    const s = result.summary;
    process.stdout.write(
      [
        formatTable(['module', 'shape', 'rank', 'energy', 'rel. error', 'optimum', 'params'], rows),
        '',
        `${s.modules} LoRA modules, ${s.loraParams.toLocaleString('en-US')} parameters (${((100 * s.loraParams) / Math.max(1, s.denseParams)).toFixed(2)} % of the dense ΔW)` +
          (s.fullParams > 0 ? `, ${s.fullParams.toLocaleString('en-US')} in modules_to_save` : ''),
        `model-level relative error ${s.relativeError.toFixed(4)} (optimum at these ranks ${s.optimalError.toFixed(4)})`,
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
