import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { checkReportPath, writeReport } from '../../src/report/write-report.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-report-'));
});
after(async () => {
  await chmod(join(dir, 'locked'), 0o755).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

test('writeReport creates the folders, replaces an old report, leaves no temporary file', async () => {
  const file = join(dir, 'a', 'b', 'report.html');
  await writeReport(file, '<p>one</p>');
  assert.equal(await readFile(file, 'utf8'), '<p>one</p>');
  await writeReport(file, '<p>two ‖ΔW‖</p>');
  assert.equal(await readFile(file, 'utf8'), '<p>two ‖ΔW‖</p>');
  assert.deepEqual(await readdir(join(dir, 'a', 'b')), ['report.html']);
});

test('writeReport into a path that is a folder fails and cleans up', async () => {
  const target = join(dir, 'is-a-dir');
  await mkdir(join(target, 'inside'), { recursive: true });
  await assert.rejects(writeReport(target, 'x'));
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('.')),
    [],
  );
});

test('checkReportPath accepts writable places, even folders still to make', async () => {
  await checkReportPath(join(dir, 'report.html'));
  await checkReportPath(join(dir, 'new', 'deeper', 'report.html'));
  await writeFile(join(dir, 'existing.html'), 'old');
  await checkReportPath(join(dir, 'existing.html'), { force: true });
  await assert.rejects(
    checkReportPath(join(dir, 'existing.html')),
    (e: unknown) => e instanceof UsageError && /existing\.html already exists; pass --force/.test(e.message),
  );
  assert.deepEqual((await readdir(dir)).includes('new'), false, 'nothing created');
});

test('checkReportPath refuses folders, files in the way and unwritable folders, naming the path', async (t) => {
  const isUsage = (pattern: RegExp) => (e: unknown) => e instanceof UsageError && pattern.test(e.message);
  await mkdir(join(dir, 'folder'), { recursive: true });
  await assert.rejects(checkReportPath(join(dir, 'folder')), isUsage(/folder.*is a folder/));
  await assert.rejects(checkReportPath(join(dir, 'folder') + '/'), isUsage(/names a folder/));
  await writeFile(join(dir, 'plain-file'), 'x');
  await assert.rejects(
    checkReportPath(join(dir, 'plain-file', 'sub', 'r.html')),
    isUsage(/plain-file is not a folder/),
  );
  await mkdir(join(dir, 'locked'));
  await chmod(join(dir, 'locked'), 0o555);
  let writable = true;
  try {
    await writeFile(join(dir, 'locked', 'probe'), 'x');
  } catch {
    writable = false;
  }
  if (writable) {
    t.diagnostic('running as root: folder permissions are not enforced, the unwritable case is not checked');
    return;
  }
  await assert.rejects(checkReportPath(join(dir, 'locked', 'r.html')), isUsage(/locked is not writable/));
});
