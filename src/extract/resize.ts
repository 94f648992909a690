/**
 * `resize`: re-rank an existing LoRA adapter through the SVD of each s·B·A computed from
 * its factors (QR of the factors, SVD of the small core), never forming the product.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, UsageError } from '../errors.js';
import type { DType, LoraModule } from '../io/index.js';
import { loraScale, readAdapter, writeAdapter, writeDirAtomically } from '../io/index.js';
import { factoredSvd } from '../svd/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { roundTo, splitFactors } from './factors.js';
import { type RankPolicy, rankFor } from './policy.js';

export interface ResizedModule {
  module: string;
  fromRank: number;
  rank: number;
  /** E(r) of the original product kept. */
  energy: number;
  /** ‖s·B·A − s'·B'·A'‖_F / ‖s·B·A‖_F, measured from the factors as written. */
  relativeError: number;
}

export interface ResizeResult {
  schemaVersion: 1;
  tool: { name: string; version: string };
  adapter: string;
  out: string;
  policy: RankPolicy & { maxRank?: number };
  modules: ResizedModule[];
  totalParams: number;
  warnings: string[];
}

/**
 * Re-rank every LoRA module of `adapterDir` by `policy` (rank, energy or error), into `outDir`,
 * with lora_alpha = r (scale 1, rsLoRA off) so the new factors hold the whole product.
 * Replacement weights (modules_to_save, saved biases and base embeddings) are carried over
 * unchanged under the keys they were saved under; lora_B.bias is rescaled to the new scale;
 * fan_in_fan_out is kept (the factors keep their Linear shapes either way). A DoRA module keeps
 * its magnitude: PEFT stores the magnitude alone and recomputes ‖W + s·B·A‖ from the factors at
 * every forward and merge, so the result is a DoRA adapter PEFT loads; its merged weight is
 * m ⊙ the direction of W + s'·B'·A', whose error the reported `relativeError` (of s·B·A) does not
 * measure, as it depends on W (a warning says so). A module cut to rank 0 is left out unless a
 * bias or a magnitude still needs it, where it keeps rank 1.
 * @example await resizeAdapter('lora-r64/', 'lora-r16/', { rank: 16 });
 */
