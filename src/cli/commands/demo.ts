import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { renderCompareReport, writeReport } from '../../report/index.js';
import { type CommonArgs, formatDuration, printJson, say, writingTo } from '../output.js';
import {
  comparisonDocument,
  integerOption,
  parseRanks,
  renderScores,
  runCompare,
  stringOption,
  withProgress,
} from './common.js';

interface DemoArgs extends CommonArgs {
  out: string;
  ranks: string;
  variants: string;
  epochs?: number;
  seed: number;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe:
    'the whole path on MNIST: train base, full fine-tune, LoRA, DoRA and PiSSA, analyze, extract, compare, one report',
  builder: (y) =>
    y
      .options({
        out: stringOption('folder for the run and index.html (replaced)', { default: 'reports/demo' }),
        ranks: stringOption('LoRA ranks to train and extract', { default: '1,4,16,64' }),
        variants: stringOption('LoRA kinds trained at every rank (as train --variants)', {
          default: 'lora,dora,pissa',
        }),
        epochs: integerOption('epochs', 'epochs of every training run (default 5)'),
        seed: integerOption('seed', 'seed of training and of the randomized SVD', { min: 0, default: 0 }),
      })
      .example('$0 demo', 'what npm start runs: reports/demo/index.html in about 55 s') as unknown as Argv<DemoArgs>,
  handler: async (args) => {
    const start = performance.now();
    const ranks = parseRanks(args.ranks);
    const { initBackend, trainTask, writeTrainOutput, parseVariant } = await import('../../train/index.js');
    const variants = args.variants.split(',').map((v) => parseVariant(v));
    const { writeDirAtomically, writeFileAtomically } = await import('../../io/index.js');
    const run = join(args.out, 'run');
    const backend = await initBackend();
    say(
      args,
      `1/3 training on MNIST (upright digits → digits turned a quarter turn), ${backend.detail}: base, full fine-tune, ${variants.map((v) => v.name).join(', ')} at r = ${ranks.join(', ')}`,
    );
    writingTo(run);
    await withProgress(args, (tick) =>
      writeDirAtomically(run, { force: true }, async (tmp) => {
        const trained = await trainTask({
          task: 'mnist',
          ranks,
          variants,
          epochs: args.epochs,
          seed: args.seed,
          onProgress: (p) => tick('train', p.done, p.total, `${p.run} loss ${p.loss.toFixed(3)}`),
        });
        await writeTrainOutput(tmp, trained);
      }),
    );
    say(args, `   checkpoints and trained adapters in ${run}/ (${formatDuration((performance.now() - start) / 1000)})`);
    say(
      args,
      "2/3 analyzing the full fine-tune's ΔW, extracting LoRA at the same ranks, scoring everything on both tasks",
    );
    const result = await runCompare(args, run, { force: true, seed: args.seed });
    say(args, `   extracted adapters in ${run}/extracted-r*/`);
    say(args, '3/3 writing the report');
    const report = join(args.out, 'index.html');
    writingTo(report);
    await writeReport(
      report,
      renderCompareReport(result, { title: 'deltarank demo: LoRA against full fine-tuning on MNIST' }),
    );
    writingTo(join(run, 'compare.json'));
    await writeFileAtomically(join(run, 'compare.json'), JSON.stringify(comparisonDocument(result), null, 2) + '\n');
    if (args.json) printJson({ report, ...comparisonDocument(result) });
    else if (!args.quiet) process.stdout.write(renderScores(result) + '\n');
    say(
      args,
      `\nreport: ${report}  (open it in a browser; done in ${formatDuration((performance.now() - start) / 1000)})`,
    );
  },
};
