/**
 * `extract --calibrate`: input statistics G = XᵀX of every linear module of the decoder layers,
 * collected layer by layer on calibration text, and factors that minimise the output error there
 * (calibrated-factors.ts) beside the plain truncated SVD's at the same rank.
 *
 * The inputs X come from one of two models, run layer by layer (src/model):
 * - `tuned`: the fine-tune itself — the inputs the adapter will meet if the earlier layers were
 *   exact; the factors minimise ‖(ΔW − B·A)·X_t‖_F;
 * - `extracted`: the base with the factors of the earlier modules already chosen (and the tuned
 *   norms when they are saved whole) — the inputs X_a the adapter will really meet. The fine-tune
 *   runs beside it, and each module's factors fit the fine-tune's output W_t·X_t from X_a
 *   (correctingUpdate): ‖W_t·X_t − (W_b + B·A)·X_a‖_F, so later modules correct what earlier ones
 *   left. Fitting ΔW alone on X_a, as tuned inputs do, lost to plain SVD on held-out KL in 14 of 20
 *   cells of the Llama-style tiny fine-tunes; correcting wins all 28 (README).
 * Only the decoder layers' projections are calibrated; embeddings and lm_head keep the plain SVD.
 */
import { UsageError } from '../errors.js';
import type { Checkpoint, DType } from '../io/index.js';
import { openCheckpoint } from '../io/index.js';
import {
  type AppliedAdapter,
  applyLinear,
  type ForwardVariant,
  type LinearHook,
  layerModules,
  readModelArch,
  runDecoder,
} from '../model/index.js';
import { exactIsCheaper, exactSvd, type Matrix, matmul, truncatedSvd } from '../svd/index.js';
import {
  absoluteDamping,
  calibratedFactors,
  correctingUpdate,
  DEFAULT_DAMPING,
  type InputStats,
  outputErrorSquares,
  outputSpectrum,
} from './calibrated-factors.js';
import { residualNorm, roundTo, splitFactors } from './factors.js';
import { allocateBudget, type BudgetModule, type RankLimits, type RankPolicy, rankFor } from './policy.js';

/** Where the calibration inputs come from (see the module comment); `extracted` measured better (README). */
export type CalibrationInputs = 'tuned' | 'extracted';
export const DEFAULT_CALIBRATION_INPUTS: CalibrationInputs = 'extracted';
/** Most ranks per module the output spectrum is computed to for --energy/--error/--budget without --max-rank. */
const SPECTRUM_CAP = 256;

export interface CalibrationOptions {
  sequences: number[][];
  inputs?: CalibrationInputs;
  /** δ = damping · mean(diag G). */
  damping?: number;
}

export interface CalibratedModule {
  module: string;
  rank: number;
  /** Factors as written (rounded to the dtype). */
  a: Float32Array;
  b: Float32Array;
  /** ‖ΔW − B·A‖_F / ‖ΔW‖_F of these factors. */
  weightError: number;
  /**
   * ‖Y − B·A·X‖_F / ‖Y‖_F on the calibration inputs X (undamped), Y the module's target outputs:
   * ΔW·X, or with error correction W_t·X_t − W_b·X_a (the error left without this module's adapter).
   */
  outputError: number;
  /** The plain truncated SVD at the same rank, on the same inputs and target. */
  svdWeightError: number;
  svdOutputError: number;
  /** ‖Y‖_F², for model-level sums. */
  outputNormSq: number;
  /** σ of the plain SVD of ΔW (all of them when `svdMethod` is exact): extract's spectrum summary. */
  svdS: Float64Array;
  svdMethod: 'exact' | 'randomized';
}

export interface CalibrationResult {
  modules: Map<string, CalibratedModule>;
  inputs: CalibrationInputs;
  tokens: number;
  sequences: number;
  damping: number;
  warnings: string[];
}

