import { join } from 'node:path';
import { DeltarankError, FormatError, ShapeError, UsageError } from '../errors.js';
import { errorLine } from './option-flags.js';

/** Exit codes: 0 ok, 1 internal fault, 2 usage, 3 bad input data or a system refusal, 130 interrupted. */
export const EXIT = { ok: 0, internal: 1, usage: 2, data: 3, interrupted: 130 } as const;

/**
 * What the system said, in a user's words, with what to do about it. `path` is the user's
 * path (a hidden temporary already mapped to the output it stands for).
 */
const SYSTEM_ERRORS: Record<string, (path: string) => string> = {
  ENOSPC: (p) =>
    `no space left on the device holding ${p}; free some space there or write elsewhere (nothing was kept)`,
  EDQUOT: (p) => `disk quota exceeded writing ${p}; free some space or write elsewhere (nothing was kept)`,
  EROFS: (p) => `${p} is on a read-only file system; write it somewhere writable`,
  EACCES: (p) => `permission denied: ${p}; check its permissions or choose another path`,
  EPERM: (p) => `operation not permitted on ${p}; check its permissions or choose another path`,
  ENOTEMPTY: (p) =>
    `${p} appeared while this run was writing it (another run?); it was left as it is; pass --force to replace it`,
  EEXIST: (p) => `${p} already exists; pass --force to replace it`,
  EISDIR: (p) => `${p} is a folder where a file was expected; give a file`,
  ENOTDIR: (p) => `${p}: part of this path is a file, not a folder`,
  ENOENT: (p) => `${p}: no such file or folder`,
  ENAMETOOLONG: (p) => `${p}: the name is too long for the file system`,
  EMFILE: (p) => `too many open files (at ${p}); raise the limit (ulimit -n) and retry`,
  EIO: (p) => `input/output error at ${p}: the disk or the network file system failed; retry, or check the device`,
};

/** Hidden temporaries are named `.NAME.tmp-PID-HEX` beside NAME (src/io/atomic.ts): the user knows NAME. */
const TEMPORARY = /^\.(.+)\.tmp-\d+-[0-9a-f]+$/;

/** The path a user gave, for a path that may be a temporary of ours or lie inside one. */
function userPath(path: string): string {
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const m = TEMPORARY.exec(parts[i]!);
    if (m) return join(parts.slice(0, i).join('/') || (path.startsWith('/') ? '/' : '.'), m[1]!);
  }
  return path;
}

function errnoOf(err: unknown): NodeJS.ErrnoException | undefined {
  let e: unknown = err;
  // A system error wrapped by our own code (OutputsWithdrawn, a cause chain) still is one.
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (typeof (e as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((e as NodeJS.ErrnoException).code!))
      return e as NodeJS.ErrnoException;
    e = (e as Error).cause;
  }
  return undefined;
}

/** Map an error to its exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof FormatError || err instanceof ShapeError) return EXIT.data;
  if (err instanceof DeltarankError) return EXIT.data;
  const cause = err instanceof Error && err.cause instanceof DeltarankError ? err.cause : undefined;
  if (cause) return exitCodeFor(cause);
  // The system refused (no space, read-only, permissions, a path in the way): not a fault of ours.
  const code = errnoOf(err)?.code;
  if (code !== undefined && code in SYSTEM_ERRORS) return EXIT.data;
  return EXIT.internal;
}

/**
 * The one line that tells a user what went wrong: our own messages as they are; a system
 * error as what it means for the user's path (`fallbackPath` when the system names none, as a
 * write to an open file does), never a hidden temporary's name.
 */
export function describeError(err: unknown, fallbackPath?: string): string {
  const removed = (err as { removed?: unknown }).removed;
  const tail =
    typeof removed === 'string' ? ` (${removed} was removed again: outputs are kept together or not at all)` : '';
  const inner = typeof removed === 'string' ? (err as Error).cause : err;
  // Library messages name options as the API spells them; errorLine speaks the command line's flags.
  if (inner instanceof DeltarankError) return errorLine(inner) + tail;
  const sys = errnoOf(inner);
  const known = sys?.code !== undefined ? SYSTEM_ERRORS[sys.code] : undefined;
  if (sys && known) {
    // A rename names both paths: the one in the way is its destination.
    const dest = (sys as { dest?: string }).dest;
    const raw = dest && (sys.code === 'ENOTEMPTY' || sys.code === 'EEXIST') ? dest : (sys.path ?? fallbackPath);
    return known(raw === undefined ? 'the output' : userPath(raw)) + tail;
  }
  return (inner instanceof Error ? inner.message : String(inner)) + tail;
}
