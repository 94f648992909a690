/**
 * `compare`: a trained run (base, full fine-tune, LoRA variants at several ranks) against the LoRA
 * adapters extracted from its full fine-tune, on the task's target and source data, with the
 * LoRA paper's analyses (subspace similarity, Fig. 3; ‖Uᵀ W V‖_F, Table 7), DoRA's
 * magnitude/direction view (Fig. 2) and intruder dimensions (Shuttleworth et al. 2024).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AnalyzeResult, analyzeCheckpoints } from '../analyze/index.js';
import { baseLeftVectors, intruderCount } from '../analyze/intruders.js';
import { FormatError } from '../errors.js';
import { applyAdapter, DEFAULT_CALIBRATION_INPUTS, type ExtractOutput, extractAdapter } from '../extract/index.js';
import {
  type Adapter,
  type LoraModule,
  loraScale,
  readAdapter,
  writeAdapter,
  writeDirAtomically,
} from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import {
  type FactoredSvd,
  factoredSvd,
  leadingColumns,
  projectionNorm,
  randomOrthonormal,
  subspaceSimilarity,
  truncatedSvd,
} from '../svd/index.js';
import {
  evaluate,
  isTaskName,
  linearCalls,
  loadModel,
  loadTaskData,
  predictions,
  TASK_NAMES,
  type TaskName,
  type TrainMetrics,
  withTask,
} from '../train/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { calibrateExtraction, calibrationExamples, fidelity } from './calibrated.js';
import type {
  CalibrationInputs,
  ComparisonResult,
  DirectionSeries,
  FidelityScores,
  IntruderRow,
  ModuleSpectra,
  ProjectionRow,
  RankComparison,
  Scores,
  SimilarityGrid,
  VariantScores,
} from './types.js';

export interface CompareProgress {
  step: string;
  index: number;
  total: number;
}

export interface CompareOptions {
  /** Ranks to extract at (default: the ranks LoRA was trained at). */
  ranks?: number[];
  /** Replace extracted-r{R}/ and calibrated-r{R}/ folders left by an earlier compare. */
  force?: boolean;
  /** Where the calibrated extraction's inputs come from (default: extract --calibrate's). */
  calibrationInputs?: CalibrationInputs;
  seed?: number;
  onProgress?: (p: CompareProgress) => void;
}

export interface CompareOutput extends ComparisonResult {
  /** The extraction at the largest rank, for the report's extraction view. */
  extraction: ExtractOutput;
}

/**
 * Compare the runs in `dir` (written by `train`): extracts LoRA from the full fine-tune at
 * each rank into `dir/extracted-r{R}/` (plain truncated SVD) and `dir/calibrated-r{R}/` (factors
 * minimising the output error on the target task's training inputs), scores everything on both
 * distributions' test examples, and measures each extraction's fidelity to the full fine-tune.
 * @example const result = await compareRun('runs/mnist');
 */