export interface CalibrateRunOptions extends RankLimits, CalibrationOptions {
  policy: RankPolicy;
  /** Module paths to calibrate; others met in the layers keep their default output. */
  modules: Set<string>;
  dtype: DType;
  /** Norms saved whole: the `extracted` model uses the tuned norms, as the adapter will. */
  norms: 'full' | 'skip';
  seed?: number;
  onProgress?: (p: { phase: 'calibrate'; index: number; total: number; name: string }) => void;
}

/**
 * Calibrated factors of every module in `opts.modules` that lies in a decoder layer.
 * Cost: a forward pass over the calibration tokens of the fine-tune and, with `extracted` inputs,
 * of the extracted model beside it (one more pass of the fine-tune with --budget); the Gram
 * matrices (2·tokens·in² each, shared by modules reading the same input) and with `extracted`
 * inputs one Cholesky factor of each (in³/3, f64); per module 2·out·in·(in + out) flops for the
 * output spectrum and the plain SVD of ΔW, and with `extracted` inputs 6·tokens·in·out for the
 * target and 2·out·in² for M*.
 * @example const cal = await calibrateModules('base/', 'tuned/', { sequences, policy: { rank: 8 }, modules, dtype: 'BF16', norms: 'full' });
 */
export async function calibrateModules(
  basePath: string,
  tunedPath: string,
  opts: CalibrateRunOptions,
): Promise<CalibrationResult> {
  const inputs = opts.inputs ?? DEFAULT_CALIBRATION_INPUTS;
  const dampingFactor = opts.damping ?? DEFAULT_DAMPING;
  if (!(dampingFactor > 0)) throw new UsageError(`--calibrate-damping must be > 0, got ${dampingFactor}`);
  const arch = await readModelArch(tunedPath);
  const warnings: string[] = [];
  const base = await openCheckpoint(basePath);
  try {
    const tuned = await openCheckpoint(tunedPath);
    try {
      const layered = new Set<string>();
      for (let l = 0; l < arch.numLayers; l++) {
        const m = layerModules(arch, l);
        for (const name of [...m.qkv, m.o, ...m.gateUp, m.down]) if (opts.modules.has(name)) layered.add(name);
      }
      const seed = opts.seed ?? 0;
      let ranks: Map<string, number> | undefined;
      if ('budget' in opts.policy) {
        // First pass: every module's output spectrum on the fine-tune's inputs, then one allocation.
        const spectra = new Map<string, BudgetModule>();
        await collect(arch.numLayers, base, tuned, arch, opts, 'tuned', layered, async ({ module, delta, stats }) => {
          const cap = Math.min(opts.maxRank ?? SPECTRUM_CAP, delta.rows, delta.cols);
          const sp = await outputSpectrum(delta, stats, { rank: cap, damping: dampingFactor, vectors: false, seed });
          spectra.set(module, {
            cost: delta.rows + delta.cols,
            s: sp.energies.subarray(0, cap).map(Math.sqrt),
            frobSquared: sp.total,
            maxRank: cap,
          });
          return undefined;
        });
        const names = [...spectra.keys()];
        const got = allocateBudget(
          names.map((n) => spectra.get(n)!),
          opts.policy.budget,
          { relative: opts.policy.relative, minRank: opts.minRank ?? 1 },
        );
        ranks = new Map(names.map((n, i) => [n, got[i]!]));
      }

      const modules = new Map<string, CalibratedModule>();
      await collect(
        arch.numLayers,
        base,
        tuned,
        arch,
        opts,
        inputs,
        layered,
        async ({ module, delta, stats, x, y, cross }) => {
          const p = Math.min(delta.rows, delta.cols);
          const maxRank = Math.min(opts.maxRank ?? p, p);
          // The matrix the factors approximate in the G-weighted norm: ΔW, or the error-correcting M*.
          const update = cross
            ? await correctingUpdate(delta, cross, stats, absoluteDamping(stats.gram, dampingFactor))
            : delta;
          let r: number;
          let sp;
          if ('rank' in opts.policy || ranks) {
            r = ranks ? ranks.get(module)! : Math.min((opts.policy as { rank: number }).rank, maxRank);
            sp = await outputSpectrum(update, stats, { rank: Math.max(r, 1), damping: dampingFactor, seed });
          } else {
            sp = await outputSpectrum(update, stats, {
              rank: Math.min(maxRank, SPECTRUM_CAP),
              damping: dampingFactor,
              seed,
            });
            // energy / error in the output metric: Σ_{i≤r} σ_i² / ‖M·S‖² over the output-weighted spectrum.
            const s = sp.energies.map(Math.sqrt);
            const { rank, reached } = rankFor(opts.policy, s, sp.total, Math.min(maxRank, s.length));
            if (!reached) warnings.push(`${module}: calibrated target not reached within rank ${rank}`);
            r = Math.min(Math.max(rank, Math.min(opts.minRank ?? 0, p)), s.length);
          }
          if (r === 0) return { a: new Float32Array(0), b: new Float32Array(0), rank: 0 };
          const f = await calibratedFactors(update, sp, r);
          const a = roundTo(opts.dtype, f.a);
          const b = roundTo(opts.dtype, f.b);
          const out = await outputErrorSquares(x, y, a, b, r);
          // The plain truncated SVD at the same rank, measured the same way. extract takes its σ for the
          // spectrum summary rather than computing the same SVD again (its vectors are not needed there).
          const exact = exactIsCheaper(delta.rows, delta.cols, r, { vectors: true });
          const svd = exact ? await exactSvd(delta, { vectors: true }) : await truncatedSvd(delta, { rank: r, seed });
          const plain = splitFactors(svd.u!, svd.s, svd.v!, r);
          const pa = roundTo(opts.dtype, plain.a);
          const pb = roundTo(opts.dtype, plain.b);
          const plainOut = await outputErrorSquares(x, y, pa, pb, r);
          let deltaSq = 0;
          for (const v of delta.data) deltaSq += v * v;
          const norm = Math.sqrt(deltaSq);
          const rel = (x: number, y: number) => (y > 0 ? Math.sqrt(x / y) : 0);
          modules.set(module, {
            module,
            rank: r,
            a,
            b,
            weightError: norm > 0 ? (await residualNorm(delta, a, b, r, 1)) / norm : 0,
            outputError: rel(out.errSq, out.normSq),
            svdWeightError: norm > 0 ? (await residualNorm(delta, pa, pb, r, 1)) / norm : 0,
            svdOutputError: rel(plainOut.errSq, out.normSq),
            outputNormSq: out.normSq,
            svdS: svd.s,
            svdMethod: exact ? 'exact' : 'randomized',
          });
          return { a, b, rank: r };
        },
      );
      const tokens = opts.sequences.reduce((s, q) => s + q.length, 0);
      return { modules, inputs, tokens, sequences: opts.sequences.length, damping: dampingFactor, warnings };
    } finally {
      await tuned.close();
    }
  } finally {
    await base.close();
  }
}

