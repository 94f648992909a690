/**
 * Calibrated extraction on the built-in tasks: at the rank of a plain extraction, factors that
 * minimise ‖(ΔW − B·A)·X‖_F on the inputs X each Linear module meets on the task's training
 * examples (`extract --calibrate`'s mathematics, src/extract/calibrated-factors.ts), and the
 * output fidelity of a model to the full fine-tune (KL and top-1 agreement per prediction).
 */
import { applyAdapter, calibratedFactors, outputSpectrum } from '../extract/index.js';
import type { Adapter, LoraModule } from '../io/index.js';
import { loraScale } from '../io/index.js';
import { type Matrix, matmul } from '../svd/index.js';
import { inputGrams, type LinearCall, type Predictions, type TaskConfig, type TaskName } from '../train/index.js';
import type { CalibratedLayer, CalibrationInputs, Fidelity } from './types.js';

/**
 * Input rows (images, or characters of text windows) the Gram matrices are summed over: a few
 * thousand, as `extract --calibrate`'s default budget, enough for G of a 784-wide layer to be
 * well estimated and cheap enough for every rank of the demo.
 */
export const CALIBRATION_ROWS = 2048;

/**
 * The training examples calibration reads: all of them when they hold at most CALIBRATION_ROWS
 * rows, else ⌈CALIBRATION_ROWS / rowsPerExample⌉ evenly spaced ones (index ⌊i·size/n⌋).
 * @example calibrationExamples(4000, 1).length // 2048
 */
export function calibrationExamples(size: number, rowsPerExample: number): Int32Array {
  const n = Math.min(size, Math.max(1, Math.ceil(CALIBRATION_ROWS / rowsPerExample)));
  return Int32Array.from({ length: n }, (_, i) => Math.floor((i * size) / n));
}

export interface CalibratedExtraction {
  /** The plain adapter's modules with the calibrated ones' factors replaced (same rank, same alpha). */
  modules: LoraModule[];
  layers: CalibratedLayer[];
  /** Σ over calibrated layers of ‖ΔW·X‖², ‖(ΔW − B·A)·X‖² (calibrated) and the plain factors' own. */
  normSq: number;
  errSq: number;
  svdErrSq: number;
}

/**
 * Calibrated factors of every Linear module of `plain` that the forward pass calls, at each
 * module's plain rank. `inputs`: `tuned` reads X from the full fine-tune in one pass; `extracted`
 * from the base with the factors already chosen for earlier modules (one pass per distinct
 * input, in forward order), so later layers correct what earlier ones left. Modules the
 * forward pass does not call through a Linear (embeddings) keep their plain factors, and are
 * applied in the `extracted` passes.
 * Cost: one or a few forward passes over `examples`, and per module the output spectrum
 * (2·out·in·(in + out) flops) and two output errors.
 */
