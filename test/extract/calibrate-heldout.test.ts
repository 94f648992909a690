/**
 * `extract --calibrate` on held-out text: lower KL(tuned ‖ merged) than plain SVD at ranks 2, 4,
 * 8 and 16 on the real short fine-tunes (Python-built) of the families calibrate.test.ts leaves
 * out; that file covers Llama, Qwen2 and Phi-3 the same way.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CODE, PROSE } from '../../src/train/texts.js';
import { NO_PYTHON, runPython } from '../helpers/python.js';
import { assertHeldOutGains } from './heldout-kl.js';

const SCRIPT = fileURLToPath(new URL('../model/finetune.py', import.meta.url));
const FAMILIES = ['mistral', 'qwen3', 'gemma2', 'gemma3'];
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltarank-heldout-'));
  await writeFile(join(dir, 'texts.json'), JSON.stringify({ prose: PROSE, code: CODE }));
  if (!NO_PYTHON) await runPython(SCRIPT, [join(dir, 'texts.json'), dir, FAMILIES.join(','), '4', '64']);
});
after(() => rm(dir, { recursive: true, force: true }));

for (const family of FAMILIES) {
  test(
    `${family}: calibrated extraction beats plain SVD on held-out KL at ranks 2, 4, 8, 16`,
    { skip: NO_PYTHON },
    (t) => assertHeldOutGains(t, dir, family),
  );
}
