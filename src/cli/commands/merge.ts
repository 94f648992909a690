import type { Argv, CommandModule } from 'yargs';
import { mergeAdapter } from '../../extract/index.js';
import { type CommonArgs, printJson } from '../output.js';
import { checkOutput, outOptions, tensorSizes, withProgress, workBySize } from './common.js';

interface MergeArgs extends CommonArgs {
  base: string;
  adapter: string;
  out: string;
  force?: boolean;
}

export const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge <base> <adapter>',
  describe:
    "apply a LoRA adapter as PEFT's merge_and_unload does (W + s·B·A; Conv1D, DoRA, lora_B.bias, embeddings, target_parameters, modules_to_save; a tied lm_head written once; a resized vocabulary at its new size, config.json's vocab_size updated), in the base checkpoint's sharding and names",
  builder: (y) =>
    y
      .positional('base', {
        type: 'string',
        demandOption: true,
        describe: 'base checkpoint (file, index JSON or folder)',
      })
      .positional('adapter', { type: 'string', demandOption: true, describe: 'PEFT LoRA adapter folder' })
      .options(outOptions('folder for the merged checkpoint'))
      .example(
        '$0 merge base/ lora/ --out merged/',
        'the fine-tune the adapter stands for',
      ) as unknown as Argv<MergeArgs>,
  handler: async (args) => {
    await checkOutput(args.out, args.force);
    const work = workBySize(await tensorSizes(args.base));
    let previous: string | undefined;
    const result = await withProgress(args, (tick) =>
      mergeAdapter(args.base, args.adapter, args.out, {
        force: args.force,
        // Each event announces the tensor about to be written: the one before it is the one done.
        onProgress: (p) => {
          const done = previous === undefined ? { done: 0, total: 1 } : work.finished(previous);
          previous = p.name;
          tick('merge', p.index - 1, p.total, p.name, done);
        },
      }),
    );
    if (args.json) return printJson(result);
    if (!args.quiet) {
      process.stdout.write(
        `merged ${result.merged.length} LoRA modules, replaced ${result.replaced.length} weights, copied ${result.copied} tensors into ${result.out} (${result.files.join(', ')})\n`,
      );
      if (result.tiedSkipped.length > 0)
        process.stdout.write(
          `tied to the embeddings the base stores, so written as them: ${result.tiedSkipped.join(', ')}\n`,
        );
      if (result.resizedVocab)
        process.stdout.write(
          `vocabulary resized ${result.resizedVocab.from} → ${result.resizedVocab.to} (config.json vocab_size updated)\n`,
        );
    }
  },
};
