/** Putting a report on disk: checked before the long analysis starts, written atomically after it. */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';

/**
 * Write `html` to `file` atomically: a temporary name in the same folder, then a rename, so
 * the file appears complete or not at all (and an older report stays intact on failure).
 * Creates the folder. Overwrites an existing file.
 *
 * @example await writeReport('reports/run1.html', renderAnalyzeReport(result))
 */
export async function writeReport(file: string, html: string): Promise<void> {
  const target = resolve(file);
  const dir = dirname(target);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${basename(target)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, html, 'utf8');
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    // ENOTDIR: a file stands where a folder of the path should be; the walk up finds it
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Check early that `file` can be written, so a bad `--report` path fails before an analysis
 * of many minutes rather than after: not a folder, and its nearest existing ancestor folder
 * is a writable folder (writeReport creates the rest). Creates nothing.
 * Throws UsageError naming the path.
 *
 * @example await checkReportPath(args.report)
 */
export async function checkReportPath(file: string): Promise<void> {
  if (file === '' || /[\\/]$/.test(file)) throw new UsageError(`report path "${file}" names a folder; give a file such as report.html`);
  const target = resolve(file);
  const existing = await statOrNull(target);
  if (existing?.isDirectory()) throw new UsageError(`report path "${file}" is a folder; give a file such as ${join(file, 'report.html')}`);
  let dir = dirname(target);
  let info = await statOrNull(dir);
  while (info === null && dirname(dir) !== dir) {
    dir = dirname(dir);
    info = await statOrNull(dir);
  }
  if (info === null || !info.isDirectory()) {
    throw new UsageError(`cannot write report "${file}": ${dir} is not a folder`);
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new UsageError(`cannot write report "${file}": folder ${dir} is not writable`);
  }
}