export async function compareRun(dir: string, opts: CompareOptions = {}): Promise<CompareOutput> {
  const start = performance.now();
  const metrics = await readMetrics(dir);
  const task = metrics.task as TaskName;
  const adapterRuns = metrics.runs.filter((r) => r.kind === 'lora' && r.rank !== undefined);
  // Runs from before variants were recorded are plain LoRA.
  const variantOf = (r: (typeof adapterRuns)[number]) => r.variant ?? 'lora';
  const trainedRuns = adapterRuns.filter((r) => variantOf(r) === 'lora');
  const variants = [...new Set(adapterRuns.map(variantOf))];
  const ranks = [...new Set(opts.ranks ?? adapterRuns.map((r) => r.rank!))].sort((a, b) => a - b);
  const seed = opts.seed ?? 0;
  const steps = 5 + 3 * ranks.length;
  let step = 0;
  const tick = (name: string) => opts.onProgress?.({ step: name, index: ++step, total: steps });

  const base = await loadModel(task, join(dir, 'base'));
  const full = await loadModel(task, join(dir, 'full'));
  const score = async (weights: Map<string, Float32Array>): Promise<Scores> => {
    const [t, s] = [
      await evaluate(task, weights, 'target', { config: base.config }),
      await evaluate(task, weights, 'source', { config: base.config }),
    ];
    return { target: t.metric, source: s.metric, targetLoss: t.loss, sourceLoss: s.loss };
  };
  const count = (w: Map<string, Float32Array>) => [...w.values()].reduce((a, t) => a + t.length, 0);
  const baseScores = { ...(await score(base.weights)), params: count(base.weights) };
  const fullScores = { ...(await score(full.weights)), params: count(full.weights) };
  const reference = {
    target: await predictions(task, full.weights, base.config, 'target'),
    source: await predictions(task, full.weights, base.config, 'source'),
  };
  const fidelityOf = async (weights: Map<string, Float32Array>): Promise<FidelityScores> => ({
    target: fidelity(reference.target, await predictions(task, weights, base.config, 'target')),
    source: fidelity(reference.source, await predictions(task, weights, base.config, 'source')),
  });
  const baseFidelity = await fidelityOf(base.weights);
  tick('base and full scored');

  // Calibration reads the fine-tune's own training examples, never the test examples scored.
  const calibrationSet = (await loadTaskData(task, base.config)).target.train;
  const examples = calibrationExamples(calibrationSet.size, calibrationSet.batch(Int32Array.of(0)).labels.length);
  const calls = await linearCalls(task, base.weights, base.config);
  const calibrationInputs = opts.calibrationInputs ?? DEFAULT_CALIBRATION_INPUTS;

  const analysis = await analyzeCheckpoints(join(dir, 'base'), join(dir, 'full'), { exact: true, seed });
  tick('spectra of the full fine-tune');

  const trained = new Map<number, Adapter>();
  for (const run of trainedRuns) trained.set(run.rank!, await readAdapter(join(dir, run.name)));
  // Every variant's adapter merged onto the base (DoRA and lora_bias as PEFT merges them; PiSSA/OLoRA are saved converted).
  const mergedRuns = new Map<string, Map<string, Float32Array>>();
  for (const run of adapterRuns)
    mergedRuns.set(run.name, await applyAdapter(base.weights, await readAdapter(join(dir, run.name))));
  const variantScores = new Map<string, VariantScores>();
  for (const run of adapterRuns)
    variantScores.set(run.name, {
      variant: variantOf(run),
      run: run.name,
      params: run.trainableParams,
      ...(await score(mergedRuns.get(run.name)!)),
    });
  tick('trained variants scored');

  const rows: RankComparison[] = [];
  let extraction: ExtractOutput | undefined;
  for (const rank of ranks) {
    const ex = await extractAdapter(join(dir, 'base'), join(dir, 'full'), join(dir, `extracted-r${rank}`), {
      policy: { rank },
      dtype: 'F32',
      norms: 'skip',
      // The trained LoRA it is compared with has no bias: the extracted one carries none either.
      biases: 'skip',
      force: opts.force,
      seed,
    });
    extraction = ex;
    const exAdapter = await readAdapter(join(dir, `extracted-r${rank}`));
    tick(`extracted rank ${rank}`);
    const plainWeights = await applyAdapter(base.weights, exAdapter);
    const cal = await calibrateExtraction(task, base.config, base.weights, full.weights, exAdapter, calls, examples, {
      inputs: calibrationInputs,
      seed,
    });
    await writeDirAtomically(join(dir, `calibrated-r${rank}`), { force: opts.force }, (tmp) =>
      writeAdapter(tmp, {
        modules: cal.modules,
        dtype: 'F32',
        useRslora: exAdapter.config['use_rslora'] === true,
        baseModel: '../base',
        taskType: (exAdapter.config['task_type'] as string | null | undefined) ?? null,
        extraConfig: {
          deltarank_calibration: { inputs: calibrationInputs, examples: examples.length, split: 'target/train' },
        },
      }),
    );
    const calWeights = await applyAdapter(base.weights, { ...exAdapter, modules: cal.modules });
    tick(`calibrated rank ${rank}`);
    // Model-level weight error of the calibrated adapter: its own for calibrated modules, the plain one's elsewhere.
    let totalSq = 0;
    let calSq = 0;
    for (const m of ex.modules) {
      const layer = cal.layers.find((l) => l.module === m.module);
      totalSq += m.deltaNorm ** 2;
      calSq += ((layer ? layer.weightError : m.relativeError) * m.deltaNorm) ** 2;
    }
    const run = trainedRuns.find((r) => r.rank === rank);
    const plain = run ? variantScores.get(run.name)! : null;
    rows.push({
      rank,
      trained: plain
        ? {
            target: plain.target,
            source: plain.source,
            targetLoss: plain.targetLoss,
            sourceLoss: plain.sourceLoss,
            params: plain.params,
          }
        : null,
      variants: adapterRuns.filter((r) => r.rank === rank).map((r) => variantScores.get(r.name)!),
      extracted: {
        ...(await score(plainWeights)),
        params: ex.summary.loraParams,
        relativeError: ex.summary.relativeError,
        fidelity: await fidelityOf(plainWeights),
        outputError: cal.normSq > 0 ? Math.sqrt(cal.svdErrSq / cal.normSq) : 0,
      },
      calibrated: {
        ...(await score(calWeights)),
        params: ex.summary.loraParams,
        relativeError: totalSq > 0 ? Math.sqrt(calSq / totalSq) : 0,
        outputError: cal.normSq > 0 ? Math.sqrt(cal.errSq / cal.normSq) : 0,
        fidelity: await fidelityOf(calWeights),
        layers: cal.layers,
      },
    });
    tick(`scored rank ${rank}`);
  }
  if (!extraction)
    throw new FormatError(`${dir}: no LoRA ranks to compare (train LoRA at some \`ranks\`, or pass \`ranks\` here)`, {
      file: dir,
    });

  const products = loraProducts(trained);
  const spectra = moduleSpectra(analysis, products);
  const similarity = await similarities(base.weights, full.weights, trained, products, seed);
  const projections = await projectionTable(base.weights, products, seed);
  tick('subspace similarity and Table 7');
  const targets = metrics.config.loraTargets;
  const shapes = new Map(withTask(task, (spec) => spec.shapes(base.config as never)));
  const intruders = await intruderRows(
    base.weights,
    shapes,
    targets,
    [
      ['full', 'full', undefined, full.weights],
      ...adapterRuns.map((r) => [r.name, variantOf(r), r.rank, mergedRuns.get(r.name)!] as const),
    ],
    seed,
  );
  tick('intruder dimensions');
  const direction = directionSeries(
    metrics.runs
      .filter((r) => r.kind !== 'base')
      .map((r) => ({
        run: r.name,
        variant: r.kind === 'full' ? 'full' : variantOf(r),
        rank: r.rank,
        direction: r.direction,
      })),
  );

  return {
    schemaVersion: SCHEMA_VERSION,
    tool: TOOL,
    dir,
    task,
    metric: metrics.metric,
    backend: metrics.backend,
    base: baseScores,
    full: fullScores,
    ranks: rows,
    baseFidelity,
    calibration: {
      split: 'target',
      part: 'train',
      examples: examples.length,
      rows: cal0Rows(rows),
      inputs: calibrationInputs,
    },
    spectra,
    similarity,
    projections,
    variants,
    direction,
    intruders,
    analysis,
    seconds: (performance.now() - start) / 1000,
    extraction,
  };
}

