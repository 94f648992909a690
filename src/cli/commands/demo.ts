import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { renderCompareReport, writeReport } from '../../report/index.js';
import { formatDuration, printJson, say, type CommonArgs } from '../output.js';
import { comparisonDocument, renderText, runCompare } from './compare.js';
import { parseRanks } from './train.js';

interface DemoArgs extends CommonArgs {
  out: string;
  ranks: string;
  variants: string;
  epochs?: number;
  seed: number;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'the whole path on MNIST: train base, full fine-tune, LoRA, DoRA and PiSSA, analyze, extract, compare, one report',
  builder: (y) =>
    y
      .option('out', { type: 'string', default: 'reports/demo', describe: 'folder for the run and index.html (replaced)' })
      .option('ranks', { type: 'string', default: '1,4,16,64', describe: 'LoRA ranks to train and extract' })
      .option('variants', { type: 'string', default: 'lora,dora,pissa', describe: 'LoRA kinds trained at every rank (as train --variants)' })
      .option('epochs', { type: 'number', describe: 'epochs of every training run (default 5)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of training and of the randomized SVD' })
      .example('$0 demo', 'what npm start runs: reports/demo/index.html in about 75 s'),
  handler: async (args) => {
    const start = performance.now();
    const ranks = parseRanks(args.ranks);
    const { initBackend, trainTask, writeTrainOutput, parseVariant } = await import('../../train/index.js');
    const variants = args.variants.split(',').map((v) => parseVariant(v));
    const { writeDirAtomically } = await import('../../io/index.js');
    const { createProgress } = await import('../output.js');
    const run = join(args.out, 'run');
    const backend = await initBackend();
    say(args, `1/3 training on MNIST (upright digits → digits turned a quarter turn), ${backend.detail}: base, full fine-tune, ${variants.map((v) => v.name).join(', ')} at r = ${ranks.join(', ')}`);
    let progress: ReturnType<typeof createProgress> | undefined;
    try {
      await writeDirAtomically(run, { force: true }, async (tmp) => {
        const trained = await trainTask({
          task: 'mnist',
          ranks,
          variants,
          epochs: args.epochs,
          seed: args.seed,
          onProgress: (p) => {
            progress ??= createProgress(args, 'train', p.total);
            progress.update(p.done, `${p.run} loss ${p.loss.toFixed(3)}`);
          },
        });
        await writeTrainOutput(tmp, trained);
      });
    } finally {
      progress?.finish();
    }
    say(args, `   checkpoints and trained adapters in ${run}/ (${formatDuration((performance.now() - start) / 1000)})`);
    say(args, '2/3 analyzing the full fine-tune\'s ΔW, extracting LoRA at the same ranks, scoring everything on both tasks');
    const result = await runCompare(args, run, { force: true, seed: args.seed });
    say(args, `   extracted adapters in ${run}/extracted-r*/`);
    say(args, '3/3 writing the report');
    const report = join(args.out, 'index.html');
    await writeReport(report, renderCompareReport(result, { title: 'deltarank demo: LoRA against full fine-tuning on MNIST' }));
    await writeFile(join(run, 'compare.json'), JSON.stringify(comparisonDocument(result), null, 2) + '\n');
    if (args.json) printJson({ report, ...comparisonDocument(result) });
    else if (!args.quiet) process.stdout.write(renderText(result) + '\n');
    say(args, `\nreport: ${report}  (open it in a browser; done in ${formatDuration((performance.now() - start) / 1000)})`);
  },
};
