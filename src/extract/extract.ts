/**
 * `extract`: a PEFT LoRA adapter from a full fine-tune, streamed one module at a time.
 * ΔW ≈ U_r Σ_r V_rᵀ (Eckart–Young), split evenly into lora_B = U_r Σ_r^{1/2}, lora_A = Σ_r^{1/2} V_rᵀ, lora_alpha = r.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { deltaScratch, readDelta, type Delta, type DeltaScratch } from '../analyze/delta.js';
import { pairTensors, type TensorPair } from '../analyze/pairing.js';
import { computeSpectrum, summarize, tensorSpectrum, DEFAULT_THRESHOLDS } from '../analyze/spectrum.js';
import type { SkippedTensor, SpectrumMethod, TensorSpectrum } from '../analyze/types.js';
import { UsageError } from '../errors.js';
import type { Adapter, Checkpoint, DType, LoraModule } from '../io/index.js';
import { openCheckpoint, writeAdapter, writeDirAtomically } from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import { adaptiveSvd, exactIsCheaper, exactSvd, truncatedSvd } from '../svd/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { calibrateModules, type CalibrationOptions } from './calibrate.js';
import { residualNorm, roundTo, splitFactors } from './factors.js';
import { moduleKind, modulePath } from './modules.js';
import { allocateBudget, rankFor, type BudgetModule, type RankLimits, type RankPolicy } from './policy.js';
import type { ExtractedModule, ExtractionResult } from './types.js';

/** Most ranks per module the budget's first pass looks at when no --max-rank is given. */
export const BUDGET_SPECTRUM_CAP = 256;

export interface ExtractProgress {
  phase: 'spectra' | 'factors' | 'calibrate';
  index: number;
  total: number;
  name: string;
}

export interface ExtractOptions extends RankLimits {
  policy: RankPolicy;
  include?: RegExp;
  exclude?: RegExp;
  /** Dtype of the factors (default: the tuned checkpoint's). */
  dtype?: DType;
  /** Input embeddings and lm_head: LoRA (default), whole replacement weights, or left out. */
  embeddings?: 'lora' | 'full' | 'skip';
  /** Norm weights: whole replacement weights (default with the peft profile) or left out. */
  norms?: 'full' | 'skip';
  /** vllm: no modules_to_save and no bias entries, for serving engines that load LoRA weights only. */
  profile?: 'peft' | 'vllm';
  /** Replace an existing output folder. */
  force?: boolean;
  seed?: number;
  /** Minimise the output error on these calibration tokens rather than the weight error (calibrate.ts). */
  calibration?: CalibrationOptions;
  onProgress?: (p: ExtractProgress) => void;
}

/** A LoRA candidate: a 2-D ΔW becoming lora_A/lora_B (or lora_embedding_A/B). */
interface Candidate {
  pair: TensorPair;
  kind: 'linear' | 'embedding';
  module: string;
  m: number;
  n: number;
}

export interface ExtractOutput extends ExtractionResult {
  /** The spectra computed on the way (for the report). */
  spectra: TensorSpectrum[];
}

/**
 * Extract the LoRA adapter of the fine-tune `tunedPath` of `basePath` into the folder `outDir`
 * (adapter_config.json, adapter_model.safetensors, extraction.json), which appears only when complete.
 * @example await extractAdapter('base/', 'tuned/', 'lora/', { policy: { energy: 0.9 } });
 */
