import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.js';
import { type CommonArgs, formatDuration, formatTable, printJson, say } from '../output.js';
import {
  checkOutput,
  integerOption,
  numberOption,
  outOptions,
  parseRanks,
  stringOption,
  withProgress,
} from './common.js';

interface TrainArgs extends CommonArgs {
  task: string;
  out: string;
  ranks?: string;
  epochs?: number;
  seed: number;
  alpha?: number;
  rslora?: boolean;
  dora?: boolean;
  loraBias?: boolean;
  init?: string;
  variants?: string;
  force?: boolean;
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'train a base model, its full fine-tune and LoRA fine-tunes at several ranks on a built-in task',
  builder: (y) =>
    y
      .options({
        task: stringOption('mnist: MLP on upright → turned digits; charlm: Llama-shaped character LM on prose → code', {
          choices: ['mnist', 'charlm'],
          demandOption: true,
        }),
        ...outOptions('folder for base/, full/, lora-r{R}/ and metrics.json'),
        ranks: stringOption('LoRA ranks, comma-separated (default mnist 1,2,4,8,16,32,64; charlm 1,4,16)'),
        epochs: integerOption('epochs', 'epochs of every run (default mnist 5, charlm 3)'),
        seed: integerOption('seed', 'seeds weights, LoRA A, example order and dropout', { min: 0, default: 0 }),
        alpha: numberOption('alpha', 'LoRA alpha (default 16); scale alpha/r'),
        rslora: { type: 'boolean', describe: 'rank-stabilised LoRA: scale alpha/sqrt(r)' },
        dora: { type: 'boolean', describe: 'DoRA (PEFT use_dora): a trained magnitude per output row' },
        'lora-bias': {
          type: 'boolean',
          describe: 'a trainable bias on lora_B (PEFT lora_bias; mnist only: charlm layers have no bias)',
        },
        init: stringOption('init_lora_weights: default, gaussian, pissa, pissa_niter_N, olora'),
        variants: stringOption(
          'several LoRA kinds at every rank, e.g. lora,dora,pissa (words lora, dora, bias, gaussian, pissa, pissa_niter_N, olora; join with +)',
        ),
      })
      .example('$0 train --task mnist --out runs/mnist', 'base, full fine-tune and LoRA at ranks 1…64 (≈ 30 s)')
      .example('$0 train --task charlm --out runs/lm --ranks 4,16 --epochs 2', 'a quicker character LM')
      .example(
        '$0 train --task mnist --out runs/kinds --ranks 4,16 --variants lora,dora,pissa',
        'LoRA, DoRA and PiSSA side by side',
      ) as unknown as Argv<TrainArgs>,
  handler: async (args) => {
    await checkOutput(args.out, args.force);
    const { initBackend, trainTask, writeTrainOutput } = await import('../../train/index.js');
    const { writeDirAtomically } = await import('../../io/index.js');
    if (args.task !== 'mnist' && args.task !== 'charlm')
      throw new UsageError(`--task must be mnist or charlm, got ${args.task}`);
    const task = args.task;
    const ranks = args.ranks === undefined ? undefined : parseRanks(args.ranks);
    const { parseLoraInit, parseVariant } = await import('../../train/index.js');
    if (args.variants !== undefined && (args.dora || args.loraBias || args.init !== undefined)) {
      throw new UsageError(
        '--variants names every kind itself (e.g. lora,dora+gaussian); drop --dora, --lora-bias and --init',
      );
    }
    const variants = args.variants?.split(',').map((v) => parseVariant(v));
    const init = args.init === undefined ? undefined : parseLoraInit(args.init);
    const backend = await initBackend();
    say(args, `backend: ${backend.detail}`);
    const result = await withProgress(args, (tick) =>
      writeDirAtomically(args.out, { force: args.force }, async (tmp) => {
        const trained = await trainTask({
          task,
          ranks,
          epochs: args.epochs,
          seed: args.seed,
          alpha: args.alpha,
          rslora: args.rslora,
          variants,
          useDora: args.dora,
          loraBias: args.loraBias,
          init,
          onProgress: (p) => tick(`train ${task}`, p.done, p.total, `${p.run} loss ${p.loss.toFixed(3)}`),
        });
        await writeTrainOutput(tmp, trained);
        return trained;
      }),
    );
    const { metrics } = result;
    if (args.json) return printJson(metrics);
    if (args.quiet) return;
    const accuracy = metrics.metric.name === 'accuracy';
    const show = (v: number) => (accuracy ? `${(100 * v).toFixed(1)}%` : v.toFixed(3));
    const label = accuracy ? 'accuracy' : 'bits/char';
    const rows = metrics.runs.map((r) => [
      r.name,
      r.trainableParams,
      show(r.final.source.metric),
      show(r.final.target.metric),
      formatDuration(r.seconds),
      Math.round(r.examplesPerSecond),
    ]);
    process.stdout.write(
      formatTable(['run', 'trainable', `source ${label}`, `target ${label}`, 'time', 'examples/s'], rows) + '\n',
    );
    process.stdout.write(
      `wrote ${args.out} (base/, full/, ${
        metrics.runs
          .filter((r) => r.kind === 'lora')
          .map((r) => `${r.name}/`)
          .join(', ') || 'no adapters'
      }, metrics.json) in ${formatDuration(metrics.seconds)} on ${metrics.backend}\n`,
    );
  },
};
