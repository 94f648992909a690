/**
 * Library messages in the words of the command line. Library code names an option as its API
 * spells it, in backticks (`` `maxRank` must be a positive integer ``), and a UsageError carries
 * it in `option`; here each such name that has a flag becomes the flag (`--max-rank must be …`).
 * Commands whose flag differs from the library's option name list it in OPTION_FLAGS.
 */
import { DeltarankError } from '../errors.js';

/** Each library option that a flag sets, and the flag (the flag is the option in kebab case unless listed otherwise). */
export const OPTION_FLAGS: Readonly<Record<string, string>> = Object.freeze({
  // extract, resize (rank policies and limits)
  rank: '--rank',
  energy: '--energy',
  error: '--error',
  budget: '--budget',
  budgetRelative: '--budget-relative',
  maxRank: '--max-rank',
  minRank: '--min-rank',
  embeddings: '--embeddings',
  norms: '--norms',
  profile: '--profile',
  dtype: '--dtype',
  // analyze
  topK: '--top-k',
  exact: '--exact',
  include: '--include',
  exclude: '--exclude',
  jobs: '--jobs',
  // every command that writes a folder
  force: '--force',
  // train, compare, synth
  ranks: '--ranks',
  epochs: '--epochs',
  alpha: '--alpha',
  rslora: '--rslora',
  seed: '--seed',
  shape: '--shape',
  shards: '--shards',
});

/** The flag for a library option, or undefined when no flag sets it. */
export function flagFor(option: string): string | undefined {
  return Object.hasOwn(OPTION_FLAGS, option) ? OPTION_FLAGS[option] : undefined;
}

/**
 * `text` (an error message or a warning) with every backticked option that has a flag replaced
 * by the flag; other backticked words are left as they are.
 * @example withFlags('`maxRank` must be a positive integer, got 0') // '--max-rank must be a positive integer, got 0'
 */
export function withFlags(text: string): string {
  return text.replace(/`([A-Za-z][A-Za-z0-9]*)`/g, (whole, option: string) => flagFor(option) ?? whole);
}

/** The line the CLI prints for an error (after "deltarank: "): deltarank's errors in flags, others as they are. */
export function errorLine(err: unknown): string {
  if (err instanceof DeltarankError) return withFlags(err.message);
  return err instanceof Error ? err.message : String(err);
}
