/** The token input shared by `verify` and `extract --calibrate`: --text or --tokens, cut by --seq-len up to --max-tokens. */
import type { Argv } from 'yargs';
import { DEFAULT_MAX_TOKENS, DEFAULT_SEQ_LEN } from '../../model/input.js';
import { parseCount } from './common.js';

export interface TokenInputArgs {
  text?: string;
  tokens?: string;
  'seq-len': number;
  'max-tokens': string;
}

/** Add the four flags; `what` says what the tokens are for in the help text. */
export function tokenInputOptions<T>(y: Argv<T>, what: string): Argv<T & TokenInputArgs> {
  return y
    .option('text', {
      type: 'string',
      describe: `${what}: a UTF-8 text file, tokenized with the model's tokenizer.json`,
    })
    .option('tokens', { type: 'string', describe: `${what}: a JSON file of token-id arrays, [[1, 15043, …], …]` })
    .option('seq-len', {
      type: 'number',
      default: DEFAULT_SEQ_LEN,
      describe: 'tokens per sequence (each its own causal context)',
    })
    .option('max-tokens', {
      type: 'string',
      default: String(DEFAULT_MAX_TOKENS),
      describe: 'tokens in all (e.g. 2048, 8k)',
    }) as unknown as Argv<T & TokenInputArgs>;
}

/** The flags as loadSequences options. */
export function tokenInput(args: TokenInputArgs, tokenizerFrom: string) {
  return {
    text: args.text,
    tokens: args.tokens,
    tokenizerFrom,
    seqLen: args['seq-len'],
    maxTokens: parseCount('max-tokens', args['max-tokens']),
  };
}
