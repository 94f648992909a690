/**
 * Outputs appear under their final name only when complete: writers fill a temporary
 * sibling (same folder, so the final rename stays on one file system and is atomic) and
 * rename it at the end. Temporaries still registered when the process exits (an error
 * path that could not clean up, SIGINT, SIGTERM, SIGHUP) are removed synchronously on exit.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.js';

const temporaries = new Set<string>();
let hooked = false;

function removeTemporariesSync(): void {
  for (const path of temporaries) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Exiting anyway: a leftover hidden temporary is the least bad outcome.
    }
  }
  temporaries.clear();
}

type HandledSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/**
 * On SIGINT/SIGTERM/SIGHUP, remove the temporaries, then leave the signal to whoever else listens
 * (the CLI exits with 130); with no other listener, re-raise it so the process ends as the
 * signal's default would have it.
 */
function onSignal(signal: NodeJS.Signals): void {
  removeTemporariesSync();
  const own = signalHandlers[signal as HandledSignal];
  const others = process.listeners(signal).filter((l) => l !== own);
  if (others.length === 0) {
    process.removeListener(signal, own);
    process.kill(process.pid, signal);
  }
}

const signalHandlers = {
  SIGINT: () => onSignal('SIGINT'),
  SIGTERM: () => onSignal('SIGTERM'),
  // A closed terminal or ssh session: the default would end the process with the temporaries left.
  SIGHUP: () => onSignal('SIGHUP'),
};

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', removeTemporariesSync);
  process.on('SIGINT', signalHandlers.SIGINT);
  process.on('SIGTERM', signalHandlers.SIGTERM);
  process.on('SIGHUP', signalHandlers.SIGHUP);
}

function unhookWhenIdle(): void {
  if (!hooked || temporaries.size > 0) return;
  hooked = false;
  process.removeListener('exit', removeTemporariesSync);
  process.removeListener('SIGINT', signalHandlers.SIGINT);
  process.removeListener('SIGTERM', signalHandlers.SIGTERM);
  process.removeListener('SIGHUP', signalHandlers.SIGHUP);
}

/**
 * A fresh hidden name beside `finalPath` (`.name.tmp-<pid>-<random>`), registered for removal
 * on exit and on SIGINT/SIGTERM/SIGHUP until released.
 */
export function registerTemporary(finalPath: string): string {
  const tmp = join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  temporaries.add(tmp);
  hook();
  return tmp;
}

/** Forget a temporary (renamed into place or already removed). */
export function releaseTemporary(tmp: string): void {
  temporaries.delete(tmp);
  unhookWhenIdle();
}

/** Remove a temporary now and forget it; never throws. */
export async function discardTemporary(tmp: string): Promise<void> {
  await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  releaseTemporary(tmp);
}

/** Whether anything exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Run `fill(tmpDir)` on a fresh sibling temp folder, then rename it to `dir`. Refuses an
 * existing `dir` (UsageError) unless `force`, in which case the old folder is moved aside,
 * the new one renamed into place, and the old one removed. Removes the temp folder on
 * failure and on SIGINT/SIGTERM. Returns what `fill` returns.
 * @example await writeDirAtomically('out/adapter', { force: false }, async (tmp) => writeAdapterFiles(tmp));
 */
export async function writeDirAtomically<T>(
  dir: string,
  opts: { force?: boolean },
  fill: (tmpDir: string) => Promise<T>,
): Promise<T> {
  const { force = false } = opts;
  if (!force && (await exists(dir))) throw new UsageError(`${dir} already exists; pass --force to replace it`);
  await mkdir(dirname(dir), { recursive: true });
  const tmp = registerTemporary(dir);
  try {
    await mkdir(tmp);
    const result = await fill(tmp);
    if (force && (await exists(dir))) {
      const old = registerTemporary(dir);
      await rename(dir, old);
      try {
        await rename(tmp, dir);
      } catch (err) {
        await rename(old, dir);
        releaseTemporary(old);
        throw err;
      }
      await discardTemporary(old);
    } else {
      try {
        await rename(tmp, dir);
      } catch (err) {
        // Checked absent at the start: another run (or person) wrote it meanwhile, and theirs stays.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST')
          throw new UsageError(
            `${dir} appeared while this run was writing it (another run?); it was left as it is and nothing of this run was kept; pass --force to replace it`,
            { cause: err },
          );
        throw err;
      }
    }
    releaseTemporary(tmp);
    return result;
  } catch (err) {
    await discardTemporary(tmp);
    throw err;
  }
}

/**
 * Treat a just-written output as provisional until `commit()`: until then an exit or a signal
 * removes it, as it does a temporary, and `discard()` removes it now. For a command whose
 * outputs stand or fall together (an adapter and its report): the first is kept only once the
 * last is in place.
 * @example const held = holdProvisionally(out); try { await writeReport(...); held.commit(); } catch (e) { await held.discard(); throw e; }
 */
export function holdProvisionally(path: string): { commit(): void; discard(): Promise<void> } {
  temporaries.add(path);
  hook();
  return {
    commit: () => releaseTemporary(path),
    discard: () => discardTemporary(path),
  };
}
