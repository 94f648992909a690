import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ShapeError, UsageError } from '../../src/errors.js';
import { writeDirAtomically } from '../../src/io/atomic.js';
import { writeCheckpoint, writeSafetensors } from '../../src/io/safetensors-writer.js';
import { listing, scratch } from './helpers.js';

const spec = (name: string) => ({ name, dtype: 'F32' as const, shape: [4] });

test('a source that throws midway leaves neither the final file nor a temporary', async () => {
  const dir = await scratch();
  await assert.rejects(
    writeSafetensors(join(dir, 'model.safetensors'), [spec('a'), spec('b')], (_s, i) => {
      if (i === 1) throw new Error('source failed');
      return new Float32Array(4);
    }),
    /source failed/,
  );
  assert.deepEqual(await listing(dir), []);
});

test('a source giving the wrong length fails with ShapeError and loses nothing already there', async () => {
  const dir = await scratch();
  const file = join(dir, 'model.safetensors');
  await writeSafetensors(file, [spec('a')], () => new Float32Array([1, 2, 3, 4]));
  const before = await readFile(file);
  await assert.rejects(
    writeSafetensors(file, [spec('a')], () => new Float32Array(3)),
    (err: unknown) => err instanceof ShapeError && /source gave 3 values but shape \[4\] holds 4/.test(err.message),
  );
  await assert.rejects(
    writeSafetensors(file, [spec('a')], () => new Uint8Array(15)),
    /source gave 15 bytes but F32 \[4\] takes 16/,
  );
  assert.deepEqual(await readFile(file), before);
  assert.deepEqual(await listing(dir), ['model.safetensors']);
});

test('a bad destination path fails and leaves nothing', async () => {
  const dir = await scratch();
  await writeFile(join(dir, 'plain-file'), 'x');
  await assert.rejects(
    writeSafetensors(join(dir, 'plain-file', 'model.safetensors'), [spec('a')], () => new Float32Array(4)),
    { code: 'ENOTDIR' },
  );
  await assert.rejects(
    writeSafetensors(join(dir, 'missing', 'model.safetensors'), [spec('a')], () => new Float32Array(4)),
    { code: 'ENOENT' },
  );
  assert.deepEqual(await listing(dir), ['plain-file']);
});

test('a sharded write that fails in its second shard leaves the first shard but no index and no temporary', async () => {
  const dir = join(await scratch(), 'ckpt');
  await assert.rejects(
    writeCheckpoint(
      dir,
      [spec('a'), spec('b'), spec('c')],
      (_s, i) => {
        if (i === 2) throw new Error('disk full');
        return new Float32Array(4);
      },
      { shards: 3 },
    ),
    /disk full/,
  );
  assert.deepEqual(await listing(dir), ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors']);
});

test('writeDirAtomically refuses an existing folder unless forced, replaces it when forced, and cleans up on failure', async () => {
  const root = await scratch();
  const out = join(root, 'out');
  assert.equal(
    await writeDirAtomically(out, {}, async (tmp) => {
      await writeFile(join(tmp, 'a.txt'), 'one');
      assert.deepEqual(await listing(root), [tmp.slice(root.length + 1)]);
      return 7;
    }),
    7,
  );
  await assert.rejects(
    writeDirAtomically(out, {}, async () => undefined),
    (err: unknown) => err instanceof UsageError && /out already exists; pass --force/.test(err.message),
  );
  await assert.rejects(
    writeDirAtomically(out, { force: true }, async (tmp) => {
      await writeFile(join(tmp, 'b.txt'), 'two');
      throw new Error('fill failed');
    }),
    /fill failed/,
  );
  assert.deepEqual(await listing(root), ['out']);
  assert.deepEqual(await listing(out), ['a.txt'], 'the old output is intact');
  await writeDirAtomically(out, { force: true }, async (tmp) => writeFile(join(tmp, 'b.txt'), 'two'));
  assert.deepEqual(await listing(root), ['out']);
  assert.deepEqual(await listing(out), ['b.txt']);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} during a write removes the temporaries`, async () => {
    const dir = await scratch();
    await mkdir(dir, { recursive: true });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'slow-writer.ts'), dir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('child did not start within 20 s'));
      }, 20_000).unref();
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    let during: string[];
    try {
      during = await listing(dir);
    } finally {
      child.kill(signal);
    }
    assert.equal(during.length, 2, `temporaries exist while writing: ${during}`);
    assert.ok(
      during.every((n) => n.startsWith('.') && n.includes('.tmp-')),
      `${during}`,
    );
    assert.equal(await exited, signal, 'the process still ends by the signal');
    assert.deepEqual(await listing(dir), []);
  });
}