interface ModuleInputs {
  module: string;
  /** ΔW = W_t − W_b [out, in]. */
  delta: Matrix;
  stats: InputStats;
  /** The module's inputs [tokens, in]. */
  x: Matrix;
  /** Its target outputs [tokens, out]: X·ΔWᵀ, or with error correction X_t·W_tᵀ − X_a·W_bᵀ. */
  y: Matrix;
  /** With error correction: C = Yᵀ·X_a [out, in] (Y·X_aᵀ in column form). */
  cross?: Matrix;
}

type ModuleStep = (m: ModuleInputs) => Promise<{ a: Float32Array; b: Float32Array; rank: number } | undefined>;

/**
 * One forward pass over the calibration tokens, calling `step` for each calibrated module with
 * its ΔW and the Gram matrix of its input. With `extracted` inputs the model is the base plus
 * the factors `step` returns, each applied as soon as it is chosen, and the fine-tune runs beside
 * it, a layer ahead of it (runDecoder runs each layer of the variants in turn), so each module
 * also gets its error-correcting target from the fine-tune's input X_t of the same tokens.
 */
async function collect(
  layers: number,
  base: Checkpoint,
  tuned: Checkpoint,
  arch: Awaited<ReturnType<typeof readModelArch>>,
  opts: CalibrateRunOptions,
  inputs: CalibrationInputs,
  modules: Set<string>,
  step: ModuleStep,
): Promise<void> {
  const grams = new WeakMap<Matrix, InputStats>();
  let done = 0;
  const adapter: AppliedAdapter = { lora: new Map(), full: new Map() };
  if (inputs === 'extracted' && opts.norms === 'full') {
    // The adapter saves the tuned norms whole; the model the later layers see has them too.
    for (const t of tuned.tensors)
      if (/norm\.weight$/.test(t.name) && base.has(t.name)) adapter.full.set(t.name, await tuned.readFloat32(t.name));
  }
  // The fine-tune's inputs of this layer's modules, held until the extracted model reaches them.
  const tunedInputs = new Map<string, Matrix>();
  const recordTuned: LinearHook = async ({ module, x, weights }) => {
    if (modules.has(module)) tunedInputs.set(module, x);
    return applyLinear(await weights(), x);
  };
  const hook: LinearHook = async ({ module, x, weights }) => {
    if (!modules.has(module)) return applyLinear(await weights(), x);
    let stats = grams.get(x);
    if (!stats) {
      // q/k/v (and gate/up) read the same input object: one Gram matrix for them.
      const gram = await matmul(x, x, { transA: true });
      grams.set(x, (stats = { gram, tokens: x.rows }));
    }
    const tw = await tuned.readFloat32(`${module}.weight`);
    const bw = await base.readFloat32(`${module}.weight`);
    const out = tw.length / x.cols;
    const xt = tunedInputs.get(module);
    tunedInputs.delete(module);
    for (let i = 0; i < tw.length; i++) tw[i]! -= bw[i]!;
    const delta: Matrix = { rows: out, cols: x.cols, data: tw };
    // Target outputs (weights only: a changed bias is carried apart, as lora_B.bias): Y = X·ΔWᵀ, or
    // with the fine-tune's inputs beside, Y = X_t·W_tᵀ − X_a·W_bᵀ = X_t·ΔWᵀ + (X_t − X_a)·W_bᵀ, summed
    // so as not to cancel two products of the size of W·X.
    const y = await matmul(xt ?? x, delta, { transB: true });
    let cross: Matrix | undefined;
    if (xt) {
      const drift = new Float32Array(xt.data);
      for (let i = 0; i < drift.length; i++) drift[i]! -= x.data[i]!;
      const yb = await matmul(
        { rows: x.rows, cols: x.cols, data: drift },
        { rows: out, cols: x.cols, data: bw },
        {
          transB: true,
        },
      );
      for (let i = 0; i < y.data.length; i++) y.data[i]! += yb.data[i]!;
      cross = await matmul(y, x, { transA: true });
    }
    const got = await step({ module, delta, stats, x, y, cross });
    opts.onProgress?.({ phase: 'calibrate', index: ++done, total: modules.size, name: module });
    if (inputs === 'extracted' && got && got.rank > 0) {
      adapter.lora.set(module, {
        a: { rows: got.rank, cols: delta.cols, data: got.a },
        b: { rows: delta.rows, cols: got.rank, data: got.b },
        scale: 1,
      });
    }
    return applyLinear(await weights(), x);
  };
  const variants: ForwardVariant[] =
    inputs === 'tuned'
      ? [{ checkpoint: tuned, linear: hook }]
      : [
          { checkpoint: tuned, linear: recordTuned },
          { checkpoint: base, adapter, linear: hook },
        ];
  // Only the layers are needed: the run's logits are never asked for.
  const run = await runDecoder({ ...arch, numLayers: layers }, variants, opts.sequences);
  run.release();
}
