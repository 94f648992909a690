/**
 * System errors in the user's words: the exit code, and one line naming the user's path, never
 * a hidden temporary of ours. (Root ignores permissions, so EACCES is built here, not provoked.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeError, exitCodeFor } from '../../src/cli/exit.js';
import { FormatError } from '../../src/errors.js';

const sysError = (code: string, fields: Record<string, string>) =>
  Object.assign(new Error(`${code}: raw message, ${fields['path'] ?? ''}`), { code, ...fields });

test('EACCES inside a temporary names the output it stands for', () => {
  const err = sysError('EACCES', {
    syscall: 'open',
    path: '/data/runs/.lora.tmp-4242-0a1b2c3d/adapter_model.safetensors',
  });
  assert.equal(exitCodeFor(err), 3);
  assert.equal(describeError(err), 'permission denied: /data/runs/lora; check its permissions or choose another path');
});

test('a rename into an output another run wrote names that output', () => {
  const err = sysError('ENOTEMPTY', { syscall: 'rename', path: 'runs/.lora.tmp-1-ffffffff', dest: 'runs/lora' });
  assert.equal(exitCodeFor(err), 3);
  assert.match(describeError(err), /^runs\/lora appeared while this run was writing it/);
});

test('a write to an open file (no path) is reported against the output being written', () => {
  const err = sysError('ENOSPC', { syscall: 'write' });
  assert.equal(
    describeError(err, 'runs/report.html'),
    'no space left on the device holding runs/report.html; free some space there or write elsewhere (nothing was kept)',
  );
  assert.equal(exitCodeFor(err), 3);
});

test('EISDIR, ENOTDIR and EROFS are exit 3 with a line of their own; our errors pass through; the unknown stays internal', () => {
  assert.match(
    describeError(sysError('EISDIR', { path: 'a/b.html' })),
    /^a\/b\.html is a folder where a file was expected/,
  );
  assert.match(describeError(sysError('ENOTDIR', { path: 'plain/lora' })), /^plain\/lora: part of this path is a file/);
  assert.match(
    describeError(sysError('EROFS', { path: '/mnt/ro/.x.tmp-9-00aa00aa' })),
    /^\/mnt\/ro\/x is on a read-only file system/,
  );
  for (const code of ['EISDIR', 'ENOTDIR', 'EROFS', 'ENOSPC', 'EEXIST'])
    assert.equal(exitCodeFor(sysError(code, {})), 3, code);
  const ours = new FormatError('model.safetensors: tensor "a" ends at byte 9 but the file has 8');
  assert.equal(describeError(ours), ours.message);
  assert.equal(exitCodeFor(new TypeError('x is not a function')), 1);
});