export async function resizeAdapter(
  adapterDir: string,
  outDir: string,
  policy: RankPolicy,
  { maxRank, force, dtype }: { maxRank?: number; force?: boolean; dtype?: DType } = {},
): Promise<ResizeResult> {
  if ('budget' in policy) throw new UsageError('resize takes --rank, --energy or --error');
  if (maxRank !== undefined && !(Number.isInteger(maxRank) && maxRank >= 1))
    throw new UsageError(`--max-rank must be a positive integer, got ${maxRank}`);
  const adapter = await readAdapter(adapterDir);
  const { useRslora, fanInFanOut, useDora } = adapter.settings;
  if (adapter.paramModules.length > 0) {
    throw new FormatError(
      `${adapterDir}: "target_parameters" (LoRA on ${adapter.paramModules[0]!.owner} and other parameters): resize does not rewrite ParamWrapper factors; merge and analyze read them`,
    );
  }
  const outDtype: DType = dtype ?? adapter.factorDtype ?? adapter.fullWeights[0]?.dtype ?? 'F32';
  const modules: LoraModule[] = [];
  const report: ResizedModule[] = [];
  const warnings: string[] = [];
  if (useDora)
    warnings.push(
      `${adapterDir} is a DoRA adapter: magnitudes kept; the errors reported are of s·B·A, not of the merged weights (analyze BASE --adapter on both adapters shows those)`,
    );
  // A tied lm_head (ensure_weight_tying) is written from its resized embedding, transposed, as PEFT keeps it.
  const tiedTo = new Map(adapter.tied.map((t) => [t.module, t.source]));
  for (const m of adapter.modules) {
    if (tiedTo.has(m.module)) continue;
    const scale = loraScale(m, useRslora);
    // B·A is [out, in] for a linear and [dim, vocab] = ΔWᵀ for an embedding: PEFT's factor layout either way.
    const svd = factoredSvd(
      { rows: m.outFeatures, cols: m.rank, data: m.b },
      { rows: m.rank, cols: m.inFeatures, data: m.a },
      scale,
    );
    let frob = 0;
    for (const v of svd.s) frob += v * v;
    const cap = Math.min(maxRank ?? m.rank, svd.s.length);
    if ('rank' in policy && policy.rank > svd.s.length)
      warnings.push(
        `${m.module}: --rank ${policy.rank} is above the rank ${svd.s.length} of its product; kept at ${svd.s.length}`,
      );
    let { rank } = rankFor(policy, svd.s, frob, cap);
    if (rank === 0) {
      if (!m.bias && !m.magnitude) {
        warnings.push(`${m.module}: rank 0 (an all-zero product), left out`);
        continue;
      }
      // Its bias or magnitude still changes the model: keep the module, with a zero product of rank 1.
      rank = 1;
    }
    const split = splitFactors(svd.u, svd.s, svd.v, rank);
    const a = roundTo(outDtype, split.a);
    const b = roundTo(outDtype, split.b);
    // The new scale is 1 (alpha = r, no rsLoRA): the bias PEFT adds is scale · lora_B.bias.
    const bias = m.bias
      ? roundTo(
          outDtype,
          m.bias.map((v) => v * scale),
        )
      : undefined;
    const magnitude = m.magnitude ? roundTo(outDtype, m.magnitude) : undefined;
    const { bias: _b, magnitude: _m, ...rest } = m;
    modules.push({ ...rest, rank, alpha: rank, a, b, ...(bias ? { bias } : {}), ...(magnitude ? { magnitude } : {}) });
    let kept = 0;
    for (let j = 0; j < Math.min(rank, svd.s.length); j++) kept += svd.s[j]! ** 2;
    report.push({
      module: m.module,
      fromRank: m.rank,
      rank,
      energy: frob > 0 ? kept / frob : 1,
      relativeError: frob > 0 ? productDistance(m, scale, a, b, rank) / Math.sqrt(frob) : 0,
    });
  }
  const result: ResizeResult = {
    schemaVersion: SCHEMA_VERSION,
    tool: TOOL,
    adapter: adapterDir,
    out: outDir,
    policy: { ...policy, ...(maxRank !== undefined ? { maxRank } : {}) },
    modules: report,
    totalParams:
      modules.reduce((s, m) => s + m.rank * (m.inFeatures + m.outFeatures), 0) +
      adapter.fullWeights.reduce((s, w) => s + w.data.length, 0),
    warnings,
  };
  // Full weights go back under the keys PEFT saved them as (".base_layer.weight" beside an embedding LoRA,
  // ".base_layer.bias" of bias="lora_only"), with the config fields that announce them.
  const fullWeights = adapter.fullWeights.map((w, i) => ({ ...w, name: adapter.fullWeightKeys[i]! }));
  const carried: Record<string, unknown> = {};
  for (const field of ['modules_to_save', 'bias', 'ensure_weight_tying'])
    if (adapter.config[field] !== undefined) carried[field] = adapter.config[field];
  await writeDirAtomically(outDir, { force }, async (tmp) => {
    await writeAdapter(
      tmp,
      {
        modules,
        fullWeights,
        dtype: outDtype,
        useRslora: false,
        fanInFanOut,
        tiedModules: adapter.tied.filter((t) => modules.some((m) => m.module === t.source)),
        baseModel: (adapter.config['base_model_name_or_path'] as string | null | undefined) ?? null,
        taskType: (adapter.config['task_type'] as string | null | undefined) ?? null,
        extraConfig: carried,
      },
      { force: true },
    );
    await writeFile(join(tmp, 'resize.json'), JSON.stringify(result, null, 2) + '\n');
  });
  return result;
}

/**
 * ‖s·B·A − B'·A'‖_F without forming either product:
 * ‖X − Y‖² = ‖X‖² − 2⟨X, Y⟩ + ‖Y‖², each term a trace of small r×r' products, in f64.
 */
function productDistance(m: LoraModule, scale: number, a2: Float32Array, b2: Float32Array, r2: number): number {
  const r1 = m.rank;
  const out = m.outFeatures;
  const inF = m.inFeatures;
  // Gram-like blocks: Bᵢᵀ Bⱼ [ri, rj] over out, Aᵢ Aⱼᵀ [ri, rj] over in.
  const cross = (x: Float32Array, rx: number, y: Float32Array, ry: number, len: number, rowsAreLen: boolean) => {
    const g = new Float64Array(rx * ry);
    for (let i = 0; i < rx; i++)
      for (let j = 0; j < ry; j++) {
        let s = 0;
        for (let k = 0; k < len; k++)
          s += rowsAreLen ? x[k * rx + i]! * y[k * ry + j]! : x[i * len + k]! * y[j * len + k]!;
        g[i * ry + j] = s;
      }
    return g;
  };
  const trace = (p: Float64Array, q: Float64Array, rx: number, ry: number) => {
    let t = 0;
    for (let i = 0; i < rx; i++) for (let j = 0; j < ry; j++) t += p[i * ry + j]! * q[i * ry + j]!;
    return t;
  };
  const xx = scale * scale * trace(cross(m.b, r1, m.b, r1, out, true), cross(m.a, r1, m.a, r1, inF, false), r1, r1);
  const xy = scale * trace(cross(m.b, r1, b2, r2, out, true), cross(m.a, r1, a2, r2, inF, false), r1, r2);
  const yy = trace(cross(b2, r2, b2, r2, out, true), cross(a2, r2, a2, r2, inF, false), r2, r2);
  return Math.sqrt(Math.max(0, xx - 2 * xy + yy));
}
