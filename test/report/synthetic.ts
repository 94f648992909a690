/**
 * Analyze results built from planted spectra, no SVD: σ_i = a·e^{−(i−1)/τ} + floor for all
 * i ≤ min(m, n), so ‖ΔW‖², the energy curve and every rank threshold are known exactly.
 */
import type { AnalyzeResult, TensorSpectrum } from '../../src/analyze/types.js';

export const THRESHOLDS = [0.5, 0.9, 0.95, 0.99];

/** The full planted spectrum, descending. */
export function plantedSpectrum(n: number, a: number, tau: number, floor: number): Float64Array {
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) s[i] = a * Math.exp(-i / tau) + floor;
  return s;
}

/** A TensorSpectrum holding the top k of a planted spectrum; `full` is every value, for the truth. */
export function plantedTensor(
  name: string,
  shape: [number, number],
  opts: { a?: number; tau: number; floor?: number; k?: number; baseScale?: number },
): { spectrum: TensorSpectrum; full: Float64Array } {
  const { a = 1, tau, floor = 1e-3, baseScale = 0.02 } = opts;
  const n = Math.min(shape[0], shape[1]);
  const k = Math.min(opts.k ?? n, n);
  const full = plantedSpectrum(n, a, tau, floor);
  let total = 0;
  for (const v of full) total += v * v;
  const energy: number[] = [];
  let acc = 0;
  for (let i = 0; i < k; i++) {
    acc += full[i]! ** 2;
    energy.push(acc / total);
  }
  const rankAt: Record<string, number | null> = {};
  for (const t of THRESHOLDS) {
    const r = energy.findIndex((e) => e >= t);
    rankAt[String(t)] = r < 0 ? null : r + 1;
  }
  const deltaNorm = Math.sqrt(total);
  const baseNorm = baseScale * Math.sqrt(shape[0] * shape[1]);
  return {
    full,
    spectrum: {
      name,
      shape: [...shape],
      dtype: 'BF16',
      baseNorm,
      deltaNorm,
      relativeUpdate: deltaNorm / baseNorm,
      singularValues: Array.from(full.subarray(0, k)),
      bounds: { lower: Array.from(full.subarray(0, k)), upper: Array.from(full.subarray(0, k)) },
      leftOutEnergy: total - acc,
      complete: k === n,
      energy,
      rankAt,
      stableRank: total / full[0]! ** 2,
      effectiveRank: null,
      method: k === n ? 'exact' : 'randomized',
      refinement: null,
      seconds: 0.01,
    },
  };
}

export interface LlamaShape {
  layers: number;
  hidden: number;
  intermediate: number;
  kv: number;
  vocab: number;
  /** top k kept per tensor (undefined: complete spectra) */
  k?: number;
}

export const TINY: LlamaShape = { layers: 2, hidden: 64, intermediate: 176, kv: 32, vocab: 300 };
export const TINYLLAMA: LlamaShape = { layers: 22, hidden: 2048, intermediate: 5632, kv: 256, vocab: 32000, k: 300 };

const MODULES: [string, (s: LlamaShape) => [number, number], number][] = [
  ['self_attn.q_proj', (s) => [s.hidden, s.hidden], 6],
  ['self_attn.k_proj', (s) => [s.kv, s.hidden], 4],
  ['self_attn.v_proj', (s) => [s.kv, s.hidden], 10],
  ['self_attn.o_proj', (s) => [s.hidden, s.hidden], 14],
  ['mlp.gate_proj', (s) => [s.intermediate, s.hidden], 20],
  ['mlp.up_proj', (s) => [s.intermediate, s.hidden], 24],
  ['mlp.down_proj', (s) => [s.hidden, s.intermediate], 30],
];

/** A Llama-shaped result: 7 linear modules per layer, embed_tokens and lm_head, two norms as "others", one skipped tensor. */
export function llamaResult(shape: LlamaShape): { result: AnalyzeResult; full: Map<string, Float64Array> } {
  const full = new Map<string, Float64Array>();
  const tensors: TensorSpectrum[] = [];
  const add = (name: string, dims: [number, number], tau: number, a: number) => {
    const t = plantedTensor(name, dims, { tau, a, k: shape.k });
    tensors.push(t.spectrum);
    full.set(name, t.full);
  };
  add('model.embed_tokens.weight', [shape.vocab, shape.hidden], 3, 0.5);
  for (let l = 0; l < shape.layers; l++) {
    for (const [mod, dims, tau] of MODULES) {
      add(`model.layers.${l}.${mod}.weight`, dims(shape), tau * (1 + l / 3), 1 + l / 10);
    }
  }
  add('lm_head.weight', [shape.vocab, shape.hidden], 5, 0.8);
  const result: AnalyzeResult = {
    schemaVersion: 2,
    tool: { name: 'deltarank', version: '0.0.0-test' },
    base: 'models/base',
    tuned: 'models/tuned',
    thresholds: THRESHOLDS,
    tensors,
    others: [
      { name: 'model.norm.weight', shape: [shape.hidden], deltaNorm: 0.01, relativeUpdate: 0.0004 },
      { name: 'model.layers.0.input_layernorm.weight', shape: [shape.hidden], deltaNorm: 0.02, relativeUpdate: null },
    ],
    skipped: [{ name: 'model.extra_head.weight', reason: 'present in tuned only' }],
    seconds: 12.5,
  };
  return { result, full };
}