export async function extractAdapter(basePath: string, tunedPath: string, outDir: string, opts: ExtractOptions): Promise<ExtractOutput> {
  const start = performance.now();
  const profile = opts.profile ?? 'peft';
  const embeddings = opts.embeddings ?? 'lora';
  const norms = profile === 'vllm' ? 'skip' : (opts.norms ?? 'full');
  if (opts.maxRank !== undefined && (!Number.isInteger(opts.maxRank) || opts.maxRank < 1)) throw new UsageError(`--max-rank must be a positive integer, got ${opts.maxRank}`);
  if (opts.minRank !== undefined && (!Number.isInteger(opts.minRank) || opts.minRank < 0)) throw new UsageError(`--min-rank must be a non-negative integer, got ${opts.minRank}`);
  const seed = opts.seed ?? 0;

  const base = await openCheckpoint(basePath);
  try {
    const tuned = await openCheckpoint(tunedPath);
    try {
      const warnings: string[] = [];
      const skipped: SkippedTensor[] = [];
      const fullWeights: Adapter['fullWeights'] = [];
      const { matrices, others, skipped: unpaired } = pairTensors(base.tensors, tuned.tensors, opts);
      const dtype = opts.dtype ?? (matrices[0]?.tuned.dtype as DType | undefined) ?? 'F32';

      for (const s of unpaired) {
        const t = tuned.has(s.name) ? tuned.info(s.name) : undefined;
        const kind = t ? moduleKind(s.name, t.shape) : 'other';
        if (t && s.reason.startsWith('shape') && (kind === 'embedding' || kind === 'lm_head')) {
          if (embeddings === 'full' && profile === 'peft') {
            fullWeights.push({ name: s.name, dtype, shape: t.shape, data: await tuned.readFloat32(s.name) });
            warnings.push(`${s.name}: resized vocabulary saved whole (modules_to_save); the base model must be resized to [${t.shape.join(', ')}] before loading`);
            continue;
          }
          skipped.push({ name: s.name, reason: `${s.reason}: a resized vocabulary cannot be a LoRA; use --embeddings full` });
          continue;
        }
        skipped.push(s);
      }

      const candidates: Candidate[] = [];
      const tied = await tiedEmbeddings(basePath);
      for (const pair of matrices) {
        const kind = moduleKind(pair.name, pair.tuned.shape);
        const [m, n] = pair.tuned.shape as [number, number];
        if (kind === 'lm_head' && tied && matrices.some((p) => moduleKind(p.name, p.tuned.shape) === 'embedding')) {
          skipped.push({ name: pair.name, reason: 'tied to the input embeddings (tie_word_embeddings): extracted once, with them' });
          continue;
        }
        if (kind === 'linear' || ((kind === 'embedding' || kind === 'lm_head') && embeddings === 'lora')) {
          candidates.push({ pair, kind: kind === 'embedding' ? 'embedding' : 'linear', module: modulePath(pair.name), m, n });
        } else if ((kind === 'embedding' || kind === 'lm_head') && embeddings === 'full' && profile === 'peft') {
          fullWeights.push({ name: pair.name, dtype, shape: pair.tuned.shape, data: await tuned.readFloat32(pair.name) });
        } else {
          skipped.push({ name: pair.name, reason: kind === 'embedding' || kind === 'lm_head' ? `--embeddings ${embeddings}${profile === 'vllm' && embeddings === 'full' ? ' (not with --profile vllm)' : ''}` : `not a linear weight (${kind})` });
        }
      }
      for (const pair of others) {
        const kind = moduleKind(pair.name, pair.tuned.shape);
        if (kind === 'norm' && norms === 'full') {
          const d = await readDelta(base, tuned, pair);
          if (d.frobSquared === 0) skipped.push({ name: pair.name, reason: 'unchanged' });
          else fullWeights.push({ name: pair.name, dtype, shape: pair.tuned.shape, data: await tuned.readFloat32(pair.name) });
        } else {
          const why = kind === 'bias' ? 'bias changes are not written (bias: "none")' : kind === 'norm' ? `norm weight (--norms skip${profile === 'vllm' ? ', implied by --profile vllm' : ''})` : `not a LoRA target (${pair.tuned.shape.length}-D)`;
          skipped.push({ name: pair.name, reason: why });
        }
      }

      const calibration = opts.calibration ? await calibrateModules(basePath, tunedPath, { ...opts.calibration, policy: opts.policy, maxRank: opts.maxRank, minRank: opts.minRank, modules: new Set(candidates.map((c) => c.module)), dtype, norms, seed, onProgress: opts.onProgress }) : undefined;
      if (calibration) {
        warnings.push(...calibration.warnings);
        if ('budget' in opts.policy) {
          // The budget is spent by output-error gains, which exist for the calibrated modules only.
          for (const c of candidates.filter((c) => !calibration.modules.has(c.module))) skipped.push({ name: c.pair.name, reason: 'not calibrated (--calibrate with a budget covers the decoder layers only)' });
          candidates.splice(0, candidates.length, ...candidates.filter((c) => calibration.modules.has(c.module)));
        }
      }
      const scratch = deltaScratch(candidates.map((c) => c.pair));
      const ranks = calibration && 'budget' in opts.policy ? candidates.map((c) => calibration.modules.get(c.module)!.rank) : await chooseRanks(base, tuned, candidates, opts, seed, scratch);
      if ('budget' in opts.policy) {
        const capped = ranks.filter((r, i) => r === Math.min(opts.maxRank ?? BUDGET_SPECTRUM_CAP, candidates[i]!.m, candidates[i]!.n) && r < Math.min(candidates[i]!.m, candidates[i]!.n)).length;
        if (capped > 0) warnings.push(`${capped} modules reached the rank cap ${opts.maxRank ?? BUDGET_SPECTRUM_CAP} of the budget's spectrum pass; raise --max-rank to let the budget spend more there`);
      }
      const modules: LoraModule[] = [];
      const extracted: ExtractedModule[] = [];
      const spectra: TensorSpectrum[] = [];
      for (let i = 0; i < candidates.length; i++) {
        const c = candidates[i]!;
        const t0 = performance.now();
        const d = await readDelta(base, tuned, c.pair, scratch);
        const cal = calibration?.modules.get(c.module);
        const wanted = cal ? cal.rank : ranks[i];
        const { r, u, s, v, method } = await factorize(d, c, cal ? { rank: cal.rank } : opts.policy, wanted, opts, seed, warnings);
        opts.onProgress?.({ phase: 'factors', index: i + 1, total: candidates.length, name: c.module });
        const summary = summarize(s, d.frobSquared, s.length >= Math.min(c.m, c.n), method, DEFAULT_THRESHOLDS);
        spectra.push(tensorSpectrum(c.pair.name, c.pair.tuned.shape, c.pair.tuned.dtype, d.baseNorm, d.frobSquared, summary, t0));
        if (r === 0) {
          skipped.push({ name: c.pair.name, reason: d.frobSquared === 0 ? 'unchanged' : 'rank 0 chosen' });
          continue;
        }
        const split = cal ?? splitFactors(u!, s, v!, r, c.kind === 'embedding');
        const a = cal ? cal.a : roundTo(dtype, split.a);
        const b = cal ? cal.b : roundTo(dtype, split.b);
        const err = await residualNorm(d.delta, a, b, r, 1, c.kind === 'embedding');
        let kept = 0;
        for (let j = 0; j < r; j++) kept += s[j]! * s[j]!;
        const energy = d.frobSquared > 0 ? Math.min(1, kept / d.frobSquared) : 1;
        const deltaNorm = Math.sqrt(d.frobSquared);
        const inF = c.kind === 'embedding' ? c.m : c.n;
        const outF = c.kind === 'embedding' ? c.n : c.m;
        modules.push({ module: c.module, kind: c.kind, rank: r, alpha: r, a, b, inFeatures: inF, outFeatures: outF });
        extracted.push({
          module: c.module,
          kind: c.kind,
          shape: [c.m, c.n],
          rank: r,
          energy,
          relativeError: deltaNorm > 0 ? err / deltaNorm : 0,
          optimalError: Math.sqrt(Math.max(0, 1 - energy)),
          deltaNorm,
          params: r * (c.m + c.n),
          ...(cal ? { calibrated: { outputError: cal.outputError, svdOutputError: cal.svdOutputError, svdWeightError: cal.svdWeightError, outputNormSq: cal.outputNormSq } } : {}),
        });
      }

      const loraParams = extracted.reduce((sum, e) => sum + e.params, 0);
      const fullParams = fullWeights.reduce((sum, w) => sum + w.data.length, 0);
      const totalSq = extracted.reduce((sum, e) => sum + e.deltaNorm ** 2, 0);
      const errSq = extracted.reduce((sum, e) => sum + (e.relativeError * e.deltaNorm) ** 2, 0);
      const optSq = extracted.reduce((sum, e) => sum + (e.optimalError * e.deltaNorm) ** 2, 0);
      const result: ExtractOutput = {
        schemaVersion: SCHEMA_VERSION,
        tool: TOOL,
        base: basePath,
        tuned: tunedPath,
        out: outDir,
        dtype,
        policy: { ...opts.policy, ...(opts.maxRank !== undefined ? { maxRank: opts.maxRank } : {}), ...(opts.minRank !== undefined ? { minRank: opts.minRank } : {}) },
        modules: extracted,
        modulesToSave: fullWeights.map((w) => modulePath(w.name)),
        totalParams: loraParams + fullParams,
        summary: {
          modules: extracted.length,
          loraParams,
          fullParams,
          denseParams: extracted.reduce((sum, e) => sum + e.shape[0]! * e.shape[1]!, 0),
          relativeError: totalSq > 0 ? Math.sqrt(errSq / totalSq) : 0,
          optimalError: totalSq > 0 ? Math.sqrt(optSq / totalSq) : 0,
        },
        skipped,
        warnings,
        ...(calibration ? { calibration: calibrationSummary(calibration, extracted) } : {}),
        seconds: 0,
        spectra,
      };
      if (modules.length === 0 && fullWeights.length === 0) throw new UsageError('nothing to extract: no module changed, or every one was filtered out');
      const baseModel = typeof base.metadata['base_model_name_or_path'] === 'string' ? base.metadata['base_model_name_or_path'] : basePath;
      await writeDirAtomically(outDir, { force: opts.force }, async (tmp) => {
        await writeAdapter(tmp, { modules, fullWeights, dtype, useRslora: false, baseModel, taskType: 'CAUSAL_LM' }, { force: true });
        result.seconds = (performance.now() - start) / 1000;
        const { spectra: _omit, ...doc } = result;
        await writeFile(join(tmp, 'extraction.json'), JSON.stringify(doc, null, 2) + '\n');
      });
      return result;
    } finally {
      await tuned.close();
    }
  } finally {
    await base.close();
  }
}

