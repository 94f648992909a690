/**
 * `analyze`: the spectrum of every 2-D ΔW of a fine-tune, streamed one tensor at a time.
 */
import { ShapeError, UsageError } from '../errors.js';
import {
  checkpointLayout,
  isFloatDType,
  type LoraModule,
  loraScale,
  openCheckpoint,
  readAdapter,
  readModelConfig,
  resolveParamLora,
} from '../io/index.js';
import { factoredSvd } from '../svd/index.js';
import { TOOL } from '../version.js';
import { type Delta, readDeltas, readStoredDelta } from './delta.js';
import { type FusedParam, fusedParams, shapeLookup } from './expert-params.js';
import { applyModule, expertModule, storedTransposed, weightLayout } from './lora-apply.js';
import { nameFilter, pairTensors } from './pairing.js';
import { resizedVocabulary, tiedReplacements } from './replacements.js';
import {
  computeSpectrum,
  DEFAULT_REFINE_CAP_SECONDS,
  DEFAULT_THRESHOLDS,
  DEFAULT_TOP_K,
  relativeUpdate,
  type SpectrumSummary,
  straightToBidiagonal,
  summarize,
  tensorSpectrum,
} from './spectrum.js';
import { computeSpectrumHere, defaultJobs, submitSpectrum } from './spectrum-pool.js';
import {
  ANALYZE_SCHEMA_VERSION,
  type AnalyzeResult,
  type OtherTensor,
  type SkippedTensor,
  type TensorSpectrum,
} from './types.js';

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
  /**
   * Most ΔW whose complete spectra (the bidiagonal route, taken at once) are computed at once, each
   * on a worker thread (default: the cores, at most 4). Memory grows with it: each holds its own
   * SVD workspace.
   */
  jobs?: number;
  onProgress?: (p: AnalyzeProgress) => void;
}

interface Resolved {
  topK: number;
  exact: boolean;
  thresholds: number[];
  seed: number;
  refine: boolean;
  refineCapSeconds: number;
  jobs: number;
}

function resolve(opts: AnalyzeOptions): Resolved {
  const topK = opts.topK ?? DEFAULT_TOP_K;
  if (!Number.isInteger(topK) || topK < 1) throw new UsageError(`--top-k must be a positive integer, got ${topK}`);
  const thresholds = opts.thresholds ?? [...DEFAULT_THRESHOLDS];
  for (const t of thresholds)
    if (!(t > 0 && t <= 1)) throw new UsageError(`energy thresholds must be in (0, 1], got ${t}`);
  const refineCapSeconds = opts.refineCapSeconds ?? DEFAULT_REFINE_CAP_SECONDS;
  if (!(refineCapSeconds >= 0))
    throw new UsageError(`the refinement cap must be a non-negative number of seconds, got ${refineCapSeconds}`);
  const jobs = opts.jobs ?? defaultJobs();
  if (!Number.isInteger(jobs) || jobs < 1)
    throw new UsageError(`\`jobs\` must be a positive integer, got ${jobs}`, { option: 'jobs' });
  return {
    topK,
    exact: opts.exact ?? false,
    thresholds,
    seed: opts.seed ?? 0,
    refine: opts.refine ?? true,
    refineCapSeconds,
    jobs,
  };
}

/**
 * Analyze the fine-tune `tuned` of `base` (each a .safetensors file, a sharded index JSON, or a folder).
 * Peak memory: about two f32 copies of the largest tensor, plus per job (`jobs`) one more and its SVD workspace.
 * @example const result = await analyzeCheckpoints('llama/base', 'llama/tuned', { topK: 64 });
 */
