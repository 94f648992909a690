/**
 * `deltarank synth --shape tiny|small|tinyllama --out DIR`: a Llama-shaped base/tuned pair
 * with a planted ΔW spectrum, for trying the tool and benchmarking.
 */
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { dtypeFlag } from './common.js';
import { llamaTensors, SYNTH_SHAPES, writeSynthPair, type SynthShapeName } from '../../synth/index.js';
import { createProgress, formatBytes, formatDuration, printJson, say, type CommonArgs } from '../output.js';
import { UsageError } from '../../errors.js';

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
      .option('shape', { choices: Object.keys(SYNTH_SHAPES) as SynthShapeName[], demandOption: true, describe: 'tiny (hidden 64), small (hidden 512), tinyllama (1.1 B parameters)' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder (gets base/, tuned/, synth.json)' })
      .option('dtype', { choices: ['bf16', 'f16', 'f32'] as const, default: 'bf16' as const, describe: 'storage dtype' })
      .option('shards', { type: 'number', default: 1, describe: 'safetensors shards per side' })
      .option('seed', { type: 'number', default: 0, describe: 'random seed; equal seeds give identical files' })
      .option('force', { type: 'boolean', describe: 'replace an existing output folder' })
      .option('high-rank', { type: 'boolean', describe: 'a full fine-tune\'s high-rank ΔW (dense, power-law energy: rank at 90 % in the hundreds) instead of planted low-rank directions' })
      .example('$0 synth --shape tiny --out pairs/tiny', 'a small pair to try analyze and extract on')
      .example('$0 synth --shape tinyllama --shards 3 --out pairs/tinyllama', 'a 2.2 GB-a-side pair for benchmarks')
      .example('$0 synth --shape small --high-rank --out pairs/full-ft', 'a pair whose ΔW is high-rank, like a real full fine-tune'),
  handler: async (args) => {
    if (!Number.isSafeInteger(args.shards) || args.shards < 1) throw new UsageError(`--shards must be a positive integer, got ${args.shards}`);
    if (!Number.isSafeInteger(args.seed)) throw new UsageError(`--seed must be an integer, got ${args.seed}`);
    const dtype = dtypeFlag(args.dtype)!;
    const progress = createProgress(args, 'synth: tensors', 2 * llamaTensors(SYNTH_SHAPES[args.shape]).length);
    const start = performance.now();
    const manifest = await writeSynthPair(args.out, {
      shape: args.shape,
      dtype,
      shards: args.shards,
      seed: args.seed,
      force: args.force,
      highRank: args['high-rank'],
      onProgress: (done, _total, name) => progress.update(done, name),
    });
    progress.finish();
    const seconds = (performance.now() - start) / 1000;
    const perSide = [...manifest.modules, ...manifest.others].reduce((a, m) => a + m.shape.reduce((x, y) => x * y, 1), 0);
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
    say(args, `synth: ${args.shape}, ${dtype}, seed ${args.seed}: ${summary.tensors} tensors a side in ${formatDuration(seconds)}`);
    process.stdout.write(
      `wrote ${summary.base} and ${summary.tuned} (${perSide.toLocaleString('en-US')} parameters, ${formatBytes(bytesPerSide)} a side) and ${summary.manifest}\n`,
    );
  },
};
