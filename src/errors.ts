/**
 * Error classes shared by every layer. Library code throws these; only `src/cli`
 * maps them to exit codes (UsageError → 2, FormatError/ShapeError → 3).
 */
export class DeltarankError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A malformed file or folder: retrying will not help. Messages name the file, the tensor and what is wrong. */
export class FormatError extends DeltarankError {}

/** Tensors whose shapes do not fit together (base vs tuned, factors vs module). */
export class ShapeError extends DeltarankError {}

/** A bad flag, argument or combination of them. */
export class UsageError extends DeltarankError {}
