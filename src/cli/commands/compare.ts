import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import type { CompareOptions, CompareOutput } from '../../compare/index.js';
import { checkReportPath, renderCompareReport, writeReport } from '../../report/index.js';
import { createProgress, formatTable, printJson, say, type CommonArgs } from '../output.js';
import { parseRanks } from './train.js';

interface CompareArgs extends CommonArgs {
  dir: string;
  ranks?: string;
  report?: string;
  force?: boolean;
  seed: number;
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare <dir>',
  describe: 'full fine-tune vs every trained LoRA variant vs LoRA extracted from the full fine-tune, per rank, with ΔM/ΔD and intruder dimensions',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'a folder written by deltarank train' })
      .option('ranks', { type: 'string', describe: 'ranks to extract at, e.g. 1,4,16 (default: the trained ranks)' })
      .option('report', { type: 'string', describe: 'write the HTML report here (default DIR/report.html)' })
      .option('force', { type: 'boolean', describe: 'replace extracted-r*/ folders of an earlier compare' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the randomized SVD' })
      .example('$0 train --task mnist --out runs/mnist && $0 compare runs/mnist', 'the whole story on MNIST'),
  handler: async (args) => {
    const ranks = args.ranks === undefined ? undefined : parseRanks(args.ranks);
    const reportPath = args.report ?? `${args.dir.replace(/\/+$/, '')}/report.html`;
    await checkReportPath(reportPath);
    const result = await runCompare(args, args.dir, { ranks, force: args.force, seed: args.seed });
    await writeReport(reportPath, renderCompareReport(result));
    await writeFile(join(args.dir, 'compare.json'), JSON.stringify(comparisonDocument(result), null, 2) + '\n');
    say(args, `report: ${reportPath}; scores in ${join(args.dir, 'compare.json')}`);
    if (args.json) return printJson(comparisonDocument(result));
    if (!args.quiet) process.stdout.write(renderText(result) + '\n');
  },
};

/** Run compare with a progress line. Shared with `demo`. */
export async function runCompare(args: CommonArgs, dir: string, opts: CompareOptions): Promise<CompareOutput> {
  // compare trains nothing but scores models with tfjs: loaded here, not when the CLI starts.
  const { compareRun } = await import('../../compare/index.js');
  let progress: ReturnType<typeof createProgress> | undefined;
  try {
    return await compareRun(dir, {
      ...opts,
      onProgress: (p) => {
        progress ??= createProgress(args, 'compare', p.total);
        progress.update(p.index, p.step);
      },
    });
  } finally {
    progress?.finish();
  }
}

/** compare.json: everything but the bulky analysis and extraction, which have files of their own. */
export function comparisonDocument(r: CompareOutput): object {
  const { schemaVersion: _v, tool: _t, analysis: _a, extraction: _e, ...doc } = r;
  return doc;
}

/** The score table for a terminal. */
export function renderText(r: CompareOutput): string {
  const pct = r.metric.name === 'accuracy';
  const f = (v: number | undefined) => (v === undefined ? '-' : pct ? `${(100 * v).toFixed(1)}%` : v.toFixed(3));
  const intruders = (run: string) => r.intruders?.find((x) => x.run === run)?.total ?? '-';
  const rows: (string | number)[][] = [
    ['base', '-', f(r.base.target), f(r.base.source)],
    ['full fine-tune', r.full.params, f(r.full.target), f(r.full.source)],
    ...r.ranks.flatMap((x) => [
      ...(x.variants ?? []).map((v) => [`trained ${v.variant} r=${x.rank}`, v.params, f(v.target), f(v.source), intruders(v.run)]),
      [`extracted LoRA r=${x.rank}`, x.extracted.params, f(x.extracted.target), f(x.extracted.source), '-'],
    ]),
  ];
  rows[1]!.push(intruders('full'));
  rows[0]!.push('-');
  return formatTable(['model', 'params', `target ${r.metric.name}`, `source ${r.metric.name}`, 'intruders'], rows as (string | number)[][]);
}
