/**
 * Held-out KL(tuned ‖ base + adapter) of plain and calibrated extraction at each rank, on a
 * fine-tune built by test/model/finetune.py in `dir`: calibrated on calibration.txt, measured by
 * `verify` on heldout.txt (never the calibration text). Shared by the calibration tests.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { extractAdapter } from '../../src/extract/index.js';
import { loadSequences } from '../../src/model/input.js';
import { verifyAdapter } from '../../src/verify/index.js';

const HELD_OUT_RANKS = [2, 4, 8, 16];
/**
 * Calibrated KL at most this share of plain SVD's in every cell. Measured on the tiny fine-tunes
 * (bench/fidelity-sweep.ts): 0.86 and 0.87 at rank 2 (Mistral, Qwen3), 0.79 or less elsewhere.
 */
const HELD_OUT_MARGIN = 0.9;

export async function assertHeldOutGains(t: TestContext, dir: string, family: string): Promise<void> {
  const base = join(dir, family, 'base');
  const tuned = join(dir, family, 'tuned');
  const text = (name: string) =>
    loadSequences({ text: join(dir, name), tokenizerFrom: base, seqLen: 64, maxTokens: 1e9 }).then((s) => s.sequences);
  const [calibration, heldOut] = [await text('calibration.txt'), await text('heldout.txt')];
  const cells: string[] = [];
  for (const rank of HELD_OUT_RANKS) {
    const kl: number[] = [];
    for (const calibrate of [false, true]) {
      const out = join(dir, family, `heldout-r${rank}-${calibrate ? 'cal' : 'plain'}`);
      await extractAdapter(base, tuned, out, {
        policy: { rank },
        dtype: 'F32',
        calibration: calibrate ? { sequences: calibration } : undefined,
      });
      kl.push((await verifyAdapter(base, tuned, out, heldOut)).kl.adapter);
    }
    const [plain, cal] = kl as [number, number];
    cells.push(`rank ${rank}: ${plain.toPrecision(3)} → ${cal.toPrecision(3)}`);
    assert.ok(cal < HELD_OUT_MARGIN * plain, `${family} rank ${rank}: calibrated KL ${cal} vs plain ${plain}`);
  }
  t.diagnostic(`${family} held-out KL(tuned‖merged), plain → calibrated: ${cells.join('; ')}`);
}
