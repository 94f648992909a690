import type { Argv, CommandModule } from 'yargs';
import { policyFromFlags, resizeAdapter } from '../../extract/index.js';
import { type CommonArgs, formatTable, printJson, warn } from '../output.js';
import { checkOutput, checkRankLimits, dtypeFlag, onePolicy, outOptions, rankOptions, stringOption } from './common.js';

interface ResizeArgs extends CommonArgs {
  adapter: string;
  out: string;
  rank?: number;
  energy?: number;
  error?: number;
  'max-rank'?: number;
  dtype?: string;
  force?: boolean;
}

export const resizeCommand: CommandModule<object, ResizeArgs> = {
  command: 'resize <adapter>',
  describe:
    're-rank a LoRA adapter by the SVD of each s·B·A (from the factors, no product formed); keeps lora_B.bias, DoRA magnitudes, fan_in_fan_out, tied lm_head and saved weights',
  builder: (y) =>
    y
      .positional('adapter', { type: 'string', demandOption: true, describe: 'PEFT LoRA adapter folder' })
      .options({
        ...outOptions('folder for the resized adapter'),
        ...rankOptions('‖s·B·A‖²'),
        dtype: stringOption("dtype of the factors (default: the adapter's)", { choices: ['bf16', 'f16', 'f32'] }),
      })
      .example(
        '$0 resize lora-r64/ --out lora-r16/ --rank 16',
        'the best rank-16 adapter inside a rank-64 one',
      ) as unknown as Argv<ResizeArgs>,
  handler: async (args) => {
    const policy = policyFromFlags(onePolicy({ rank: args.rank, energy: args.energy, error: args.error }));
    checkRankLimits({ rank: args.rank, maxRank: args['max-rank'] });
    await checkOutput(args.out, args.force);
    const result = await resizeAdapter(args.adapter, args.out, policy, {
      maxRank: args['max-rank'],
      force: args.force,
      dtype: dtypeFlag(args.dtype),
    });
    for (const w of result.warnings) warn(args, w);
    if (args.json) {
      const { schemaVersion: _v, tool: _t, ...doc } = result;
      return printJson(doc);
    }
    if (args.quiet) return;
    const rows = result.modules.map((m) => [
      m.module,
      m.fromRank,
      m.rank,
      m.energy.toFixed(4),
      m.relativeError.toFixed(4),
    ]);
    process.stdout.write(
      formatTable(['module', 'from', 'rank', 'energy', 'rel. error'], rows) +
        `\n${result.totalParams.toLocaleString('en-US')} parameters written to ${result.out}\n`,
    );
  },
};
