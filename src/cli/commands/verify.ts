import type { CommandModule } from 'yargs';
import { loadSequences } from '../../model/input.js';
import { checkReportPath, writeReport } from '../../report/index.js';
import { renderVerifyReport } from '../../report/verify-sections.js';
import { verifyAdapter } from '../../verify/index.js';
import { DEFAULT_LAYER_KL_TOKENS } from '../../verify/verify.js';
import { type CommonArgs, createProgress, formatTable, printJson, say } from '../output.js';
import { type TokenInputArgs, tokenInput, tokenInputOptions } from './token-input.js';

interface VerifyArgs extends CommonArgs, TokenInputArgs {
  base: string;
  tuned: string;
  adapter: string;
  merge?: boolean;
  'layer-kl': number;
  report?: string;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify <base> <tuned> <adapter>',
  describe:
    'run base, fine-tune and base+adapter on held-out text: KL, top-1, perplexity, share recovered, per-layer error',
  builder: (y) =>
    tokenInputOptions(
      y
        .positional('base', {
          type: 'string',
          demandOption: true,
          describe: 'base checkpoint folder (with config.json)',
        })
        .positional('tuned', {
          type: 'string',
          demandOption: true,
          describe: 'the full fine-tune the adapter stands for',
        })
        .positional('adapter', { type: 'string', demandOption: true, describe: 'PEFT LoRA/DoRA adapter folder' })
        .option('merge', { type: 'boolean', describe: 'apply the adapter merged into W rather than as factors' })
        .option('layer-kl', {
          type: 'number',
          default: DEFAULT_LAYER_KL_TOKENS,
          describe: 'tokens whose logit-lens KL is measured after every layer (0: none)',
        })
        .option('report', { type: 'string', describe: 'write the HTML report here' }),
      'held-out input (never the calibration text)',
    )
      .example('$0 verify base/ tuned/ lora/ --text held-out.txt', 'how close base+lora comes to the fine-tune')
      .example(
        '$0 verify base/ tuned/ lora/ --tokens ids.json --json --report verify.html',
        'token ids, JSON and a report',
      ),
  handler: async (args) => {
    if (args.report) await checkReportPath(args.report);
    const input = await loadSequences(tokenInput(args, args.tuned));
    let progress: ReturnType<typeof createProgress> | undefined;
    let result;
    try {
      result = await verifyAdapter(args.base, args.tuned, args.adapter, input.sequences, {
        merge: args.merge,
        layerKlTokens: args['layer-kl'],
        onProgress: (p) => {
          progress ??= createProgress(
            args,
            `verify (${input.tokens.toLocaleString('en-US')} tokens, 3 models)`,
            p.total,
          );
          progress.update(p.index, p.name);
        },
      });
    } finally {
      progress?.finish();
    }
    if (args.report) {
      await writeReport(args.report, renderVerifyReport(result));
      say(args, `report: ${args.report}`);
    }
    const { schemaVersion: _v, tool: _t, ...doc } = result;
    if (args.json)
      return printJson({ ...doc, input: { source: input.source, seqLen: args['seq-len'], dropped: input.dropped } });
    if (args.quiet) return;
    const r = result;
    const rows: (string | number)[][] = [
      [
        'KL(tuned ‖ ·), nats',
        '0',
        `${r.kl.base.toPrecision(4)} ± ${r.kl.baseStdErr.toPrecision(2)}`,
        `${r.kl.adapter.toPrecision(4)} ± ${r.kl.adapterStdErr.toPrecision(2)}`,
      ],
      ['top-1 agreement with tuned', '100 %', pct(r.top1.base), pct(r.top1.adapter)],
      [
        'perplexity',
        r.perplexity.tuned.toPrecision(5),
        r.perplexity.base.toPrecision(5),
        r.perplexity.adapter.toPrecision(5),
      ],
    ];
    const last = r.layers[r.layers.length - 1];
    process.stdout.write(
      [
        formatTable(['', 'tuned', 'base', 'base+adapter'], rows),
        '',
        `the adapter leaves ${pct(r.kl.adapter / Math.max(r.kl.base, 1e-300))} of the base's KL; it recovers ${pct(r.recovered)} of the fine-tune's logit change` +
          (last ? `, and its last hidden state is ${pct(last.relativeError)} of the fine-tune's change away` : ''),
        `${r.tokens.toLocaleString('en-US')} tokens in ${r.sequences} sequences from ${input.source}${input.dropped > 0 ? ` (${input.dropped.toLocaleString('en-US')} more left out by --max-tokens)` : ''}, ${r.seconds.toFixed(1)} s`,
      ].join('\n') + '\n',
    );
  },
};
