/**
 * `compare`: a trained run (base, full fine-tune, LoRA at several ranks) against the LoRA
 * adapters extracted from its full fine-tune, on the task's target and source data, with the
 * LoRA paper's analyses (subspace similarity, Fig. 3; ‖Uᵀ W V‖_F, Table 7).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { analyzeCheckpoints, type AnalyzeResult } from '../analyze/index.js';
import { FormatError } from '../errors.js';
import { applyAdapter, extractAdapter, type ExtractOutput } from '../extract/index.js';
import { factoredSvd, type FactoredSvd } from '../svd/index.js';
import type { Adapter, LoraModule } from '../io/index.js';
import { loraScale, readAdapter } from '../io/index.js';
import type { Matrix } from '../svd/index.js';
import { leadingColumns, projectionNorm, randomOrthonormal, subspaceSimilarity, truncatedSvd } from '../svd/index.js';
import { evaluate, loadModel, type TaskName, type TrainMetrics } from '../train/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import type { ComparisonResult, ModuleSpectra, ProjectionRow, RankComparison, Scores, SimilarityGrid } from './types.js';

export interface CompareProgress {
  step: string;
  index: number;
  total: number;
}

export interface CompareOptions {
  /** Ranks to extract at (default: the ranks LoRA was trained at). */
  ranks?: number[];
  /** Replace extracted-r{R}/ folders left by an earlier compare. */
  force?: boolean;
  seed?: number;
  onProgress?: (p: CompareProgress) => void;
}

export interface CompareOutput extends ComparisonResult {
  /** The extraction at the largest rank, for the report's extraction view. */
  extraction: ExtractOutput;
}

/**
 * Compare the runs in `dir` (written by `train`): extracts LoRA from the full fine-tune at
 * each rank into `dir/extracted-r{R}/`, scores everything on both distributions.
 * @example const result = await compareRun('runs/mnist');
 */
export async function compareRun(dir: string, opts: CompareOptions = {}): Promise<CompareOutput> {
  const start = performance.now();
  const metrics = await readMetrics(dir);
  const task = metrics.task as TaskName;
  const trainedRuns = metrics.runs.filter((r) => r.kind === 'lora' && r.rank !== undefined);
  const ranks = [...new Set(opts.ranks ?? trainedRuns.map((r) => r.rank!))].sort((a, b) => a - b);
  const seed = opts.seed ?? 0;
  const steps = 3 + 2 * ranks.length;
  let step = 0;
  const tick = (name: string) => opts.onProgress?.({ step: name, index: ++step, total: steps });

  const base = await loadModel(task, join(dir, 'base'));
  const full = await loadModel(task, join(dir, 'full'));
  const score = async (weights: Map<string, Float32Array>): Promise<Scores> => {
    const [t, s] = [await evaluate(task, weights, 'target', { config: base.config }), await evaluate(task, weights, 'source', { config: base.config })];
    return { target: t.metric, source: s.metric, targetLoss: t.loss, sourceLoss: s.loss };
  };
  const count = (w: Map<string, Float32Array>) => [...w.values()].reduce((a, t) => a + t.length, 0);
  const baseScores = { ...(await score(base.weights)), params: count(base.weights) };
  const fullScores = { ...(await score(full.weights)), params: count(full.weights) };
  tick('base and full scored');

  const analysis = await analyzeCheckpoints(join(dir, 'base'), join(dir, 'full'), { exact: true, seed });
  tick('spectra of the full fine-tune');

  const trained = new Map<number, Adapter>();
  for (const run of trainedRuns) trained.set(run.rank!, await readAdapter(join(dir, run.name)));

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
    const lora = trained.get(rank);
    const run = trainedRuns.find((r) => r.rank === rank);
    rows.push({
      rank,
      trained: lora ? { ...(await score(await applyAdapter(base.weights, lora))), params: run!.trainableParams } : null,
      extracted: { ...(await score(await applyAdapter(base.weights, exAdapter))), params: ex.summary.loraParams, relativeError: ex.summary.relativeError },
    });
    tick(`scored rank ${rank}`);
  }
  if (!extraction) throw new FormatError(`${dir}: no LoRA ranks to compare (train with --ranks, or pass --ranks here)`);

  const products = loraProducts(trained);
  const spectra = moduleSpectra(analysis, products);
  const similarity = await similarities(base.weights, full.weights, trained, products, seed);
  const projections = await projectionTable(base.weights, products, seed);
  tick('subspace similarity and Table 7');

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
    spectra,
    similarity,
    projections,
    analysis,
    seconds: (performance.now() - start) / 1000,
    extraction,
  };
}

async function readMetrics(dir: string): Promise<TrainMetrics> {
  const file = join(dir, 'metrics.json');
  let doc: TrainMetrics;
  try {
    doc = JSON.parse(await readFile(file, 'utf8')) as TrainMetrics;
  } catch (err) {
    throw new FormatError(`${file}: cannot read the training metrics (${(err as Error).message}); is ${dir} a folder written by deltarank train?`, { cause: err });
  }
  if (!Array.isArray(doc.runs) || typeof doc.task !== 'string') throw new FormatError(`${file}: not a deltarank train metrics.json (no task or runs)`);
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
    out.set(rank, new Map(ad.modules.map((m) => {
      const f = factors(m);
      return [m.module, factoredSvd(f.b, f.a, loraScale(m, useRslora))];
    })));
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
      grids.push({ module: mHi.module, what: `trained LoRA r=${lo} vs r=${hi} (right singular vectors of A)`, rows, cols, phi: rows.map((i) => cols.map((j) => subspaceSimilarity(u1, u2, i, j))) });
    }
    const lora = products.get(hi)!.get(mHi.module)!;
    const d = delta(base, full, `${mHi.module}.weight`, mHi.outFeatures);
    const k = Math.min(64, d.rows, d.cols);
    const top = await truncatedSvd(d, { rank: k, seed });
    const rows = gridOf(lora.s.length);
    const cols = gridOf(k);
    grids.push({ module: mHi.module, what: `trained LoRA r=${hi} vs full fine-tune ΔW (left singular vectors)`, rows, cols, phi: rows.map((i) => cols.map((j) => subspaceSimilarity(lora.u, top.u, i, j))) });
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
async function projectionTable(base: Map<string, Float32Array>, products: Map<number, Map<string, FactoredSvd>>, seed: number): Promise<ProjectionRow[]> {
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
        fromRandom: await projectionNorm(randomOrthonormal(w.rows, r, seed + 1), w, randomOrthonormal(w.cols, r, seed + 2)),
        amplification: fromDelta > 0 ? Math.sqrt(deltaSq) / fromDelta : Infinity,
      });
    }
  }
  return rows;
}
