/** `extract --calibrate FILE`: the calibration input (text, or a .json file of token ids) and its knobs. */
import type { Argv } from 'yargs';
import {
  type CalibrationInputs,
  type CalibrationOptions,
  DEFAULT_CALIBRATION_INPUTS,
} from '../../extract/calibrate.js';
import { DEFAULT_DAMPING } from '../../extract/calibrated-factors.js';
import { DEFAULT_MAX_TOKENS, DEFAULT_SEQ_LEN, loadSequences } from '../../model/input.js';
import { parseCount } from './common.js';

export interface CalibrateArgs {
  calibrate?: string;
  'calibrate-inputs': CalibrationInputs;
  'calibrate-damping': number;
  'seq-len': number;
  'max-tokens': string;
}

export function calibrateOptions<T>(y: Argv<T>): Argv<T & CalibrateArgs> {
  return y
    .option('calibrate', {
      type: 'string',
      describe:
        "fit the adapter to the fine-tune's outputs, not its weights, on this text (tokenized with the model's tokenizer.json) or .json file of token-id arrays",
    })
    .option('calibrate-inputs', {
      choices: ['extracted', 'tuned'] as const,
      default: DEFAULT_CALIBRATION_INPUTS,
      describe:
        'inputs through the base with the earlier layers already extracted, each module correcting what they left (min ‖W_t·X_t − (W_b + B·A)·X‖), or through the fine-tune (min ‖(ΔW − B·A)·X‖)',
    })
    .option('calibrate-damping', {
      type: 'number',
      default: DEFAULT_DAMPING,
      describe: 'δ = this · mean(diag XᵀX) added to XᵀX',
    })
    .option('seq-len', { type: 'number', default: DEFAULT_SEQ_LEN, describe: 'calibration tokens per sequence' })
    .option('max-tokens', {
      type: 'string',
      default: String(DEFAULT_MAX_TOKENS),
      describe: 'calibration tokens in all (e.g. 2048, 8k)',
    }) as unknown as Argv<T & CalibrateArgs>;
}

/** The calibration tokens, or undefined without --calibrate. */
export async function calibrationFrom(args: CalibrateArgs, model: string): Promise<CalibrationOptions | undefined> {
  if (args.calibrate === undefined) return undefined;
  const json = args.calibrate.endsWith('.json');
  const { sequences } = await loadSequences({
    text: json ? undefined : args.calibrate,
    tokens: json ? args.calibrate : undefined,
    tokenizerFrom: model,
    seqLen: args['seq-len'],
    maxTokens: parseCount('max-tokens', args['max-tokens']),
  });
  return { sequences, inputs: args['calibrate-inputs'], damping: args['calibrate-damping'] };
}
