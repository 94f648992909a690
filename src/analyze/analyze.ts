/**
 * `analyze`: the spectrum of every 2-D ΔW of a fine-tune, streamed one tensor at a time.
 */
import { UsageError } from '../errors.js';
import { factoredSvd } from '../extract/factored.js';
import { isFloatDType, loraScale, openCheckpoint, readAdapter } from '../io/index.js';
import { TOOL } from '../version.js';
import { deltaScratch, readDelta, readStoredDelta, type Delta } from './delta.js';
import { nameFilter, pairTensors } from './pairing.js';
import { computeSpectrum, DEFAULT_REFINE_CAP_SECONDS, DEFAULT_THRESHOLDS, DEFAULT_TOP_K, relativeUpdate, summarize, tensorSpectrum } from './spectrum.js';
import { ANALYZE_SCHEMA_VERSION, type AnalyzeResult, type OtherTensor, type SkippedTensor, type TensorSpectrum } from './types.js';

export interface AnalyzeProgress {
  /** Tensors finished so far, of `total`. */
  index: number;
  total: number;
  /** The tensor just finished. */
  name: string;
  /** Bytes read from disk so far. */
  bytesRead: number;
}

export interface AnalyzeOptions {
  /** Most singular values per tensor on the first randomized pass (default 64). */
  topK?: number;
  /**
   * Refine each tensor until every threshold's rank is certified exact (a larger basis, or the
   * complete spectrum), within `refineCapSeconds` (default true).
   */
  refine?: boolean;
  /** Most estimated seconds one tensor's refinement may take (default 60; 0.5 where the rest looks like a noise floor). */
  refineCapSeconds?: number;
  /** Complete spectra for every tensor. */
  exact?: boolean;
  /** Only tensors whose name matches. */
  include?: RegExp;
  /** Leave out tensors whose name matches. */
  exclude?: RegExp;
  /** Energy thresholds for `rankAt` (default 0.5, 0.9, 0.95, 0.99). */
  thresholds?: number[];
  seed?: number;
  onProgress?: (p: AnalyzeProgress) => void;
}

interface Resolved {
  topK: number;
  exact: boolean;
  thresholds: number[];
  seed: number;
  refine: boolean;
  refineCapSeconds: number;
}

function resolve(opts: AnalyzeOptions): Resolved {
  const topK = opts.topK ?? DEFAULT_TOP_K;
  if (!Number.isInteger(topK) || topK < 1) throw new UsageError(`--top-k must be a positive integer, got ${topK}`);
  const thresholds = opts.thresholds ?? [...DEFAULT_THRESHOLDS];
  for (const t of thresholds) if (!(t > 0 && t <= 1)) throw new UsageError(`energy thresholds must be in (0, 1], got ${t}`);
  const refineCapSeconds = opts.refineCapSeconds ?? DEFAULT_REFINE_CAP_SECONDS;
  if (!(refineCapSeconds >= 0)) throw new UsageError(`the refinement cap must be a non-negative number of seconds, got ${refineCapSeconds}`);
  return { topK, exact: opts.exact ?? false, thresholds, seed: opts.seed ?? 0, refine: opts.refine ?? true, refineCapSeconds };
}

/**
 * Analyze the fine-tune `tuned` of `base` (each a .safetensors file, a sharded index JSON, or a folder).
 * Peak memory: about two f32 copies of the largest tensor plus the SVD workspace.
 * @example const result = await analyzeCheckpoints('llama/base', 'llama/tuned', { topK: 64 });
 */
export async function analyzeCheckpoints(basePath: string, tunedPath: string, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const o = resolve(opts);
  const start = performance.now();
  const base = await openCheckpoint(basePath);
  try {
    const tuned = await openCheckpoint(tunedPath);
    try {
      const { matrices, others, skipped } = pairTensors(base.tensors, tuned.tensors, opts);
      const total = matrices.length + others.length;
      let done = 0;
      let bytesRead = 0;
      const tick = (name: string, bytes: number) => {
        bytesRead += bytes;
        opts.onProgress?.({ index: ++done, total, name, bytesRead });
      };
      const tensors: TensorSpectrum[] = [];
      const scratch = deltaScratch([...matrices, ...others]);
      for (const pair of matrices) {
        const d = await readDelta(base, tuned, pair, scratch);
        tensors.push(await spectrumEntry(pair.name, pair.tuned.shape, pair.tuned.dtype, d, o));
        tick(pair.name, d.bytesRead);
      }
      const otherEntries: OtherTensor[] = [];
      for (const pair of others) {
        const d = await readDelta(base, tuned, pair, scratch);
        const deltaNorm = Math.sqrt(d.frobSquared);
        otherEntries.push({ name: pair.name, shape: pair.tuned.shape, deltaNorm, relativeUpdate: relativeUpdate(deltaNorm, d.baseNorm) });
        tick(pair.name, d.bytesRead);
      }
      return document({ base: basePath, tuned: tunedPath }, o, tensors, otherEntries, skipped, start);
    } finally {
      await tuned.close();
    }
  } finally {
    await base.close();
  }
}