/** Input rows the calibration read (the same for every module and rank). */
function cal0Rows(rows: RankComparison[]): number {
  return rows[0]?.calibrated.layers[0]?.rows ?? 0;
}

async function readMetrics(dir: string): Promise<TrainMetrics> {
  const file = join(dir, 'metrics.json');
  let doc: TrainMetrics;
  try {
    doc = JSON.parse(await readFile(file, 'utf8')) as TrainMetrics;
  } catch (err) {
    throw new FormatError(
      `${file}: cannot read the training metrics (${(err as Error).message}); is ${dir} a folder written by deltarank train?`,
      { cause: err },
    );
  }
  if (!Array.isArray(doc.runs) || typeof doc.task !== 'string')
    throw new FormatError(`${file}: not a deltarank train metrics.json (no task or runs)`);
  if (!isTaskName(doc.task))
    throw new FormatError(
      `${file}: unknown task "${doc.task}" (known: ${TASK_NAMES.join(', ')}); was it written by deltarank train?`,
    );
  return doc;
}

/** [out, in] of a LoRA module's ΔW as stored (embedding adapters hold the transpose). */
function factors(m: LoraModule): { b: Matrix; a: Matrix } {
  return { b: { rows: m.outFeatures, cols: m.rank, data: m.b }, a: { rows: m.rank, cols: m.inFeatures, data: m.a } };
}

function weight(weights: Map<string, Float32Array>, name: string, rows: number): Matrix {
  const data = weights.get(name);
  if (!data) throw new FormatError(`model has no tensor "${name}"`);
  return { rows, cols: data.length / rows, data };
}

function delta(base: Map<string, Float32Array>, full: Map<string, Float32Array>, name: string, rows: number): Matrix {
  const w = weight(base, name, rows);
  const t = weight(full, name, rows);
  return { rows, cols: w.cols, data: t.data.map((x, i) => x - w.data[i]!) };
}

