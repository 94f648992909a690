import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSynthPair } from '../../src/synth/index.js';
import { runCli } from '../helpers/run-cli.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-cli-layouts-'));
  await writeSynthPair(join(dir, 'pair'), { shape: 'tiny', dtype: 'F32', seed: 3 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('extract: layout, biases and coverage from the command line', () => {
  it('--json carries the coverage and layout; the text output prints the model-level line', async () => {
    const args = ['extract', join(dir, 'pair', 'base'), join(dir, 'pair', 'tuned'), '--rank', '4', '--norms', 'skip'];
    const { stdout } = await runCli([...args, '--out', join(dir, 'a'), '--json', '--quiet']);
    const doc = JSON.parse(stdout);
    assert.deepEqual(doc.layout, {
      modelType: 'llama',
      family: 'decoder',
      taskType: 'CAUSAL_LM',
      tiedEmbeddings: false,
      fanInFanOut: false,
      biases: 'none',
      fusedExpertRank: null,
    });
    assert.ok(
      doc.coverage.leftOut.length > 0 &&
        doc.coverage.leftOut.every((l: { reason: string }) => /norm \(--norms skip/.test(l.reason)),
    );
    assert.ok(Math.abs(doc.coverage.reproduced + doc.coverage.truncated + doc.coverage.leftOutShare - 1) < 1e-9);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'a', 'extraction.json'), 'utf8')).coverage, doc.coverage);
    const text = await runCli([...args, '--out', join(dir, 'b')]);
    assert.match(
      text.stdout,
      /the adapter reproduces \d+\.\d\d % of Σ‖ΔW‖² over all [\d,]+ changed parameters \(truncation \d+\.\d\d %, not carried \d+\.\d\d %: model\./,
    );
  });

  it('--biases lora with --profile vllm is a usage error', async () => {
    await assert.rejects(
      runCli([
        'extract',
        join(dir, 'pair', 'base'),
        join(dir, 'pair', 'tuned'),
        '--out',
        join(dir, 'c'),
        '--rank',
        '2',
        '--profile',
        'vllm',
        '--biases',
        'lora',
      ]),
      /--profile vllm writes LoRA factors only/,
    );
  });
});
