/**
 * `node --import tsx bench/fidelity-sweep.ts [FAMILY,...]`: held-out KL(tuned‖base+adapter) of plain
 * and calibrated extraction at ranks 2, 4, 8, 16 on real short fine-tunes of tiny models of each
 * family (built by test/model/finetune.py under the test Python), calibrated with inputs through the
 * extracted model (error-correcting, the default) and through the fine-tune. Prints a markdown table;
 * the last column is the model-level output error on the calibration inputs with extracted inputs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractAdapter } from '../src/extract/index.js';
import { loadSequences } from '../src/model/input.js';
import { CODE, PROSE } from '../src/train/texts.js';
import { verifyAdapter } from '../src/verify/index.js';
import { NO_PYTHON, runPython } from '../test/helpers/python.js';

const FAMILIES = (process.argv[2] ?? 'llama,mistral,qwen2,qwen3,gemma2,gemma3,phi3').split(',');
const RANKS = [2, 4, 8, 16];
if (NO_PYTHON) {
  process.stderr.write(`${NO_PYTHON}\n`);
  process.exit(2);
}
const dir = await mkdtemp(join(tmpdir(), 'deltarank-sweep-'));
try {
  await writeFile(join(dir, 'texts.json'), JSON.stringify({ prose: PROSE, code: CODE }));
  await runPython(fileURLToPath(new URL('../test/model/finetune.py', import.meta.url)), [
    join(dir, 'texts.json'),
    dir,
    FAMILIES.join(','),
    '4',
    '64',
  ]);
  const rows: string[] = [
    '| family | rank | KL base | KL plain SVD | KL calibrated (extracted inputs) | calibrated ÷ plain | KL calibrated (tuned inputs) | output error plain → calibrated |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const family of FAMILIES) {
    const base = join(dir, family, 'base');
    const tuned = join(dir, family, 'tuned');
    const held = (
      await loadSequences({ text: join(dir, 'heldout.txt'), tokenizerFrom: base, seqLen: 64, maxTokens: 1e9 })
    ).sequences;
    const calib = (
      await loadSequences({ text: join(dir, 'calibration.txt'), tokenizerFrom: base, seqLen: 64, maxTokens: 1e9 })
    ).sequences;
    for (const rank of RANKS) {
      const kl: number[] = [];
      let klBase = 0;
      let errors = '';
      for (const inputs of [undefined, 'extracted', 'tuned'] as const) {
        const out = join(dir, family, `r${rank}-${inputs ?? 'plain'}`);
        const ex = await extractAdapter(base, tuned, out, {
          policy: { rank },
          dtype: 'F32',
          calibration: inputs ? { sequences: calib, inputs } : undefined,
        });
        if (inputs === 'extracted')
          errors = `${ex.calibration!.svdOutputError.toFixed(3)} → ${ex.calibration!.outputError.toFixed(3)}`;
        const v = await verifyAdapter(base, tuned, out, held);
        kl.push(v.kl.adapter);
        klBase = v.kl.base;
      }
      const best = Math.min(...kl);
      const cell = (x: number) => (x === best ? `**${x.toPrecision(3)}**` : x.toPrecision(3));
      const [plain, extracted, tunedInputs] = kl.map(cell);
      const ratio = (kl[1]! / kl[0]!).toFixed(2);
      rows.push(
        `| ${family} | ${rank} | ${klBase.toFixed(3)} | ${plain} | ${extracted} | ${ratio} | ${tunedInputs} | ${errors} |`,
      );
      process.stderr.write(rows[rows.length - 1] + '\n');
    }
  }
  console.log(rows.join('\n'));
} finally {
  await rm(dir, { recursive: true, force: true });
}
