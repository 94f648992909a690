import type { CommandModule } from 'yargs';
import { analyzeCommand } from './analyze.js';
import { compareCommand } from './compare.js';
import { demoCommand } from './demo.js';
import { extractCommand } from './extract.js';
import { inspectCommand } from './inspect.js';
import { mergeCommand } from './merge.js';
import { resizeCommand } from './resize.js';
import { synthCommand } from './synth.js';
import { trainCommand } from './train.js';
import { verifyCommand } from './verify.js';

/** Every command, in the order `--help` lists them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  inspectCommand,
  synthCommand,
  analyzeCommand,
  extractCommand,
  verifyCommand,
  mergeCommand,
  resizeCommand,
  trainCommand,
  compareCommand,
  demoCommand,
];