/** Whether the model's config.json (beside the weights) says lm_head shares the input embeddings. */
async function tiedEmbeddings(modelPath: string): Promise<boolean> {
  const folder = (await stat(modelPath)).isDirectory() ? modelPath : dirname(modelPath);
  try {
    const config = JSON.parse(await readFile(join(folder, 'config.json'), 'utf8')) as { tie_word_embeddings?: unknown };
    return config.tie_word_embeddings === true;
  } catch {
    return false;
  }
}

/**
 * Ranks known before the factor pass: the budget's allocation (a first pass over every
 * spectrum), or undefined per module for the per-module policies (chosen in `factorize`).
 */
async function chooseRanks(
  base: Checkpoint,
  tuned: Checkpoint,
  candidates: Candidate[],
  opts: ExtractOptions,
  seed: number,
  scratch: DeltaScratch,
): Promise<(number | undefined)[]> {
  const policy = opts.policy;
  if (!('budget' in policy)) return candidates.map(() => undefined);
  const cap = opts.maxRank ?? BUDGET_SPECTRUM_CAP;
  const spectra: BudgetModule[] = [];
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const d = await readDelta(base, tuned, c.pair, scratch);
    const maxRank = Math.min(cap, c.m, c.n);
    const sp = await computeSpectrum(d.delta, d.frobSquared, { topK: maxRank, exact: false, thresholds: [1], seed });
    spectra.push({ cost: c.m + c.n, s: sp.singularValues.subarray(0, maxRank), frobSquared: d.frobSquared, maxRank });
    opts.onProgress?.({ phase: 'spectra', index: i + 1, total: candidates.length, name: c.module });
  }
  return allocateBudget(spectra, policy.budget, { relative: policy.relative, minRank: opts.minRank ?? 1 });
}