/** SVD of every trained LoRA product s·B·A, by rank then module path, from the factors: computed once, used by every view. */
function loraProducts(trained: Map<number, Adapter>): Map<number, Map<string, FactoredSvd>> {
  const out = new Map<number, Map<string, FactoredSvd>>();
  for (const [rank, ad] of [...trained.entries()].sort((a, b) => a[0] - b[0])) {
    const useRslora = ad.config['use_rslora'] === true;
    out.set(
      rank,
      new Map(
        ad.modules.map((m) => {
          const f = factors(m);
          return [m.module, factoredSvd(f.b, f.a, loraScale(m, useRslora))];
        }),
      ),
    );
  }
  return out;
}

/** The full ΔW spectrum of each LoRA target (from the analysis) beside the spectra of the trained LoRA products. */
function moduleSpectra(analysis: AnalyzeResult, products: Map<number, Map<string, FactoredSvd>>): ModuleSpectra[] {
  const modules = [...([...products.values()][0]?.keys() ?? [])];
  return modules.map((module) => ({
    module,
    full: analysis.tensors.find((t) => t.name === `${module}.weight`)?.singularValues ?? [],
    trained: [...products.entries()].map(([rank, byModule]) => ({ rank, s: Array.from(byModule.get(module)!.s) })),
  }));
}

/** Right singular vectors [in, r] of a LoRA A matrix [r, in] (the input directions it reads). */
function rightVectorsOfA(m: LoraModule): Matrix {
  const r = m.rank;
  const eye = new Float32Array(r * r);
  for (let i = 0; i < r; i++) eye[i * r + i] = 1;
  return factoredSvd({ rows: r, cols: r, data: eye }, { rows: r, cols: m.inFeatures, data: m.a }, 1).v;
}

/**
 * φ between the trained LoRA at the smallest rank ≥ 8 (else the smallest) and the largest
 * (right singular vectors of A, as Fig. 3 of the LoRA paper), and between the largest trained
 * LoRA's product and the top singular directions of the full ΔW, for every module.
 */
async function similarities(
  base: Map<string, Float32Array>,
  full: Map<string, Float32Array>,
  trained: Map<number, Adapter>,
  products: Map<number, Map<string, FactoredSvd>>,
  seed: number,
): Promise<SimilarityGrid[]> {
  const ranks = [...trained.keys()].sort((a, b) => a - b);
  if (ranks.length === 0) return [];
  const hi = ranks.at(-1)!;
  const lo = ranks.find((r) => r >= 8 && r < hi) ?? ranks[0]!;
  const grids: SimilarityGrid[] = [];
  const adHi = trained.get(hi)!;
  const adLo = trained.get(lo)!;
  for (const mHi of adHi.modules) {
    const mLo = adLo.modules.find((x) => x.module === mHi.module);
    if (mLo && lo !== hi) {
      const [u1, u2] = [rightVectorsOfA(mLo), rightVectorsOfA(mHi)];
      const rows = Array.from({ length: lo }, (_, i) => i + 1);
      const cols = gridOf(hi);
      grids.push({
        module: mHi.module,
        what: `trained LoRA r=${lo} vs r=${hi} (right singular vectors of A)`,
        rows,
        cols,
        phi: rows.map((i) => cols.map((j) => subspaceSimilarity(u1, u2, i, j))),
      });
    }
    const lora = products.get(hi)!.get(mHi.module)!;
    const d = delta(base, full, `${mHi.module}.weight`, mHi.outFeatures);
    const k = Math.min(64, d.rows, d.cols);
    const top = await truncatedSvd(d, { rank: k, seed });
    const rows = gridOf(lora.s.length);
    const cols = gridOf(k);
    grids.push({
      module: mHi.module,
      what: `trained LoRA r=${hi} vs full fine-tune ΔW (left singular vectors)`,
      rows,
      cols,
      phi: rows.map((i) => cols.map((j) => subspaceSimilarity(lora.u, top.u, i, j))),
    });
  }
  return grids;
}

/** 1..n, thinned to at most ~24 values (all small ones, then spaced) to keep grids readable. */
function gridOf(n: number): number[] {
  if (n <= 24) return Array.from({ length: n }, (_, i) => i + 1);
  const out = new Set<number>();
  for (let i = 1; i <= 8; i++) out.add(i);
  for (let t = 0; t <= 16; t++) out.add(Math.round(8 * (n / 8) ** (t / 16)));
  return [...out].sort((a, b) => a - b);
}

