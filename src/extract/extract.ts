/**
 * `extract`: a PEFT LoRA adapter from a full fine-tune, streamed one module at a time.
 * ΔW ≈ U_r Σ_r V_rᵀ (Eckart–Young), split evenly into lora_B = U_r Σ_r^{1/2}, lora_A = Σ_r^{1/2} V_rᵀ, lora_alpha = r.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Delta, type DeltaScratch, deltaScratch, readDelta, readDeltas } from '../analyze/delta.js';
import { pairTensors } from '../analyze/pairing.js';
import { computeSpectrum, DEFAULT_THRESHOLDS, summarize, tensorSpectrum } from '../analyze/spectrum.js';
import type { SpectrumMethod, TensorSpectrum } from '../analyze/types.js';
import { UsageError } from '../errors.js';
import type { Adapter, Checkpoint, DType, LoraModule } from '../io/index.js';
import {
  isFloatDType,
  modelLayout,
  openCheckpoint,
  readModelConfig,
  writeAdapter,
  writeDirAtomically,
} from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import { adaptiveSvd, exactIsCheaper, exactSvd, truncatedSvd } from '../svd/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { type CalibrationOptions, calibrateModules } from './calibrate.js';
import { residualNorm, roundTo, splitFactors } from './factors.js';
import { type Candidate, planExtraction } from './plan.js';
import { allocateBudget, type BudgetModule, type RankLimits, type RankPolicy, rankFor } from './policy.js';
import type { ExtractedModule, ExtractionCoverage, ExtractionResult, LeftOutTensor } from './types.js';

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
  /** Norms: whole modules, weight and bias together (default with the peft profile), or left out. */
  norms?: 'full' | 'skip';
  /** Changed biases of LoRA modules: carried (PEFT lora_bias, or whole where lora_bias cannot load cleanly; default) or left out. Always skip with --profile vllm. */
  biases?: 'lora' | 'skip';
  /** vllm: no modules_to_save and no bias entries, for serving engines that load LoRA weights only. */
  profile?: 'peft' | 'vllm';
  /** Replace an existing output folder. */
  force?: boolean;
  seed?: number;
  /** Minimise the output error on these calibration tokens rather than the weight error (calibrate.ts). */
  calibration?: CalibrationOptions;
  onProgress?: (p: ExtractProgress) => void;
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
export async function extractAdapter(
  basePath: string,
  tunedPath: string,
  outDir: string,
  opts: ExtractOptions,
): Promise<ExtractOutput> {
  const start = performance.now();
  const profile = opts.profile ?? 'peft';
  const embeddings = opts.embeddings ?? 'lora';
  const norms = profile === 'vllm' ? 'skip' : (opts.norms ?? 'full');
  const biases = profile === 'vllm' ? 'skip' : (opts.biases ?? 'lora');
  if (opts.maxRank !== undefined && (!Number.isInteger(opts.maxRank) || opts.maxRank < 1))
    throw new UsageError(`--max-rank must be a positive integer, got ${opts.maxRank}`);
  if (opts.minRank !== undefined && (!Number.isInteger(opts.minRank) || opts.minRank < 0))
    throw new UsageError(`--min-rank must be a non-negative integer, got ${opts.minRank}`);
  const seed = opts.seed ?? 0;

  const base = await openCheckpoint(basePath);
  try {
    const tuned = await openCheckpoint(tunedPath);
    try {
      const baseConfig = await readModelConfig(basePath);
      const tunedConfig = (await readModelConfig(tunedPath)) ?? baseConfig;
      // The tuned config names the task (a classifier fine-tuned from a causal LM says SEQ_CLS); the base
      // config says what the model loaded under the adapter ties.
      const layout = modelLayout(tunedConfig, tuned.tensors);
      if (baseConfig) layout.tiedEmbeddings = modelLayout(baseConfig, base.tensors).tiedEmbeddings;
      const warnings: string[] = [...layout.warnings];
      const pairing = pairTensors(base.tensors, tuned.tensors, { ...opts, layout });
      const plan = planExtraction(pairing, layout, (name) => (tuned.has(name) ? tuned.info(name) : undefined), {
        embeddings,
        norms,
        biases,
        profile,
      });
      warnings.push(...plan.warnings);
      const skipped = [...plan.skipped];
      const candidates = plan.candidates;
      const dtype = opts.dtype ?? (pairing.matrices[0]?.tuned.dtype as DType | undefined) ?? 'F32';
      const scratch = deltaScratch([
        ...candidates.map((c) => c.pair),
        ...plan.whole.flatMap((w) => w.pairs),
        ...plan.leftOut.map((l) => l.pair),
      ]);

      // Coverage: Σ‖ΔW‖² of every changed tensor on both sides, what is reproduced, what is left out.
      const cov = { changedTensors: 0, changedParams: 0, deltaSquared: 0, reproduced: 0, truncated: 0 };
      const leftOutRaw: { name: string; reason: string; sq: number; params: number }[] = [];
      const countChanged = (pair: { tuned: { shape: number[] } }, sq: number) => {
        if (sq === 0) return;
        cov.changedTensors++;
        cov.changedParams += pair.tuned.shape.reduce((a, b) => a * b, 1);
        cov.deltaSquared += sq;
      };

      // Modules saved whole: every tensor of the module from the tuned side, when any of them changed.
      const fullWeights: Adapter['fullWeights'] = [];
      const modulesToSave: string[] = [];
      /** Modules whose tuned bias is saved whole under <module>.base_layer.bias: they must stay LoRA targets. */
      const wholeBiasModules = new Set<string>();
      for (const w of plan.whole) {
        let changed = w.tunedOnly.length > 0 || w.always === true;
        for (const pair of w.pairs) {
          const d = await readDelta(base, tuned, pair, scratch);
          countChanged(pair, d.frobSquared);
          cov.reproduced += d.frobSquared;
          if (d.frobSquared > 0) changed = true;
        }
        if (!changed) {
          for (const pair of w.pairs) skipped.push({ name: pair.name, reason: 'unchanged' });
          continue;
        }
        for (const t of [...w.pairs.map((p) => p.tuned), ...w.tunedOnly]) {
          // Their own dtype, so what is saved is the tuned tensor exactly.
          const wdtype = isFloatDType(t.dtype) ? (t.dtype as DType) : dtype;
          fullWeights.push({
            name: w.rename ? w.rename(t.name) : t.name,
            dtype: wdtype,
            shape: t.shape,
            data: await tuned.readFloat32(t.name),
          });
        }
        if (!w.notModulesToSave) modulesToSave.push(w.module);
        else wholeBiasModules.add(w.module.replace(/\.base_layer$/, ''));
      }
      // Tied embeddings saved whole: PEFT's ensure_weight_tying wraps the head too and loads its own copy
      // (KeyError on lm_head.weight without it); listing the head is also how PEFT sees GPT-2's wte is tied.
      const savedEmbedding = plan.tiedHead
        ? fullWeights.find((w) => w.name === `${plan.tiedHead!.source}.weight`)
        : undefined;
      if (plan.tiedHead && savedEmbedding && !fullWeights.some((w) => w.name === `${plan.tiedHead!.module}.weight`)) {
        fullWeights.push({ ...savedEmbedding, name: `${plan.tiedHead.module}.weight` });
        if (!modulesToSave.includes(plan.tiedHead.module)) modulesToSave.push(plan.tiedHead.module);
      }
      for (const l of plan.leftOut) {
        const d = await readDelta(base, tuned, l.pair, scratch);
        if (d.frobSquared === 0) {
          skipped.push({ name: l.pair.name, reason: 'unchanged' });
          continue;
        }
        countChanged(l.pair, d.frobSquared);
        leftOutRaw.push({
          name: l.pair.name,
          reason: l.reason,
          sq: d.frobSquared,
          params: l.pair.tuned.shape.reduce((a, b) => a * b, 1),
        });
        skipped.push({ name: l.pair.name, reason: l.reason });
      }

      const calibration = opts.calibration
        ? await calibrateModules(basePath, tunedPath, {
            ...opts.calibration,
            policy: opts.policy,
            maxRank: opts.maxRank,
            minRank: opts.minRank,
            modules: new Set(candidates.map((c) => c.module)),
            dtype,
            norms,
            seed,
            onProgress: opts.onProgress,
          })
        : undefined;
      if (calibration) {
        warnings.push(...calibration.warnings);
        if ('budget' in opts.policy) {
          // The budget is spent by output-error gains, which exist for the calibrated modules only.
          for (const c of candidates.filter((c) => !calibration.modules.has(c.module)))
            skipped.push({
              name: c.pair.name,
              reason: 'not calibrated (--calibrate with a budget covers the decoder layers only)',
            });
          candidates.splice(0, candidates.length, ...candidates.filter((c) => calibration.modules.has(c.module)));
        }
      }
      const ranks =
        calibration && 'budget' in opts.policy
          ? candidates.map((c) => calibration.modules.get(c.module)!.rank)
          : await chooseRanks(base, tuned, candidates, opts, seed, scratch);
      if ('budget' in opts.policy) {
        const capped = ranks.filter(
          (r, i) =>
            r === Math.min(opts.maxRank ?? BUDGET_SPECTRUM_CAP, candidates[i]!.m, candidates[i]!.n) &&
            r < Math.min(candidates[i]!.m, candidates[i]!.n),
        ).length;
        if (capped > 0)
          warnings.push(
            `${capped} modules reached the rank cap ${opts.maxRank ?? BUDGET_SPECTRUM_CAP} of the budget's spectrum pass; raise --max-rank to let the budget spend more there`,
          );
      }
      const fusedRank = await fusedExpertRank(base, tuned, candidates, ranks, opts, seed, scratch, warnings);
      const modules: LoraModule[] = [];
      const extracted: ExtractedModule[] = [];
      const spectra: TensorSpectrum[] = [];
      // The pairs' reads overlap the factorisations; biases have a scratch of their own meanwhile.
      const biasScratch = deltaScratch(candidates.flatMap((c) => (c.bias ? [c.bias] : [])));
      let i = -1;
      for await (const [, d] of readDeltas(
        base,
        tuned,
        candidates.map((c) => c.pair),
        scratch,
      )) {
        const c = candidates[++i]!;
        const t0 = performance.now();
        countChanged(c.pair, d.frobSquared);
        const p = Math.min(c.m, c.n);
        const cal = calibration?.modules.get(c.module);
        const wanted = cal ? cal.rank : c.fused && fusedRank !== null ? Math.min(fusedRank, p) : ranks[i];
        // A calibrated module's plain SVD at its rank was computed by calibrateModules (for its output
        // error beside the calibrated one): its σ give the spectrum summary here, without a second SVD.
        const { r, u, s, v, method } =
          cal && d.frobSquared > 0
            ? { r: cal.rank, u: undefined, s: cal.svdS, v: undefined, method: cal.svdMethod }
            : await factorize(d, c, opts.policy, wanted, opts, seed, warnings);
        opts.onProgress?.({ phase: 'factors', index: i + 1, total: candidates.length, name: c.module });
        const summary = summarize(s, d.frobSquared, s.length >= p, method, DEFAULT_THRESHOLDS);
        spectra.push(
          tensorSpectrum(c.pair.name, c.pair.tuned.shape, c.pair.tuned.dtype, d.baseNorm, d.frobSquared, summary, t0),
        );
        const inF = c.transposed ? c.m : c.n;
        const outF = c.transposed ? c.n : c.m;
        // A fused expert block needs every expert at the one rank PEFT gives it, unchanged ones too (zero factors).
        const target = c.fused && fusedRank !== null ? fusedRank : r;
        let a: Float32Array = new Float32Array(target * inF);
        let b: Float32Array = new Float32Array(outF * target);
        let err = Math.sqrt(d.frobSquared);
        if (r > 0) {
          if (cal) {
            // --calibrate: factors that minimise the output error on the calibration inputs, already in `dtype`.
            ({ a, b } = cal);
          } else {
            const split = splitFactors(u!, s, v!, r, c.transposed);
            a = roundTo(dtype, split.a);
            b = roundTo(dtype, split.b);
          }
          err = await residualNorm(d.delta, a, b, r, 1, c.transposed);
          if (target > r) ({ a, b } = padRank(a, b, r, target, inF, outF));
        }
        cov.reproduced += Math.max(0, d.frobSquared - err * err);
        cov.truncated += Math.min(d.frobSquared, err * err);
        let bias: { data: Float32Array; deltaNorm: number; relativeError: number } | undefined;
        if (plan.biasMode === 'lora_bias' && c.bias) {
          const db = await readDelta(base, tuned, c.bias, biasScratch);
          countChanged(c.bias, db.frobSquared);
          // lora_alpha = r: the scale is 1, so lora_B.bias is Δb itself (merge: bias += s·lora_B.bias).
          const data = roundTo(dtype, db.delta.data.slice(0, outF));
          let e2 = 0;
          for (let j = 0; j < outF; j++) e2 += (db.delta.data[j]! - data[j]!) ** 2;
          cov.reproduced += Math.max(0, db.frobSquared - e2);
          cov.truncated += Math.min(db.frobSquared, e2);
          bias = {
            data,
            deltaNorm: Math.sqrt(db.frobSquared),
            relativeError: db.frobSquared > 0 ? Math.sqrt(e2 / db.frobSquared) : 0,
          };
        }
        // The bias keys (lora_B.bias, or base_layer.bias under bias: "lora_only") only load into a LoRA layer.
        const biasCarried = (bias !== undefined && bias.deltaNorm > 0) || wholeBiasModules.has(c.module);
        if (target === 0 && !biasCarried) {
          skipped.push({ name: c.pair.name, reason: d.frobSquared === 0 ? 'unchanged' : 'rank 0 chosen' });
          continue;
        }
        const rank = Math.max(target, 1);
        if (target === 0) ({ a, b } = padRank(a, b, 0, 1, inF, outF)); // only the bias changed: a rank-1 pair of zeros carries it
        let kept = 0;
        for (let j = 0; j < r; j++) kept += s[j]! * s[j]!;
        // At full rank the optimum is 0 exactly, whatever rounding the computed σ carry.
        const energy = d.frobSquared > 0 && r < p ? Math.min(1, kept / d.frobSquared) : 1;
        const deltaNorm = Math.sqrt(d.frobSquared);
        modules.push({
          module: c.module,
          kind: c.kind,
          rank,
          alpha: rank,
          a,
          b,
          inFeatures: inF,
          outFeatures: outF,
          ...(bias ? { bias: bias.data } : {}),
        });
        extracted.push({
          module: c.module,
          kind: c.kind,
          shape: [c.m, c.n],
          rank,
          energy,
          relativeError: deltaNorm > 0 ? err / deltaNorm : 0,
          optimalError: Math.sqrt(Math.max(0, 1 - energy)),
          deltaNorm,
          params: rank * (c.m + c.n) + (bias ? outF : 0),
          ...(c.transposed ? { transposed: true } : {}),
          ...(method !== 'exact' && r > 0 && r < p ? { bound: true as const } : {}),
          ...(bias ? { bias: { deltaNorm: bias.deltaNorm, relativeError: bias.relativeError } } : {}),
          ...(cal
            ? {
                calibrated: {
                  outputError: cal.outputError,
                  svdOutputError: cal.svdOutputError,
                  svdWeightError: cal.svdWeightError,
                  outputNormSq: cal.outputNormSq,
                },
              }
            : {}),
        });
      }

      const loraParams = extracted.reduce((sum, e) => sum + e.params, 0);
      if ('budget' in opts.policy && fusedRank !== null && loraParams > opts.policy.budget) {
        warnings.push(
          `the shared MoE rank ${fusedRank} takes the adapter to ${loraParams.toLocaleString('en-US')} parameters, over the budget of ${opts.policy.budget.toLocaleString('en-US')}`,
        );
      }
      const fullParams = fullWeights.reduce((sum, w) => sum + w.data.length, 0);
      const totalSq = extracted.reduce((sum, e) => sum + e.deltaNorm ** 2, 0);
      const errSq = extracted.reduce((sum, e) => sum + (e.relativeError * e.deltaNorm) ** 2, 0);
      const optSq = extracted.reduce((sum, e) => sum + (e.optimalError * e.deltaNorm) ** 2, 0);
      const total = cov.deltaSquared;
      const leftOut: LeftOutTensor[] = leftOutRaw
        .sort((x, y) => y.sq - x.sq)
        .map((l) => ({ name: l.name, reason: l.reason, share: total > 0 ? l.sq / total : 0, params: l.params }));
      const coverage: ExtractionCoverage = {
        changedTensors: cov.changedTensors,
        changedParams: cov.changedParams,
        deltaSquared: total,
        reproduced: total > 0 ? cov.reproduced / total : 1,
        truncated: total > 0 ? cov.truncated / total : 0,
        leftOutShare: leftOut.reduce((sum, l) => sum + l.share, 0),
        leftOut,
        notComparable: pairing.skipped
          .filter((s) => /^(only in|shape)/.test(s.reason))
          .map((s) => {
            const t = tuned.has(s.name) ? tuned.info(s.name) : base.info(s.name);
            const saved = fullWeights.some((w) => w.name === s.name);
            return {
              name: s.name,
              reason: saved ? `${s.reason}: saved whole` : s.reason,
              params: t.shape.reduce((a, b) => a * b, 1),
            };
          }),
      };
      const result: ExtractOutput = {
        schemaVersion: SCHEMA_VERSION,
        tool: TOOL,
        base: basePath,
        tuned: tunedPath,
        out: outDir,
        dtype,
        policy: {
          ...opts.policy,
          ...(opts.maxRank !== undefined ? { maxRank: opts.maxRank } : {}),
          ...(opts.minRank !== undefined ? { minRank: opts.minRank } : {}),
        },
        modules: extracted,
        modulesToSave,
        totalParams: loraParams + fullParams,
        summary: {
          modules: extracted.length,
          loraParams,
          fullParams,
          denseParams: extracted.reduce((sum, e) => sum + e.shape[0]! * e.shape[1]!, 0),
          relativeError: totalSq > 0 ? Math.sqrt(errSq / totalSq) : 0,
          optimalError: totalSq > 0 ? Math.sqrt(optSq / totalSq) : 0,
          optimalIsBound: extracted.some((e) => e.bound),
        },
        skipped,
        coverage,
        layout: {
          modelType: layout.modelType,
          family: layout.family,
          taskType: layout.taskType,
          tiedEmbeddings: layout.tiedEmbeddings,
          fanInFanOut: plan.fanInFanOut,
          biases: modules.some((m) => m.bias)
            ? 'lora_bias'
            : fullWeights.some((w) => w.name.endsWith('.base_layer.bias'))
              ? 'whole'
              : 'none',
          fusedExpertRank: fusedRank,
        },
        warnings,
        ...(calibration ? { calibration: calibrationSummary(calibration, extracted) } : {}),
        seconds: 0,
        spectra,
      };
      if (modules.length === 0 && fullWeights.length === 0)
        throw new UsageError('nothing to extract: no module changed, or every one was filtered out');
      const baseModel =
        typeof base.metadata['base_model_name_or_path'] === 'string'
          ? base.metadata['base_model_name_or_path']
          : basePath;
      const extraConfig: Record<string, unknown> = { modules_to_save: modulesToSave.length > 0 ? modulesToSave : null };
      // PEFT ties the adapter of lm_head to that of the tied token embeddings only when asked (ensure_weight_tying);
      // without it the unmerged model runs lm_head without the embeddings' update, unlike the merged one.
      // PEFT's own save of such an adapter also holds lm_head's factors (the embedding's, transposed): without
      // them PEFT reports missing keys.
      if (plan.tieEmbeddings) extraConfig['ensure_weight_tying'] = true;
      const tiedModules =
        plan.tiedHead && modules.some((m) => m.module === plan.tiedHead!.source && m.kind === 'embedding')
          ? [plan.tiedHead]
          : [];
      if (result.layout.biases === 'whole') extraConfig['bias'] = 'lora_only';
      await writeDirAtomically(outDir, { force: opts.force }, async (tmp) => {
        await writeAdapter(
          tmp,
          {
            modules,
            fullWeights,
            dtype,
            useRslora: false,
            fanInFanOut: plan.fanInFanOut,
            tiedModules,
            baseModel,
            taskType: layout.taskType,
            ...(fusedRank !== null ? { defaultRank: { r: fusedRank, alpha: fusedRank } } : {}),
            extraConfig,
          },
          { force: true },
        );
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

/** Factors of rank `r` widened to `target` with zero rows of A and zero columns of B (B·A unchanged). */
function padRank(
  a: Float32Array,
  b: Float32Array,
  r: number,
  target: number,
  inF: number,
  outF: number,
): { a: Float32Array; b: Float32Array } {
  const a2 = new Float32Array(target * inF);
  a2.set(a.subarray(0, r * inF));
  const b2 = new Float32Array(outF * target);
  for (let i = 0; i < outF; i++) b2.set(b.subarray(i * r, i * r + r), i * target);
  return { a: a2, b: b2 };
}

/**
 * The one rank of every fused expert and router (PEFT ≥ 0.19 under transformers 5 turns per-expert
 * targets into target_parameters of the fused 3-D weights, each with the config's r — PEFT's
 * _convert_peft_config_moe — so per-module ranks would not survive): the largest rank any of them
 * asks for, so each keeps at least what its policy wanted. Null when the model has none.
 */
async function fusedExpertRank(
  base: Checkpoint,
  tuned: Checkpoint,
  candidates: Candidate[],
  ranks: (number | undefined)[],
  opts: ExtractOptions,
  seed: number,
  scratch: DeltaScratch,
  warnings: string[],
): Promise<number | null> {
  const fused = candidates.map((c, i) => ({ c, i })).filter(({ c }) => c.fused);
  if (fused.length === 0) return null;
  let rank = 0;
  for (const { c, i } of fused) {
    let r = ranks[i];
    if (r === undefined) {
      const d = await readDelta(base, tuned, c.pair, scratch);
      r = (await factorize(d, c, opts.policy, undefined, opts, seed, [])).r;
    }
    rank = Math.max(rank, r);
  }
  rank = Math.max(rank, 1);
  warnings.push(
    `${fused.length} MoE expert and router weights share rank ${rank} (the config's r): PEFT's transformers-5 conversion fuses them into 3-D parameters with one rank`,
  );
  return rank;
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

/**
 * SVD of one ΔW at the rank the policy asks for. The energy and error policies grow a
 * randomized basis block by block (randQB_EI) up to the rank where the exact SVD becomes the
 * cheaper route, and take the exact route only past it (or when it is cheaper from the start):
 * asking `exactIsCheaper` about min(m, n) would send every module down the exact route.
 */
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
    if (policy.rank > p) noteClamped(warnings, policy.rank, p, c.module);
    wanted = Math.min(policy.rank, maxRank);
  }
  if (wanted !== undefined) return fixedRank(d, c, Math.max(wanted, 0), seed);
  // energy / error: grow the range until the target is met, then keep the smallest rank that meets it.
  const target = 'energy' in policy ? policy.energy : 1 - (policy as { error: number }).error ** 2;
  const crossover = randomizedRankLimit(c.m, c.n, maxRank);
  let svd: { u?: Matrix; s: Float64Array; v?: Matrix } | undefined;
  let method: SpectrumMethod = 'adaptive';
  if (crossover >= Math.min(ADAPTIVE_BLOCK, maxRank)) {
    const grown = await adaptiveSvd(d.delta, {
      energy: target,
      maxRank: crossover,
      blockSize: ADAPTIVE_BLOCK,
      seed,
      frobSquared: d.frobSquared,
    });
    // Not reached below the crossover while --max-rank allows more: the exact route is now the cheaper one.
    if (grown.reached || crossover >= maxRank) svd = grown;
  }
  if (svd === undefined) {
    svd = await exactSvd(d.delta, { vectors: true });
    method = 'exact';
  }
  const { rank, reached } = rankFor(policy, svd.s, d.frobSquared, maxRank);
  if (!reached) warnings.push(`${c.module}: target not reached within rank ${rank} (--max-rank)`);
  const floor = Math.min(limits.minRank ?? 0, maxRank);
  // --min-rank above the rank the adaptive basis stopped at: the truncated SVD at that rank.
  if (floor > svd.s.length) return fixedRank(d, c, floor, seed);
  return { r: Math.max(rank, floor), u: svd.u, s: svd.s, v: svd.v, method };
}

/** Columns per block of the adaptive basis: wide enough to run the products near full speed. */
const ADAPTIVE_BLOCK = 64;

/** The truncated SVD at rank r, by whichever route is cheaper. */
async function fixedRank(
  d: Delta,
  c: Candidate,
  r: number,
  seed: number,
): Promise<{ r: number; u?: Matrix; s: Float64Array; v?: Matrix; method: SpectrumMethod }> {
  if (r === 0) return { r: 0, s: new Float64Array(0), method: 'exact' };
  const exact = exactIsCheaper(c.m, c.n, r, { vectors: true });
  const svd = exact ? await exactSvd(d.delta, { vectors: true }) : await truncatedSvd(d.delta, { rank: r, seed });
  return { r, u: svd.u, s: svd.s, v: svd.v, method: exact ? 'exact' : 'randomized' };
}

/**
 * The largest k ≤ maxRank at which a randomized SVD with vectors still costs less than the
 * exact one (0 when the exact route is cheaper at every rank). exactIsCheaper grows with k,
 * so a bisection finds it in O(log maxRank) cost evaluations.
 */
function randomizedRankLimit(m: number, n: number, maxRank: number): number {
  if (exactIsCheaper(m, n, 1, { vectors: true })) return 0;
  if (!exactIsCheaper(m, n, maxRank, { vectors: true })) return maxRank;
  let lo = 1;
  let hi = maxRank;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (exactIsCheaper(m, n, mid, { vectors: true })) hi = mid;
    else lo = mid;
  }
  return lo;
}

/** One warning per clamped --rank and min(m, n), counting the modules, rather than one per module. */
function noteClamped(warnings: string[], rank: number, p: number, module: string): void {
  const head = `--rank ${rank} is above min(m, n) = ${p}; clamped to ${p}`;
  const i = warnings.findIndex((w) => w.startsWith(head));
  if (i < 0) {
    warnings.push(`${head} (${module})`);
    return;
  }
  const count = Number(/in (\d+) modules/.exec(warnings[i]!)?.[1] ?? 1) + 1;
  const first = /\(([^,)]+)/.exec(warnings[i]!)?.[1] ?? module;
  warnings[i] = `${head} in ${count} modules (${first}, …)`;
}

/** Model-level output errors of the calibrated factors and of the plain SVD at the same ranks. */
function calibrationSummary(
  cal: Awaited<ReturnType<typeof calibrateModules>>,
  modules: ExtractedModule[],
): NonNullable<ExtractionResult['calibration']> {
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
