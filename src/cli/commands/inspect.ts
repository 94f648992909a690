/**
 * `deltarank inspect PATH`: the tensors of a checkpoint (name, dtype, shape, size, shard) and
 * totals. Reads headers only.
 */
import { basename } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { DTYPE_SIZE, openCheckpoint } from '../../io/index.js';
import { gemmEngine } from '../../svd/index.js';
import { type CommonArgs, formatBytes, formatTable, printJson } from '../output.js';

interface InspectArgs extends CommonArgs {
  path: string;
}

export const inspectCommand: CommandModule<CommonArgs, InspectArgs> = {
  command: 'inspect <path>',
  describe: 'list the tensors of a checkpoint: name, dtype, shape, size, shard; totals',
  builder: (y: Argv<CommonArgs>) =>
    y
      .positional('path', {
        type: 'string',
        demandOption: true,
        describe: 'a .safetensors file, a sharded index JSON, or a folder holding either',
      })
      .example('$0 inspect models/base', 'tensors of a checkpoint folder')
      .example('$0 inspect model.safetensors.index.json --json', 'the same as one JSON document'),
  handler: async (args) => {
    const ckpt = await openCheckpoint(args.path);
    try {
      const tensors = ckpt.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        bytes: t.byteLength,
        file: basename(t.file),
      }));
      const totalBytes = tensors.reduce((a, t) => a + t.bytes, 0);
      const totalParams = ckpt.tensors.reduce((a, t) => a + t.byteLength / DTYPE_SIZE[t.dtype], 0);
      if (args.json) {
        // The matrix-product engine this installation uses (chosen once per process), for bug reports.
        printJson({
          path: args.path,
          files: ckpt.files.map((f) => basename(f)),
          tensors,
          totalBytes,
          totalParams,
          engine: await gemmEngine(),
        });
        return;
      }
      const rows = tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.bytes), t.file]);
      const lines = [
        formatTable(['name', 'dtype', 'shape', 'size', 'shard'], rows),
        '',
        `${tensors.length} tensors, ${totalParams.toLocaleString('en-US')} parameters, ${formatBytes(totalBytes)} (${totalBytes.toLocaleString('en-US')} bytes) in ${ckpt.files.length} ${ckpt.files.length === 1 ? 'shard' : 'shards'}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      await ckpt.close();
    }
  },
};
