/**
 * Shared bench inputs. The tinyllama pair (2 × 2.2 GB) lives in the OS temp folder and is
 * reused across areas and runs while its synth.json matches the parameters below.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNTH_GENERATOR_VERSION, type SynthManifest, writeSynthPair } from '../src/synth/index.js';

/** The bench pair's parameters: TinyLlama-1.1B dimensions, bf16, 3 shards a side. */
export const TINYLLAMA_PAIR = { shape: 'tinyllama', dtype: 'BF16', shards: 3, seed: 0 } as const;

/** Where the pair lives: `<tmp>/deltarank-bench/tinyllama` with base/, tuned/, synth.json. */
export function tinyllamaPairDir(): string {
  return join(tmpdir(), 'deltarank-bench', 'tinyllama');
}

/** Whether `dir` holds a complete pair written with TINYLLAMA_PAIR by this generator version (writes are atomic, so synth.json implies the rest). */
export async function hasTinyllamaPair(dir = tinyllamaPairDir()): Promise<boolean> {
  try {
    const m = JSON.parse(await readFile(join(dir, 'synth.json'), 'utf8')) as SynthManifest;
    return (
      m.generatorVersion === SYNTH_GENERATOR_VERSION &&
      m.shape === TINYLLAMA_PAIR.shape &&
      m.dtype === TINYLLAMA_PAIR.dtype &&
      m.shards === TINYLLAMA_PAIR.shards &&
      m.seed === TINYLLAMA_PAIR.seed
    );
  } catch {
    return false;
  }
}

/** The tinyllama pair's folder, writing it first (a few minutes) when missing or stale. */
export async function ensureTinyllamaPair(): Promise<string> {
  const dir = tinyllamaPairDir();
  if (!(await hasTinyllamaPair(dir))) await writeSynthPair(dir, { ...TINYLLAMA_PAIR, force: true });
  return dir;
}

/** The high-rank bench pair: synth --shape small --high-rank (30 MB a side), in `<tmp>/deltarank-bench/high-rank`. */
export const HIGH_RANK_PAIR = { shape: 'small', dtype: 'BF16', shards: 1, seed: 0, highRank: true } as const;

/** The high-rank pair's folder, writing it first (seconds) when missing or stale. */
export async function ensureHighRankPair(): Promise<string> {
  const dir = join(tmpdir(), 'deltarank-bench', 'high-rank');
  try {
    const m = JSON.parse(await readFile(join(dir, 'synth.json'), 'utf8')) as SynthManifest;
    if (
      m.generatorVersion === SYNTH_GENERATOR_VERSION &&
      m.shape === HIGH_RANK_PAIR.shape &&
      m.highRank &&
      m.seed === HIGH_RANK_PAIR.seed
    )
      return dir;
  } catch {
    // not there yet
  }
  await writeSynthPair(dir, { ...HIGH_RANK_PAIR, force: true });
  return dir;
}
