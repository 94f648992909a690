import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseRanks } from '../../src/cli/commands/common.js';
import { runCli } from '../helpers/run-cli.js';

const root = await mkdtemp(join(tmpdir(), 'deltarank-train-cli-'));
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Run the CLI in-process and return what it printed on stdout. */
async function run(argv: string[]): Promise<string> {
  return (await runCli(argv)).stdout;
}

test('train --task mnist --json writes base/, full/, lora-r{R}/, metrics.json and prints metrics.json', async () => {
  const out = join(root, 'mnist');
  const doc = JSON.parse(
    await run(['train', '--task', 'mnist', '--out', out, '--epochs', '1', '--ranks', '2', '--seed', '3', '--json']),
  ) as {
    schemaVersion: number;
    tool: { name: string };
    task: string;
    backend: string;
    seed: number;
    runs: { name: string; final: { target: { metric: number } } }[];
  };
  assert.equal(doc.schemaVersion, 1);
  assert.equal(doc.tool.name, 'deltarank');
  assert.equal(doc.task, 'mnist');
  assert.equal(doc.seed, 3);
  assert.equal(doc.backend, 'wasm');
  assert.deepEqual(
    doc.runs.map((r) => r.name),
    ['base', 'full', 'lora-r2'],
  );
  assert.ok(
    doc.runs[1]!.final.target.metric > doc.runs[0]!.final.target.metric + 0.3,
    'one epoch of fine-tuning already gains',
  );
  assert.deepEqual((await readdir(out)).sort(), ['base', 'full', 'lora-r2', 'metrics.json']);
  assert.deepEqual((await readdir(join(out, 'lora-r2'))).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const written = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as { runs: unknown[] };
  assert.deepEqual(written.runs, doc.runs);

  await assert.rejects(run(['train', '--task', 'mnist', '--out', out, '--epochs', '1', '--ranks', '2', '--quiet']), {
    name: 'UsageError',
    message: /exists/,
  });
});

test('train refuses bad flags with usage errors', async () => {
  await assert.rejects(run(['train', '--task', 'cifar', '--out', join(root, 'x')]), { name: 'UsageError' });
  await assert.rejects(run(['train', '--task', 'mnist', '--out', join(root, 'x'), '--ranks', '2,a']), {
    name: 'UsageError',
    message: /--ranks/,
  });
  await assert.rejects(run(['train', '--task', 'mnist']), { name: 'UsageError' });
  assert.deepEqual(parseRanks('1, 2,16'), [1, 2, 16]);
  assert.throws(() => parseRanks('0'), /positive/);
  assert.throws(() => parseRanks(''), /positive/);
});

test('train --variants lora,dora and --dora --init gaussian name their runs; --variants with --dora is a usage error', async () => {
  const out = join(root, 'kinds');
  const doc = JSON.parse(
    await run([
      'train',
      '--task',
      'mnist',
      '--out',
      out,
      '--epochs',
      '1',
      '--ranks',
      '1',
      '--variants',
      'lora,dora',
      '--json',
    ]),
  ) as { runs: { name: string; useDora?: boolean }[] };
  assert.deepEqual(
    doc.runs.map((r) => r.name),
    ['base', 'full', 'lora-r1', 'dora-r1'],
  );
  const config = JSON.parse(await readFile(join(out, 'dora-r1', 'adapter_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(config['use_dora'], true);
  await assert.rejects(run(['train', '--task', 'mnist', '--out', join(root, 'y'), '--variants', 'lora', '--dora']), {
    name: 'UsageError',
    message: /--variants/,
  });
  await assert.rejects(run(['train', '--task', 'mnist', '--out', join(root, 'y'), '--init', 'loftq']), {
    name: 'UsageError',
    message: /init/,
  });
  await assert.rejects(run(['train', '--task', 'mnist', '--out', join(root, 'y'), '--dora', '--lora-bias']), {
    name: 'UsageError',
    message: /lora_bias/,
  });
});
