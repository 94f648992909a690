/**
 * `deltarank synth --shape tiny|small|tinyllama --out DIR`: a Llama-shaped base/tuned pair
 * with a planted ΔW spectrum, for trying the tool and benchmarking.
 */
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { llamaTensors, SYNTH_SHAPES, type SynthShapeName, writeSynthPair } from '../../synth/index.js';
import { type CommonArgs, formatBytes, formatDuration, printJson, say } from '../output.js';
import { checkOutput, dtypeFlag, integerOption, outOptions, stringOption, withProgress, workBySize } from './common.js';

interface SynthArgs extends CommonArgs {
  shape: SynthShapeName;
  out: string;
  dtype: 'bf16' | 'f16' | 'f32';
  shards: number;
  seed: number;
  force?: boolean;
  'high-rank'?: boolean;
}

export const synthCommand: CommandModule<CommonArgs, SynthArgs> = {
  command: 'synth',
  describe: 'write a Llama-shaped base/ + tuned/ pair with a planted ΔW spectrum (and synth.json)',
  builder: (y: Argv<CommonArgs>) =>
    y
      .options({
        shape: stringOption('tiny (hidden 64), small (hidden 512), tinyllama (1.1 B parameters)', {
          choices: Object.keys(SYNTH_SHAPES),
          demandOption: true,
        }),
        ...outOptions('output folder (gets base/, tuned/, synth.json)', 'replace an existing output folder'),
        dtype: stringOption('storage dtype', { choices: ['bf16', 'f16', 'f32'], default: 'bf16' }),
        shards: integerOption('shards', 'safetensors shards per side', { default: 1 }),
        seed: integerOption('seed', 'random seed; equal seeds give identical files', { min: 0, default: 0 }),
        'high-rank': {
          type: 'boolean',
          describe:
            "a full fine-tune's high-rank ΔW (dense, power-law energy: rank at 90 % in the hundreds) instead of planted low-rank directions",
        },
      })
      .example('$0 synth --shape tiny --out pairs/tiny', 'a small pair to try analyze and extract on')
      .example('$0 synth --shape tinyllama --shards 3 --out pairs/tinyllama', 'a 2.2 GB-a-side pair for benchmarks')
      .example(
        '$0 synth --shape small --high-rank --out pairs/full-ft',
        'a pair whose ΔW is high-rank, like a real full fine-tune',
      ) as unknown as Argv<SynthArgs>,
  handler: async (args) => {
    const dtype = dtypeFlag(args.dtype)!;
    await checkOutput(args.out, args.force);
    const tensors = llamaTensors(SYNTH_SHAPES[args.shape]);
    // Both sides, tensor by tensor: the work of each is its size (the embeddings come first and are the largest).
    const work = workBySize(
      new Map(
        tensors.flatMap((t) => {
          const n = t.shape.reduce((a, b) => a * b, 1);
          return [
            [`base:${t.name}`, n],
            [`tuned:${t.name}`, n],
          ] as [string, number][];
        }),
      ),
    );
    const start = performance.now();
    const manifest = await withProgress(args, (tick) =>
      writeSynthPair(args.out, {
        shape: args.shape,
        dtype,
        shards: args.shards,
        seed: args.seed,
        force: args.force,
        highRank: args['high-rank'],
        onProgress: (done, total, name) =>
          tick('synth: tensors', done, total, name, work.finished(`${done <= total / 2 ? 'base' : 'tuned'}:${name}`)),
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const perSide = [...manifest.modules, ...manifest.others].reduce(
      (a, m) => a + m.shape.reduce((x, y) => x * y, 1),
      0,
    );
    const bytesPerSide = perSide * (dtype === 'F32' ? 4 : 2);
    const summary = {
      out: args.out,
      base: join(args.out, 'base'),
      tuned: join(args.out, 'tuned'),
      manifest: join(args.out, 'synth.json'),
      shape: args.shape,
      dtype,
      shards: args.shards,
      seed: args.seed,
      tensors: manifest.modules.length + manifest.others.length,
      parameters: perSide,
      bytesPerSide,
      seconds,
    };
    if (args.json) {
      printJson(summary);
      return;
    }
    say(
      args,
      `synth: ${args.shape}, ${dtype}, seed ${args.seed}: ${summary.tensors} tensors a side in ${formatDuration(seconds)}`,
    );
    process.stdout.write(
      `wrote ${summary.base} and ${summary.tuned} (${perSide.toLocaleString('en-US')} parameters, ${formatBytes(bytesPerSide)} a side) and ${summary.manifest}\n`,
    );
  },
};