export async function analyzeCheckpoints(
  basePath: string,
  tunedPath: string,
  opts: AnalyzeOptions = {},
): Promise<AnalyzeResult> {
  const o = resolve(opts);
  const start = performance.now();
  const base = await openCheckpoint(basePath);
  try {
    const tuned = await openCheckpoint(tunedPath);
    try {
      // The table's view of the tuned side: buffers some checkpoints store (GPT-2's attention mask) are not weights.
      const layout = await checkpointLayout(tunedPath, tuned.tensors);
      const { matrices, others, skipped } = pairTensors(base.tensors, tuned.tensors, { ...opts, layout });
      const total = matrices.length + others.length;
      let done = 0;
      let bytesRead = 0;
      const tick = (name: string, bytes: number) => {
        bytesRead += bytes;
        opts.onProgress?.({ index: ++done, total, name, bytesRead });
      };
      const spectra = new SpectraInFlight(o);
      const otherEntries: OtherTensor[] = [];
      const isMatrix = new Set(matrices);
      for await (const [pair, d] of readDeltas(base, tuned, [...matrices, ...others])) {
        if (isMatrix.has(pair)) {
          await spectra.add(pair.name, pair.tuned.shape, pair.tuned.dtype, d, () => tick(pair.name, d.bytesRead));
          continue;
        }
        const deltaNorm = Math.sqrt(d.frobSquared);
        otherEntries.push({
          name: pair.name,
          shape: pair.tuned.shape,
          deltaNorm,
          relativeUpdate: relativeUpdate(deltaNorm, d.baseNorm),
        });
        tick(pair.name, d.bytesRead);
      }
      return document({ base: basePath, tuned: tunedPath }, o, await spectra.all(), otherEntries, skipped, start);
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
    const spectra = new SpectraInFlight(o);
    const others: OtherTensor[] = [];
    const skipped: SkippedTensor[] = [];
    let bytesRead = 0;
    let done = 0;
    const tick = (name: string) => opts.onProgress?.({ index: ++done, total: chosen.length, name, bytesRead });
    for (const t of chosen) {
      if (!isFloatDType(t.dtype)) {
        skipped.push({ name: t.name, reason: `not a float tensor (${t.dtype})` });
      } else {
        const d = await readStoredDelta(ck, t.name);
        bytesRead += d.bytesRead;
        if (t.shape.length === 2 && t.shape[0]! > 1 && t.shape[1]! > 1) {
          await spectra.add(t.name, t.shape, t.dtype, d, () => tick(t.name));
          continue;
        }
        others.push({ name: t.name, shape: t.shape, deltaNorm: Math.sqrt(d.frobSquared), relativeUpdate: null });
      }
      tick(t.name);
    }
    return document({ base: null, tuned: null, delta: deltaPath }, o, await spectra.all(), others, skipped, start);
  } finally {
    await ck.close();
  }
}

/**
 * Analyze a PEFT LoRA adapter: the spectrum of the change each module makes. For plain LoRA that is
 * s·B·A, from the factors (no [out, in] product is formed; spectra are complete, every singular
 * value past the rank being exactly zero). With `basePath` (the adapter's base checkpoint) each
 * entry also gets ‖W‖ and the relative update, replacement weights (modules_to_save) their ΔW,
 * and a module whose change is not B·A alone — DoRA's rescaled rows, or a LoRA on a weight the
 * adapter also saves whole — the spectrum of W' − W formed densely, W' as `merge` writes it.
 * A DoRA adapter without `basePath` is refused (UsageError): its change depends on W.
 * A LoRA on a 3-D expert weight (target_parameters) gets one entry per expert, `<name>[e]`.
 * lora_B.bias changes are listed under `others`. Without a base, replacement weights are listed under `skipped`.
 * @example const r = await analyzeAdapter('dora-lora/', { basePath: 'llama/' });
 */
export async function analyzeAdapter(
  adapterDir: string,
  opts: AnalyzeOptions & { basePath?: string } = {},
): Promise<AnalyzeResult> {
  const o = resolve(opts);
  const start = performance.now();
  const adapter = await readAdapter(adapterDir);
  const { useRslora, fanInFanOut, useDora } = adapter.settings;
  if (useDora && !opts.basePath) {
    throw new UsageError(
      `${adapterDir}: a DoRA adapter (use_dora) rescales every output row to its magnitude over ‖W + s·B·A‖, so the change it makes depends on the base weights: give the base, as in \`analyze BASE --adapter ${adapterDir}\``,
    );
  }
  const keep = nameFilter(opts);
  const base = opts.basePath ? await openCheckpoint(opts.basePath) : null;
  try {
    const full = new Map(adapter.fullWeights.map((w) => [w.name, w]));
    const table = base ? await checkpointLayout(opts.basePath!, base.tensors) : null;
    const tensors: TensorSpectrum[] = [];
    const others: OtherTensor[] = [];
    const skipped: SkippedTensor[] = [];
    const tiedTo = new Map(adapter.tied.map((t) => [t.module, t.source]));
    for (const [module, source] of tiedTo)
      if (keep(`${module}.weight`))
        skipped.push({
          name: `${module}.weight`,
          reason: `tied to ${source}.weight (ensure_weight_tying): the same change, listed there`,
        });
    const modules = adapter.modules.filter((m) => keep(`${m.module}.weight`) && !tiedTo.has(m.module));
    // Replacements that are not one base tensor each: a tied head's copy (the embedding's twin), a resized vocabulary.
    let vocab: ReturnType<typeof resizedVocabulary> = null;
    if (base) {
      for (const name of tiedReplacements(
        full,
        base,
        await readModelConfig(opts.basePath!),
        adapter.settings.ensureWeightTying,
        opts.basePath!,
      )) {
        full.delete(name);
        if (keep(name))
          skipped.push({
            name,
            reason: 'tied to the token embeddings the base stores in its place: the same tensor, listed there',
          });
      }
      vocab = resizedVocabulary(
        full,
        base,
        table!,
        new Map(adapter.modules.map((m) => [`${m.module}.weight`, m])),
        opts.basePath!,
      );
    }
    const total = modules.length + adapter.paramModules.length + (base ? adapter.fullWeights.length : 0);
    let done = 0;
    let bytesRead = 0;
    const readBase = async (name: string) => {
      const w = await base!.readFloat32(name);
      bytesRead += base!.info(name).byteLength;
      return w;
    };
    for (const m of modules) {
      const t0 = performance.now();
      const name = `${m.module}.weight`;
      const scale = loraScale(m, useRslora);
      let shape = m.kind === 'embedding' || fanInFanOut ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
      let baseNorm: number | null = null;
      if (base) {
        if (!base.has(name))
          throw new ShapeError(
            `adapter module ${m.module} has no weight "${name}" in ${opts.basePath}: adapter and base are of different models`,
          );
        const info = base.info(name);
        const layout = weightLayout(m, info.shape, storedTransposed(table, name, fanInFanOut));
        if (typeof layout === 'string') {
          const want = m.kind === 'embedding' ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
          throw new ShapeError(
            `adapter module ${m.module} is [${want.join(', ')}] but ${name} in ${opts.basePath} is [${info.shape.join(', ')}]`,
          );
        }
        shape = layout.shape;
        const w = await readBase(name);
        baseNorm = Math.sqrt(sumSquares(w));
        const replacement = full.get(name);
        if (m.magnitude || replacement) {
          // W' − W formed densely: DoRA's change is not of rank r, and a saved weight adds its own.
          const merged = await applyModule(replacement ? replacement.data.slice() : w.slice(), m, scale, layout);
          for (let i = 0; i < merged.length; i++) merged[i]! -= w[i]!;
          const frob = sumSquares(merged);
          const summary = await computeSpectrum({ rows: shape[0]!, cols: shape[1]!, data: merged }, frob, o);
          tensors.push(tensorSpectrum(name, shape, info.dtype, baseNorm, frob, summary, t0));
          full.delete(name);
          addBias(m, scale, others);
          opts.onProgress?.({ index: ++done, total, name, bytesRead });
          continue;
        }
      }
      // Embedding adapters hold A [r, num_embeddings], B [dim, r] with ΔW = (B·A)ᵀ, and Conv1D stores ΔW = (s·B·A)ᵀ: the same singular values.
      const { s } = factoredSvd(
        { rows: m.outFeatures, cols: m.rank, data: m.b },
        { rows: m.rank, cols: m.inFeatures, data: m.a },
        scale,
      );
      let frob = 0;
      for (const v of s) frob += v * v;
      tensors.push(
        tensorSpectrum(name, shape, 'F32', baseNorm, frob, summarize(s, frob, true, 'factored', o.thresholds), t0),
      );
      addBias(m, scale, others);
      opts.onProgress?.({ index: ++done, total, name, bytesRead });
    }
    const fused = table && adapter.paramModules.length > 0 ? fusedParams(table) : new Map<string, FusedParam>();
    for (const p of adapter.paramModules) {
      const r = resolveParamLora(p, adapter.settings, base ? shapeLookup(base, fused) : undefined);
      const shape = r.transposed ? [p.inFeatures, p.outFeatures] : [p.outFeatures, p.inFeatures];
      let baseNorms: number[] | null = null;
      if (base && base.has(r.name)) baseNorms = expertNorms(await readBase(r.name), r.experts);
      else if (base) {
        const sq = new Array<number>(r.experts).fill(0);
        for (const part of fused.get(r.name)!.parts) sq[part.expert]! += sumSquares(await readBase(part.tensor));
        baseNorms = sq.map(Math.sqrt);
      }
      for (let e = 0; e < r.experts; e++) {
        const t0 = performance.now();
        const m = expertModule(p, r, e);
        if (!keep(m.module)) continue;
        const { s } = factoredSvd(
          { rows: m.outFeatures, cols: m.rank, data: m.b },
          { rows: m.rank, cols: m.inFeatures, data: m.a },
          loraScale(m, useRslora),
        );
        let frob = 0;
        for (const v of s) frob += v * v;
        tensors.push(
          tensorSpectrum(
            m.module,
            shape,
            'F32',
            baseNorms ? baseNorms[e]! : null,
            frob,
            summarize(s, frob, true, 'factored', o.thresholds),
            t0,
          ),
        );
      }
      opts.onProgress?.({ index: ++done, total, name: r.name, bytesRead });
    }
    for (const w of full.values()) {
      if (!keep(w.name)) continue;
      if (!base) {
        skipped.push({
          name: w.name,
          reason: 'full replacement weight (modules_to_save): its change needs the base (analyze BASE --adapter DIR)',
        });
        continue;
      }
      if (vocab?.tensors.has(w.name)) {
        skipped.push({
          name: w.name,
          reason: `vocabulary resized from ${vocab.from} to ${vocab.to} rows, saved whole: no change of the base's shape to analyze`,
        });
        continue;
      }
      if (!base.has(w.name)) throw new ShapeError(`adapter replaces "${w.name}", which ${opts.basePath} does not have`);
      const info = base.info(w.name);
      if (info.shape.join(',') !== w.shape.join(','))
        throw new ShapeError(
          `adapter replaces ${w.name} with [${w.shape.join(', ')}] but the base has [${info.shape.join(', ')}]`,
        );
      const t0 = performance.now();
      const b = await readBase(w.name);
      const baseNorm = Math.sqrt(sumSquares(b));
      const d = w.data.slice();
      for (let i = 0; i < d.length; i++) d[i]! -= b[i]!;
      const frob = sumSquares(d);
      if (w.shape.length === 2 && w.shape[0]! > 1 && w.shape[1]! > 1) {
        const summary = await computeSpectrum({ rows: w.shape[0]!, cols: w.shape[1]!, data: d }, frob, o);
        tensors.push(tensorSpectrum(w.name, w.shape, info.dtype, baseNorm, frob, summary, t0));
      } else {
        others.push({
          name: w.name,
          shape: w.shape,
          deltaNorm: Math.sqrt(frob),
          relativeUpdate: relativeUpdate(Math.sqrt(frob), baseNorm),
        });
      }
      opts.onProgress?.({ index: ++done, total, name: w.name, bytesRead });
    }
    return document(
      { base: opts.basePath ?? null, tuned: null, adapter: adapterDir },
      o,
      tensors,
      others,
      skipped,
      start,
    );
  } finally {
    await base?.close();
  }
}

/** lora_B.bias adds s·bias to the base bias: listed beside norms and biases. */
function addBias(m: LoraModule, scale: number, others: OtherTensor[]): void {
  if (!m.bias) return;
  others.push({
    name: `${m.module}.bias`,
    shape: [m.outFeatures],
    deltaNorm: Math.abs(scale) * Math.sqrt(sumSquares(m.bias)),
    relativeUpdate: null,
  });
}

/** ‖W_e‖ of each of the `experts` equal slices of `w`. */
function expertNorms(w: Float32Array, experts: number): number[] {
  const size = w.length / experts;
  return Array.from({ length: experts }, (_, e) => Math.sqrt(sumSquares(w.subarray(e * size, (e + 1) * size))));
}

function sumSquares(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}

/**
 * The spectra of a stream of ΔW, listed in the order they were added. Those that go straight to
 * the bidiagonal route (`straightToBidiagonal`: under `exact`, every ΔW that fits its memory
 * limit) go to worker threads, up to `jobs` at a time (spectrum-pool.ts): their routes spend long
 * stretches on one core, which the others fill. The rest start with randomized passes or take the
 * Gram route, both products that keep every core busy; they are computed here, in turn, while the
 * workers go on. After a failure, `add` and `all` throw it; spectra still running finish unread.
 */
class SpectraInFlight {
  private readonly entries: Promise<TensorSpectrum>[] = [];
  private failure: { error: unknown } | null = null;
  constructor(private readonly o: Resolved) {}

  /** Compute or start the spectrum of `d`; `onDone` runs when it is computed. ΔW's memory is free again on return. */
  async add(name: string, shape: number[], dtype: string, d: Delta, onDone: () => void): Promise<void> {
    if (this.failure) throw this.failure.error;
    const { delta, baseNorm, frobSquared } = d;
    const entry = (summary: SpectrumSummary, t0: number) => {
      onDone();
      return tensorSpectrum(name, shape, dtype, baseNorm, frobSquared, summary, t0);
    };
    if (frobSquared === 0 || !straightToBidiagonal(delta.rows, delta.cols, this.o)) {
      const t0 = performance.now();
      this.entries.push(Promise.resolve(entry(await computeSpectrumHere(delta, frobSquared, this.o), t0)));
      return;
    }
    const { result } = await submitSpectrum(delta, frobSquared, this.o, this.o.jobs);
    // Its own time, from the moment a worker took it.
    const t0 = performance.now();
    const pending = result.then((summary) => entry(summary, t0));
    // Seen here at once (no unhandled rejection while later tensors are read), thrown by the next add or by all.
    pending.catch((error: unknown) => {
      this.failure ??= { error };
    });
    this.entries.push(pending);
  }

  all(): Promise<TensorSpectrum[]> {
    return Promise.all(this.entries);
  }
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