/** LoRA paper Table 7 per module, for the trained LoRA at the smallest rank ≥ 4 and at the largest. */
async function projectionTable(
  base: Map<string, Float32Array>,
  products: Map<number, Map<string, FactoredSvd>>,
  seed: number,
): Promise<ProjectionRow[]> {
  const ranks = [...products.keys()];
  if (ranks.length === 0) return [];
  const chosen = [...new Set([ranks.find((r) => r >= 4) ?? ranks[0]!, ranks.at(-1)!])];
  const rows: ProjectionRow[] = [];
  for (const rank of chosen) {
    for (const [module, svd] of products.get(rank)!) {
      const w = weight(base, `${module}.weight`, svd.u.rows);
      const r = Math.min(rank, w.rows, w.cols);
      const u = leadingColumns(svd.u, r);
      const v = leadingColumns(svd.v, r);
      const topW = await truncatedSvd(w, { rank: r, seed });
      let deltaSq = 0;
      for (const x of svd.s) deltaSq += x * x;
      let wSq = 0;
      for (const x of w.data) wSq += x * x;
      const fromDelta = await projectionNorm(u, w, v);
      rows.push({
        module,
        rank,
        source: `trained LoRA r=${rank}`,
        deltaNorm: Math.sqrt(deltaSq),
        weightNorm: Math.sqrt(wSq),
        fromDelta,
        fromWeight: await projectionNorm(topW.u, w, topW.v),
        fromRandom: await projectionNorm(
          randomOrthonormal(w.rows, r, seed + 1),
          w,
          randomOrthonormal(w.cols, r, seed + 2),
        ),
        amplification: fromDelta > 0 ? Math.sqrt(deltaSq) / fromDelta : Infinity,
      });
    }
  }
  return rows;
}

/** Intruder counts of every tuned model's adapted layers against the base (the base's left vectors computed once per layer). */
async function intruderRows(
  base: Map<string, Float32Array>,
  shapes: Map<string, number[]>,
  targets: string[],
  tuned: readonly (readonly [string, string, number | undefined, Map<string, Float32Array>])[],
  seed: number,
): Promise<IntruderRow[]> {
  const rowsOf = (module: string) => {
    const shape = shapes.get(`${module}.weight`);
    if (!shape || shape.length !== 2) throw new FormatError(`model has no 2-D weight "${module}.weight"`);
    return shape[0]!;
  };
  const baseU = new Map<string, Matrix>();
  for (const module of targets)
    baseU.set(module, await baseLeftVectors(weight(base, `${module}.weight`, rowsOf(module))));
  const out: IntruderRow[] = [];
  for (const [run, variant, rank, weights] of tuned) {
    const layers = [];
    for (const module of targets) {
      const c = await intruderCount(weight(weights, `${module}.weight`, rowsOf(module)), baseU.get(module)!, { seed });
      layers.push({ module, count: c.count, margin: c.margin, maxCos: c.maxCos });
    }
    out.push({
      run,
      variant,
      ...(rank !== undefined ? { rank } : {}),
      layers,
      total: layers.reduce((n, l) => n + l.count, 0),
    });
  }
  return out;
}

/** DoRA Fig. 2 series from metrics.json: one per fine-tune, with the slope and correlation of ΔM on ΔD. */
function directionSeries(
  runs: {
    run: string;
    variant: string;
    rank?: number;
    direction?: { epoch: number; layers: { module: string; dM: number; dD: number }[] }[];
  }[],
): DirectionSeries[] {
  return runs
    .filter((r) => r.direction && r.direction.length > 0)
    .map((r) => {
      const points = r.direction!.flatMap((p) =>
        p.layers.map((l) => ({ epoch: p.epoch, module: l.module, dM: l.dM, dD: l.dD })),
      );
      const { slope, correlation } = fitLine(
        points.map((p) => p.dD),
        points.map((p) => p.dM),
      );
      return {
        run: r.run,
        variant: r.variant,
        ...(r.rank !== undefined ? { rank: r.rank } : {}),
        points,
        slope,
        correlation,
      };
    });
}

/** Least-squares slope of y on x and Pearson r, in f64; nulls when x has no spread. */
function fitLine(x: number[], y: number[]): { slope: number | null; correlation: number | null } {
  const n = x.length;
  if (n < 2) return { slope: null, correlation: null };
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
    sxy += (x[i]! - mx) * (y[i]! - my);
  }
  if (!(sxx > 0)) return { slope: null, correlation: null };
  return { slope: sxy / sxx, correlation: syy > 0 ? sxy / Math.sqrt(sxx * syy) : null };
}
