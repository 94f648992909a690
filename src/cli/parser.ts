/**
 * The yargs parser, built without side effects so tests can run it in-process.
 * One file per command under ./commands.
 */
import yargs, { type Argv } from 'yargs';
import { DeltarankError, UsageError } from '../errors.js';
import { TOOL } from '../version.js';
import { commands } from './commands/index.js';

export function buildParser(argv: string[]): Argv {
  let parser = yargs(argv)
    .scriptName('deltarank')
    .usage(
      '$0 <command> [options]\n\nLook inside fine-tunes: how low-rank is ΔW = W_tuned − W_base, and LoRA adapters from full fine-tunes.',
    )
    .option('json', { type: 'boolean', describe: 'print one JSON document on stdout and nothing else', global: true })
    .option('quiet', { type: 'boolean', alias: 'q', describe: 'no progress or notes on stderr', global: true })
    .option('debug', { type: 'boolean', describe: 'print stack traces of internal errors', global: true })
    .version(TOOL.version)
    .help()
    .alias('help', 'h')
    .strict()
    .demandCommand(1, 'name a command: deltarank --help lists them')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    // Validation failures (unknown flag, missing argument) become UsageError (exit 2);
    // errors thrown by a handler pass through unchanged.
    .fail((message, err) => {
      // yargs' own validation errors (YError: a missing value, an unknown flag) and errors thrown
      // while coercing a value are usage errors; a handler's errors keep their class.
      if (err instanceof DeltarankError) throw err;
      if (!err || err.name === 'YError') throw new UsageError(err?.message ?? message);
      throw err;
    });
  for (const command of commands) parser = parser.command(command);
  return parser;
}
