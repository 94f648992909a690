import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { commands } from '../../src/cli/commands/index.js';
import { errorLine, flagFor, OPTION_FLAGS, withFlags } from '../../src/cli/option-flags.js';
import { FormatError, UsageError } from '../../src/errors.js';
import { type SynthOptions, writeSynthPair } from '../../src/synth/index.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

describe('library options → CLI flags', () => {
  it('maps backticked options that have a flag, and nothing else', () => {
    assert.equal(
      withFlags('`maxRank` must be a positive integer, got 0'),
      '--max-rank must be a positive integer, got 0',
    );
    assert.equal(withFlags('choose one of `rank`, `budgetRelative`'), 'choose one of --rank, --budget-relative');
    assert.equal(
      withFlags('`thresholds` must be in (0, 1]'),
      '`thresholds` must be in (0, 1]',
      'no flag sets it: kept as the API spells it',
    );
    assert.equal(withFlags('module `q_proj` and `toString`'), 'module `q_proj` and `toString`');
    assert.equal(flagFor('constructor'), undefined);
  });

  it('errorLine speaks flags for deltarank errors and keeps the fields', () => {
    const err = new UsageError('`topK` must be a positive integer, got -1', { option: 'topK' });
    assert.equal(err.option, 'topK');
    assert.equal(errorLine(err), '--top-k must be a positive integer, got -1');
    const bad = new FormatError('model.safetensors: header too long', { file: 'model.safetensors', tensor: 'w' });
    assert.deepEqual([bad.file, bad.tensor, bad.option], ['model.safetensors', 'w', undefined]);
    assert.equal(errorLine(new Error('`rank` raw')), '`rank` raw', 'other errors pass through');
    assert.deepEqual(Object.keys(new UsageError('plain')), ['name'], 'no subject fields unless given');
  });

  it('every flag in OPTION_FLAGS is a flag some command declares', () => {
    // Each command's builder run on its own parser: what yargs itself was told, however it was declared.
    const declared = new Set<string>();
    for (const command of commands) {
      const parser = yargs([]);
      if (typeof command.builder === 'function') command.builder(parser);
      // getOptions is yargs' own record of declared options; its typings leave it out.
      const { key } = (parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions();
      for (const name of Object.keys(key)) declared.add(`--${name}`);
    }
    assert.ok(declared.size > 20, `found the commands' flags (${declared.size})`);
    for (const [option, flag] of Object.entries(OPTION_FLAGS))
      assert.ok(declared.has(flag), `${option} → ${flag}: no command declares ${flag}`);
  });

  it('synth names its options, not flags', async () => {
    for (const [opts, option] of [
      [{ shape: 'huge' }, 'shape'],
      [{ shape: 'tiny', dtype: 'I32' }, 'dtype'],
      [{ shape: 'tiny', seed: 0.5 }, 'seed'],
    ] as const) {
      await assert.rejects(writeSynthPair('never-written', opts as SynthOptions), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.option, option);
        assert.match(e.message, new RegExp(`^\`${option}\` `));
        assert.match(errorLine(e), new RegExp(`^--${option} `));
        return true;
      });
    }
  });

  it('the binary prints a policy error with the flag', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, 'extract', 'a', 'b', '--out', 'c', '--rank', '0'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^deltarank: --rank must be a positive integer, got "0" \(deltarank --help for usage\)\n$/);
  });
});