/** SVD of one ΔW at the rank the policy asks for. */
async function factorize(
  d: Delta,
  c: Candidate,
  policy: RankPolicy,
  allocated: number | undefined,
  limits: RankLimits,
  seed: number,
  warnings: string[],
): Promise<{ r: number; u?: Matrix; s: Float64Array; v?: Matrix; method: SpectrumMethod }> {
  const p = Math.min(c.m, c.n);
  const maxRank = Math.min(limits.maxRank ?? p, p);
  if (d.frobSquared === 0) return { r: 0, s: new Float64Array(0), method: 'exact' };
  let wanted: number | undefined = allocated;
  if ('rank' in policy) {
    if (policy.rank > p) warnings.push(`${c.module}: --rank ${policy.rank} is above min(m, n) = ${p}; clamped to ${p}`);
    wanted = Math.min(policy.rank, maxRank);
  }
  if (wanted !== undefined) {
    const r = Math.max(wanted, 0);
    if (r === 0) return { r: 0, s: new Float64Array(0), method: 'exact' };
    const exact = exactIsCheaper(c.m, c.n, r, { vectors: true });
    const svd = exact ? await exactSvd(d.delta, { vectors: true }) : await truncatedSvd(d.delta, { rank: r, seed });
    return { r, u: svd.u, s: svd.s, v: svd.v, method: exact ? 'exact' : 'randomized' };
  }
  // energy / error: grow the range until the target is met, then keep the smallest rank that meets it.
  const target = 'energy' in policy ? policy.energy : 1 - (policy as { error: number }).error ** 2;
  const exact = exactIsCheaper(c.m, c.n, maxRank, { vectors: true });
  const svd = exact ? await exactSvd(d.delta, { vectors: true }) : await adaptiveSvd(d.delta, { energy: target, maxRank, seed, frobSquared: d.frobSquared });
  const { rank, reached } = rankFor(policy, svd.s, d.frobSquared, maxRank);
  if (!reached) warnings.push(`${c.module}: target not reached within rank ${rank} (--max-rank)`);
  // --min-rank can ask for more than was computed on the adaptive path: the computed values bound it.
  const r = Math.min(Math.max(rank, Math.min(limits.minRank ?? 0, p)), svd.s.length);
  return { r, u: svd.u, s: svd.s, v: svd.v, method: exact ? 'exact' : 'adaptive' };
}

/** Model-level output errors of the calibrated factors and of the plain SVD at the same ranks. */
function calibrationSummary(cal: Awaited<ReturnType<typeof calibrateModules>>, modules: ExtractedModule[]): NonNullable<ExtractionResult['calibration']> {
  let norm = 0;
  let out = 0;
  let svd = 0;
  for (const m of modules) {
    if (!m.calibrated) continue;
    norm += m.calibrated.outputNormSq;
    out += m.calibrated.outputError ** 2 * m.calibrated.outputNormSq;
    svd += m.calibrated.svdOutputError ** 2 * m.calibrated.outputNormSq;
  }
  return {
    inputs: cal.inputs,
    tokens: cal.tokens,
    sequences: cal.sequences,
    damping: cal.damping,
    modules: cal.modules.size,
    outputError: norm > 0 ? Math.sqrt(out / norm) : 0,
    svdOutputError: norm > 0 ? Math.sqrt(svd / norm) : 0,
  };
}