export async function calibrateExtraction(
  task: TaskName,
  config: TaskConfig,
  base: Map<string, Float32Array>,
  full: Map<string, Float32Array>,
  plain: Adapter,
  calls: LinearCall[],
  examples: Int32Array,
  { inputs, seed = 0 }: { inputs: CalibrationInputs; seed?: number },
): Promise<CalibratedExtraction> {
  const useRslora = plain.config['use_rslora'] === true;
  const called = new Set(calls.map((c) => c.module));
  const targets = new Map(
    plain.modules.filter((m) => m.kind === 'linear' && m.rank > 0 && called.has(m.module)).map((m) => [m.module, m]),
  );
  // Modules reading one input tensor form one group; groups in forward order.
  const groups: string[][] = [];
  const groupOf = new Map<number, string[]>();
  for (const c of calls) {
    if (!targets.has(c.module)) continue;
    let g = groupOf.get(c.input);
    if (!g) {
      groupOf.set(c.input, (g = []));
      groups.push(g);
    }
    if (!g.includes(c.module)) g.push(c.module);
  }
  const done = new Map<string, LoraModule>();
  const layers: CalibratedLayer[] = [];
  let normSq = 0;
  let errSq = 0;
  let svdErrSq = 0;
  const step = async (module: string, gram: Matrix, rows: number) => {
    const m = targets.get(module)!;
    const w = full.get(`${module}.weight`)!;
    const b0 = base.get(`${module}.weight`)!;
    const delta: Matrix = { rows: m.outFeatures, cols: m.inFeatures, data: w.map((x, i) => x - b0[i]!) };
    const r = m.rank;
    const sp = await outputSpectrum(delta, { gram, tokens: rows }, { rank: r, seed });
    const f = await calibratedFactors(delta, sp, r);
    const scale = loraScale(m, useRslora);
    const plainB = m.b.map((x) => x * scale);
    const cal = await residualErrors(delta, gram, f.a, f.b, r);
    const svd = await residualErrors(delta, gram, m.a, plainB, r);
    let outSq = 0;
    for (let i = 0; i < delta.data.length; i++) outSq += sp.deltaG.data[i]! * delta.data[i]!;
    const deltaSq = frobSq(delta.data);
    const rel = (x: number, y: number) => (y > 0 ? Math.sqrt(x / y) : 0);
    layers.push({
      module,
      rank: r,
      outputError: rel(cal.output, outSq),
      svdOutputError: rel(svd.output, outSq),
      weightError: rel(cal.weight, deltaSq),
      svdWeightError: rel(svd.weight, deltaSq),
      rows,
    });
    normSq += outSq;
    errSq += cal.output;
    svdErrSq += svd.output;
    // Stored with the plain module's alpha: B carries 1/scale so that s·B·A is the calibrated product.
    done.set(module, { ...m, a: f.a, b: f.b.map((x) => x / scale) });
  };
  if (inputs === 'tuned') {
    const grams = await inputGrams(task, full, config, new Set(targets.keys()), examples);
    for (const g of groups)
      for (const module of g) await step(module, grams.get(module)!.gram, grams.get(module)!.rows);
  } else {
    for (const g of groups) {
      // The model the adapter builds so far: calibrated factors before this group, plain ones where none is calibrated.
      const modules = plain.modules.flatMap((m) =>
        targets.has(m.module) ? (done.has(m.module) ? [done.get(m.module)!] : []) : [m],
      );
      const weights = await applyAdapter(base, { ...plain, modules });
      const grams = await inputGrams(task, weights, config, new Set(g), examples);
      for (const module of g) await step(module, grams.get(module)!.gram, grams.get(module)!.rows);
    }
  }
  return {
    modules: plain.modules.map((m) => done.get(m.module) ?? m),
    layers,
    normSq,
    errSq,
    svdErrSq,
  };
}

/**
 * Mean over predictions of KL(reference ‖ model) in nats and the share whose top-1 class
 * agrees, both in f64 from the log-probabilities.
 * @example fidelity(await predictions('mnist', full, c, 'target'), await predictions('mnist', w, c, 'target'))
 */
export function fidelity(reference: Predictions, model: Predictions): Fidelity {
  const { classes, predictions: n } = reference;
  const p = reference.logProbs;
  const q = model.logProbs;
  let kl = 0;
  let agree = 0;
  for (let i = 0; i < n; i++) {
    const o = i * classes;
    let row = 0;
    let bestP = 0;
    let bestQ = 0;
    for (let c = 0; c < classes; c++) {
      const lp = p[o + c]!;
      if (lp > -Infinity) row += Math.exp(lp) * (lp - q[o + c]!);
      if (lp > p[o + bestP]!) bestP = c;
      if (q[o + c]! > q[o + bestQ]!) bestQ = c;
    }
    kl += Math.max(0, row);
    if (bestP === bestQ) agree++;
  }
  return { kl: n > 0 ? kl / n : 0, top1: n > 0 ? agree / n : 1 };
}

function frobSq(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return s;
}

/**
 * ‖R‖_F² and ‖R·X‖_F² = ⟨R·G, R⟩ for the residual R = ΔW − B·A (B [out, r], A [r, in]), sums in
 * f64. Forming R first keeps small errors exact to f32 rounding of R; expanding ‖ΔW·X‖² − 2⟨…⟩ + …
 * cancels, and cannot resolve relative output errors below ≈ 3e-4 (√ of f32's ε).
 * Cost 2·out·in·(r + in) flops.
 */
async function residualErrors(
  delta: Matrix,
  gram: Matrix,
  a: Float32Array,
  b: Float32Array,
  r: number,
): Promise<{ weight: number; output: number }> {
  const ba = await matmul({ rows: delta.rows, cols: r, data: b }, { rows: r, cols: delta.cols, data: a });
  const res: Matrix = { rows: delta.rows, cols: delta.cols, data: delta.data.map((x, i) => x - ba.data[i]!) };
  const rg = await matmul(res, gram);
  let weight = 0;
  let output = 0;
  for (let i = 0; i < res.data.length; i++) {
    weight += res.data[i]! ** 2;
    output += rg.data[i]! * res.data[i]!;
  }
  return { weight, output: Math.max(0, output) };
}
