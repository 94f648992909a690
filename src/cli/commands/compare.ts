import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomically } from '../../io/index.js';
import { checkReportPath, renderCompareReport, writeReport } from '../../report/index.js';
import { type CommonArgs, printJson, say, writingTo } from '../output.js';
import {
  checkOutput,
  comparisonDocument,
  parseRanks,
  renderScores,
  reportOption,
  runCompare,
  seedOption,
  stringOption,
} from './common.js';

interface CompareArgs extends CommonArgs {
  dir: string;
  ranks?: string;
  report?: string;
  force?: boolean;
  seed: number;
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare <dir>',
  describe:
    'full fine-tune vs every trained LoRA variant vs LoRA extracted from the full fine-tune, per rank, with ΔM/ΔD and intruder dimensions',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'a folder written by deltarank train' })
      .options({
        ranks: stringOption('ranks to extract at, e.g. 1,4,16 (default: the trained ranks)'),
        ...reportOption('write the HTML report here (default DIR/report.html)'),
        force: {
          type: 'boolean',
          describe: 'replace the report and the extracted-r*/ and calibrated-r*/ folders of an earlier compare',
        },
        ...seedOption(),
      })
      .example(
        '$0 train --task mnist --out runs/mnist && $0 compare runs/mnist',
        'the whole story on MNIST',
      ) as unknown as Argv<CompareArgs>,
  handler: async (args) => {
    const ranks = args.ranks === undefined ? undefined : parseRanks(args.ranks);
    const reportPath = args.report ?? `${args.dir.replace(/\/+$/, '')}/report.html`;
    await checkReportPath(reportPath, { force: args.force });
    if (!args.force)
      for (const rank of ranks ?? (await trainedRanks(args.dir)))
        for (const kind of ['extracted', 'calibrated']) await checkOutput(join(args.dir, `${kind}-r${rank}`), false);
    const result = await runCompare(args, args.dir, { ranks, force: args.force, seed: args.seed });
    const scores = join(args.dir, 'compare.json');
    writingTo(reportPath);
    await writeReport(reportPath, renderCompareReport(result));
    writingTo(scores);
    await writeFileAtomically(scores, JSON.stringify(comparisonDocument(result), null, 2) + '\n');
    say(args, `report: ${reportPath}; scores in ${scores}`);
    if (args.json) return printJson(comparisonDocument(result));
    if (!args.quiet) process.stdout.write(renderScores(result) + '\n');
  },
};

/**
 * The ranks compare extracts by default (those trained), read leniently: a metrics.json that
 * cannot be read is left for compare itself to refuse, with its own message.
 */
async function trainedRanks(dir: string): Promise<number[]> {
  try {
    const doc = JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as {
      runs?: { kind?: string; rank?: number }[];
    };
    return (doc.runs ?? []).filter((r) => r.kind === 'lora' && Number.isInteger(r.rank)).map((r) => r.rank!);
  } catch {
    return [];
  }
}
