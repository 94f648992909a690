#!/usr/bin/env node
/**
 * `deltarank` entry point: parse, run, map errors to one line and an exit code.
 */
import { hideBin } from 'yargs/helpers';
import { UsageError } from '../errors.js';
import { buildParser } from './parser.js';
import { EXIT, exitCodeFor } from './exit.js';
import { errorLine } from './option-flags.js';

const argv = hideBin(process.argv);
const debug = argv.includes('--debug');

process.on('SIGINT', () => {
  process.stderr.write('\ninterrupted\n');
  // Writers clean up their temporary files in exit handlers registered by src/io.
  process.exit(EXIT.interrupted);
});

try {
  await buildParser(argv).parseAsync();
} catch (err) {
  const code = exitCodeFor(err);
  const message = errorLine(err);
  process.stderr.write(`deltarank: ${message}\n`);
  if (err instanceof UsageError) process.stderr.write('Run deltarank --help for usage.\n');
  if (code === EXIT.internal && debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  else if (code === EXIT.internal) process.stderr.write('(an internal error: rerun with --debug for the stack trace)\n');
  process.exitCode = code;
}
