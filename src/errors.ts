/**
 * Error classes shared by every layer. Library code throws these; only `src/cli` maps them to
 * exit codes (UsageError → 2, FormatError/ShapeError → 3) and to the words of the command line.
 *
 * Library messages speak the library's language: an option is named as the API spells it, in
 * backticks (`` `maxRank` must be a positive integer, got 0 ``), and the error carries what it is
 * about as fields, so that a caller need not parse the message. The CLI turns each backticked
 * option it has a flag for into that flag (`--max-rank must be …`).
 */

/** What an error is about; every field optional. */
export interface ErrorSubject {
  /** The file or folder at fault, as the caller gave it. */
  file?: string;
  /** The tensor at fault, by its name in the file. */
  tensor?: string;
  /** The option at fault, as the API spells it (`maxRank`, `topK`, `force`): the CLI maps it to its flag. */
  option?: string;
}

export class DeltarankError extends Error {
  declare readonly file?: string;
  declare readonly tensor?: string;
  declare readonly option?: string;
  constructor(message: string, options: ErrorSubject & { cause?: unknown } = {}) {
    const { cause, file, tensor, option } = options;
    super(message, 'cause' in options ? { cause } : undefined);
    this.name = new.target.name;
    // Set only when given, so that errors without a subject print and compare as before.
    if (file !== undefined) Object.defineProperty(this, 'file', { value: file, enumerable: true });
    if (tensor !== undefined) Object.defineProperty(this, 'tensor', { value: tensor, enumerable: true });
    if (option !== undefined) Object.defineProperty(this, 'option', { value: option, enumerable: true });
  }
}

/** A malformed file or folder: retrying will not help. Messages name the file, the tensor and what is wrong. */
export class FormatError extends DeltarankError {}

/** Tensors whose shapes do not fit together (base vs tuned, factors vs module). */
export class ShapeError extends DeltarankError {}

/**
 * A bad option, argument or combination of them. `option` names the one at fault as the API
 * spells it; the message names options in backticks.
 * @example throw new UsageError(`\`maxRank\` must be a positive integer, got ${maxRank}`, { option: 'maxRank' });
 */
export class UsageError extends DeltarankError {}
