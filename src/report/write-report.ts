/** Putting a report on disk: checked before the long analysis starts, written atomically after it. */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { writeFileAtomically } from '../io/index.js';

/**
 * Write `html` to `file` atomically: a registered temporary name in the same folder, then a
 * rename, so the file appears complete or not at all, an older report stays intact on failure,
 * and an interrupt removes the temporary. Creates the folder. Overwrites an existing file
 * (`checkReportPath` refuses one without `force` before the work starts).
 *
 * @example await writeReport('reports/run1.html', renderAnalyzeReport(result))
 */
export async function writeReport(file: string, html: string): Promise<void> {
  await writeFileAtomically(resolve(file), html);
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
 * of many minutes rather than after: not a folder, not an existing file unless `force`, and
 * its nearest existing ancestor folder is a writable folder (writeReport creates the rest).
 * Creates nothing. Throws UsageError naming the path.
 *
 * @example await checkReportPath(args.report, { force: args.force })
 */
export async function checkReportPath(file: string, { force = false }: { force?: boolean } = {}): Promise<void> {
  if (file === '' || /[\\/]$/.test(file))
    throw new UsageError(`report path "${file}" names a folder; give a file such as report.html`);
  const target = resolve(file);
  const existing = await statOrNull(target);
  if (existing?.isDirectory())
    throw new UsageError(`report path "${file}" is a folder; give a file such as ${join(file, 'report.html')}`);
  if (existing && !force) throw new UsageError(`report ${file} already exists; pass --force to replace it`);
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
