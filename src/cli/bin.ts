#!/usr/bin/env node
/**
 * `deltarank` entry point: parse, run, map errors to one line and an exit code.
 */
import { hideBin } from 'yargs/helpers';
import { stopSpectrumWorkers } from '../analyze/index.js';
import { describeError, EXIT, exitCodeFor } from './exit.js';
import { lastOutput } from './output.js';
import { buildParser } from './parser.js';

const argv = hideBin(process.argv);
const debug = argv.includes('--debug');

/** Exit status of a signal, as a shell reports it: 128 + its number. */
const SIGNAL_EXIT = { SIGHUP: 129, SIGINT: EXIT.interrupted, SIGTERM: 143 } as const;

for (const signal of Object.keys(SIGNAL_EXIT) as (keyof typeof SIGNAL_EXIT)[]) {
  process.on(signal, () => {
    // Ctrl-C, kill, a closed terminal: exit now, once the spectrum workers have stopped (within a
    // product's time). The exit handler of src/io/atomic.ts removes every temporary and every
    // output still provisional, so nothing half-written stays.
    process.stderr.write(`\ndeltarank: interrupted (${signal}); nothing unfinished was kept\n`);
    void stopSpectrumWorkers().finally(() => process.exit(SIGNAL_EXIT[signal]));
  });
}

try {
  await buildParser(argv).parseAsync();
} catch (err) {
  const code = exitCodeFor(err);
  const line = describeError(err, lastOutput());
  const hint =
    code === EXIT.usage
      ? ' (deltarank --help for usage)'
      : code === EXIT.internal && !debug
        ? ' (an internal error: rerun with --debug for the stack trace)'
        : '';
  process.stderr.write(`deltarank: ${line}${hint}\n`);
  if (code === EXIT.internal && debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  process.exitCode = code;
}