/**
 * Analyze a checkpoint whose tensors already hold ΔW (`--delta`). No base is read, so
 * `baseNorm` and `relativeUpdate` are null.
 */
export async function analyzeDelta(deltaPath: string, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const o = resolve(opts);
  const start = performance.now();
  const ck = await openCheckpoint(deltaPath);
  try {
    const keep = nameFilter(opts);
    const chosen = ck.tensors.filter((t) => keep(t.name));
    const tensors: TensorSpectrum[] = [];
    const others: OtherTensor[] = [];
    const skipped: SkippedTensor[] = [];
    let bytesRead = 0;
    let done = 0;
    for (const t of chosen) {
      if (!isFloatDType(t.dtype)) {
        skipped.push({ name: t.name, reason: `not a float tensor (${t.dtype})` });
      } else {
        const d = await readStoredDelta(ck, t.name);
        bytesRead += d.bytesRead;
        if (t.shape.length === 2 && t.shape[0]! > 1 && t.shape[1]! > 1) tensors.push(await spectrumEntry(t.name, t.shape, t.dtype, d, o));
        else others.push({ name: t.name, shape: t.shape, deltaNorm: Math.sqrt(d.frobSquared), relativeUpdate: null });
      }
      opts.onProgress?.({ index: ++done, total: chosen.length, name: t.name, bytesRead });
    }
    return document({ base: null, tuned: null, delta: deltaPath }, o, tensors, others, skipped, start);
  } finally {
    await ck.close();
  }
}

/**
 * Analyze a PEFT LoRA adapter: the spectrum of s·B·A of every module, from the factors
 * (no [out, in] product is formed). Spectra are complete: past the adapter's rank
 * every singular value is exactly zero. Replacement weights (`modules_to_save`) are listed under `skipped`.
 */
export async function analyzeAdapter(adapterDir: string, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const o = resolve(opts);
  const start = performance.now();
  const adapter = await readAdapter(adapterDir);
  const useRslora = adapter.config['use_rslora'] === true;
  const keep = nameFilter(opts);
  const tensors: TensorSpectrum[] = [];
  const modules = adapter.modules.filter((m) => keep(m.module));
  let done = 0;
  for (const m of modules) {
    const t0 = performance.now();
    const scale = loraScale(m, useRslora);
    const r = m.rank;
    // Embedding adapters hold A [r, num_embeddings], B [dim, r] with ΔW = (B·A)ᵀ: the same singular values.
    const { s } = factoredSvd({ rows: m.outFeatures, cols: r, data: m.b }, { rows: r, cols: m.inFeatures, data: m.a }, scale);
    let frob = 0;
    for (const v of s) frob += v * v;
    const shape = m.kind === 'embedding' ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
    const summary = summarize(s, frob, true, 'factored', o.thresholds);
    tensors.push(tensorSpectrum(`${m.module}.weight`, shape, 'F32', null, frob, summary, t0));
    opts.onProgress?.({ index: ++done, total: modules.length, name: m.module, bytesRead: 0 });
  }
  const skipped = adapter.fullWeights.map((w) => ({ name: w.name, reason: 'full replacement weight (modules_to_save), not a LoRA product' }));
  return document({ base: null, tuned: null, adapter: adapterDir }, o, tensors, [], skipped, start);
}

async function spectrumEntry(name: string, shape: number[], dtype: string, d: Delta, o: Resolved): Promise<TensorSpectrum> {
  const t0 = performance.now();
  const summary = await computeSpectrum(d.delta, d.frobSquared, o);
  return tensorSpectrum(name, shape, dtype, d.baseNorm, d.frobSquared, summary, t0);
}

function document(
  sources: { base: string | null; tuned: string | null; delta?: string; adapter?: string },
  o: Resolved,
  tensors: TensorSpectrum[],
  others: OtherTensor[],
  skipped: SkippedTensor[],
  start: number,
): AnalyzeResult {
  return {
    schemaVersion: ANALYZE_SCHEMA_VERSION,
    tool: TOOL,
    ...sources,
    thresholds: o.thresholds,
    refineCapSeconds: o.refine ? o.refineCapSeconds : null,
    tensors,
    others,
    skipped,
    seconds: (performance.now() - start) / 1000,
  };
}
