import { DeltarankError, FormatError, ShapeError, UsageError } from '../errors.js';

/** Exit codes: 0 ok, 1 internal fault, 2 usage, 3 bad input data, 130 interrupted. */
export const EXIT = { ok: 0, internal: 1, usage: 2, data: 3, interrupted: 130 } as const;

/** Map an error to its exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof FormatError || err instanceof ShapeError) return EXIT.data;
  if (err instanceof DeltarankError) return EXIT.data;
  // A missing or unreadable input path is bad input, not a fault of ours.
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST') return EXIT.data;
  return EXIT.internal;
}
