/** Argument helpers shared by several commands. */
import { UsageError } from '../../errors.js';
import type { DType } from '../../io/index.js';

/** Compile a user regex, or a UsageError naming the flag. */
export function parseRegex(flag: string, source: string | undefined): RegExp | undefined {
  if (source === undefined) return undefined;
  try {
    return new RegExp(source);
  } catch (err) {
    throw new UsageError(`--${flag}: not a valid regular expression: ${source} (${(err as Error).message})`);
  }
}

/** "20M" → 20e6, "1.5G" → 1.5e9, "4096" → 4096; UsageError otherwise. */
export function parseCount(flag: string, text: string | number): number {
  if (typeof text === 'number') {
    if (!(text > 0) || !Number.isFinite(text)) throw new UsageError(`--${flag} must be a positive number, got ${text}`);
    return Math.floor(text);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$/.exec(text);
  if (!m) throw new UsageError(`--${flag} must be a count such as 4096, 500k, 20M or 1.5G, got "${text}"`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  if (n <= 0) throw new UsageError(`--${flag} must be positive, got "${text}"`);
  return n;
}

/** A number in (0, 1] for energy/error flags. */
export function parseFraction(flag: string, v: number | undefined, { open = false } = {}): number | undefined {
  if (v === undefined) return undefined;
  if (!(v > 0 && (open ? v < 1 : v <= 1))) throw new UsageError(`--${flag} must be in (0, ${open ? '1)' : '1]'}, got ${v}`);
  return v;
}

/** `--dtype bf16|f16|f32` as the checkpoint dtype it names (undefined: keep the input's). */
export function dtypeFlag(flag: string | undefined): DType | undefined {
  if (flag === undefined) return undefined;
  const d = ({ bf16: 'BF16', f16: 'F16', f32: 'F32' } as const)[flag as 'bf16' | 'f16' | 'f32'];
  if (!d) throw new UsageError(`--dtype must be bf16, f16 or f32, got ${flag}`);
  return d;
}
