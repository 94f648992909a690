/**
 * Token sequences for `verify` and `extract --calibrate`: text tokenized with the model's own
 * tokenizer.json, or token ids given as JSON, cut into sequences of a set length up to a token
 * budget. The same function serves both, so calibration and evaluation see tokens alike.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, UsageError } from '../errors.js';
import { modelFolder } from './config.js';

/** Tokens per sequence unless told: long enough for attention to matter, short enough that T² softmax stays cheap. */
export const DEFAULT_SEQ_LEN = 256;
/** Tokens in all unless told: a few thousand give the KL mean a standard error of a few percent. */
export const DEFAULT_MAX_TOKENS = 2048;

export interface TokenInput {
  /** A UTF-8 text file, tokenized with `tokenizerFrom`'s tokenizer.json. */
  text?: string;
  /** A JSON file: an array of arrays of token ids. */
  tokens?: string;
  /** The model folder (or checkpoint path) whose tokenizer.json reads `text`. */
  tokenizerFrom: string;
  seqLen?: number;
  maxTokens?: number;
}

export interface TokenSequences {
  sequences: number[][];
  tokens: number;
  /** Where they came from, for the report. */
  source: string;
  /** Tokens of the input left unused by the budget. */
  dropped: number;
}

/**
 * Load and cut the input: text is encoded whole (no special tokens) then cut into pieces of
 * seqLen − (tokens the tokenizer adds at a start, such as BOS), each given that prefix back;
 * token arrays are cut into pieces of at most seqLen. Stops at maxTokens. UsageError for
 * neither or both inputs; FormatError for a malformed token file or a missing tokenizer.json.
 * @example const { sequences } = await loadSequences({ text: 'held-out.txt', tokenizerFrom: 'llama-base/' });
 */
export async function loadSequences(input: TokenInput): Promise<TokenSequences> {
  const seqLen = input.seqLen ?? DEFAULT_SEQ_LEN;
  const maxTokens = input.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new UsageError(`--seq-len must be an integer ≥ 2, got ${seqLen}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 2)
    throw new UsageError(`--max-tokens must be an integer ≥ 2, got ${maxTokens}`);
  if ((input.text === undefined) === (input.tokens === undefined))
    throw new UsageError('give exactly one of --text FILE and --tokens FILE');
  let pieces: number[][];
  let source: string;
  if (input.tokens !== undefined) {
    pieces = await readTokenFile(input.tokens);
    source = input.tokens;
  } else {
    const { ids, prefix } = await tokenizeText(input.text!, input.tokenizerFrom);
    const body = seqLen - prefix.length;
    if (body < 1)
      throw new UsageError(`--seq-len ${seqLen} leaves no room after the ${prefix.length} tokens the tokenizer adds`);
    pieces = [];
    for (let i = 0; i < ids.length; i += body) pieces.push([...prefix, ...ids.slice(i, i + body)]);
    source = input.text!;
  }
  const sequences: number[][] = [];
  let tokens = 0;
  let total = 0;
  for (const piece of pieces) {
    for (let i = 0; i < piece.length; i += seqLen) {
      const s = piece.slice(i, i + seqLen);
      total += s.length;
      if (tokens >= maxTokens || s.length < 2) continue;
      const take = s.slice(0, maxTokens - tokens);
      if (take.length < 2) continue;
      sequences.push(take);
      tokens += take.length;
    }
  }
  if (sequences.length === 0) throw new UsageError(`${source}: no sequence of two tokens or more`);
  return { sequences, tokens, source, dropped: total - tokens };
}

async function readTokenFile(file: string): Promise<number[][]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw err;
    throw new FormatError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!Array.isArray(json) || !json.every((s) => Array.isArray(s) && s.every((t) => Number.isInteger(t) && t >= 0))) {
    throw new FormatError(
      `${file}: expected a JSON array of arrays of token ids, such as [[1, 15043, 3186], [1, 450]]`,
    );
  }
  return json as number[][];
}

/** Encode a text file with the tokenizer.json (and tokenizer_config.json when present) of a model folder. */
export async function tokenizeText(file: string, modelPath: string): Promise<{ ids: number[]; prefix: number[] }> {
  const folder = await modelFolder(modelPath);
  let tokenizerJson: object;
  try {
    tokenizerJson = JSON.parse(await readFile(join(folder, 'tokenizer.json'), 'utf8')) as object;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FormatError(`${folder}: no tokenizer.json to read --text with (give --tokens FILE instead)`, {
        cause: err,
      });
    throw new FormatError(`${join(folder, 'tokenizer.json')}: not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  let config: object = {};
  try {
    config = JSON.parse(await readFile(join(folder, 'tokenizer_config.json'), 'utf8')) as object;
  } catch {
    // optional: the tokenizer's own file carries what encoding needs
  }
  // Loaded here only: nothing else pays for the tokenizer.
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const tokenizer = new Tokenizer(tokenizerJson, config);
  const text = await readFile(file, 'utf8');
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const prefix = tokenizer.encode('', { add_special_tokens: true }).ids;
  return { ids, prefix };
}
