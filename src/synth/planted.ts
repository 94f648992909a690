/**
 * The synthetic fine-tune: base weights W ~ N(0, 0.02²) (Llama's initializer range), and for
 * every 2-D tensor ΔW = U·diag(σ)·Vᵀ + N, U and V random orthonormal, σᵢ ∝ e^{−i/τ} for
 * i < R, N dense Gaussian noise carrying a fixed share of the energy, all scaled so that
 * ‖ΔW‖_F / ‖W‖_F hits a target near 1e-2. τ, R, the noise share and the target differ by
 * module kind and grow with depth, so the spectra tell apart attention from MLP and shallow
 * from deep layers. Norm weights sit near 1 and move by dense noise.
 */
import { Rng } from './random.js';
import type { ModuleKind, SynthTensor } from './shapes.js';

/**
 * Version of the generator: bumped whenever the same (shape, dtype, shards, seed) would give
 * different files, so that cached pairs are recognised as stale.
 */
export const SYNTH_GENERATOR_VERSION = 1;

/** Llama's initializer standard deviation. */
export const BASE_STD = 0.02;
/** Planted ranks stay at or under this: orthonormalising R columns costs O(m·R²), the product O(m·n·R). */
export const MAX_PLANTED_RANK = 64;

export interface ModulePlan {
  tensor: SynthTensor;
  /** R: number of planted directions. */
  plantedRank: number;
  /** τ of σᵢ ∝ e^{−i/τ}. */
  tau: number;
  /** ‖N‖_F² / ‖ΔW‖_F² as planted (the low-rank part and N are scaled to split the energy exactly so). */
  noiseShare: number;
  /** Target ‖ΔW‖_F / ‖W‖_F. */
  relativeUpdate: number;
}

const TAU: Record<Exclude<ModuleKind, 'norm'>, number> = {
  q_proj: 2,
  k_proj: 1.5,
  v_proj: 4,
  o_proj: 4,
  gate_proj: 8,
  up_proj: 6,
  down_proj: 10,
  embed_tokens: 3,
  lm_head: 5,
};
const NOISE_SHARE: Record<Exclude<ModuleKind, 'norm'>, number> = {
  q_proj: 0.03,
  k_proj: 0.03,
  v_proj: 0.03,
  o_proj: 0.03,
  gate_proj: 0.04,
  up_proj: 0.04,
  down_proj: 0.04,
  embed_tokens: 0.02,
  lm_head: 0.02,
};
/**
 * Targets near 1e-2 but not below: bf16 storage rounds W and W + ΔW apart, adding about
 * (0.0022 / relativeUpdate)² of the energy as dense noise, which at 0.5e-2 would drown the
 * planted spectrum (90 % energy no longer reached by the planted directions).
 */
const RELATIVE_UPDATE: Record<Exclude<ModuleKind, 'norm'>, number> = {
  q_proj: 0.012,
  k_proj: 0.012,
  v_proj: 0.016,
  o_proj: 0.016,
  gate_proj: 0.014,
  up_proj: 0.014,
  down_proj: 0.014,
  embed_tokens: 0.012,
  lm_head: 0.012,
};
/** Norm weights: base 1 + N(0, NORM_BASE_STD²), tuned adds N(0, NORM_DELTA_STD²). */
const NORM_BASE_STD = 0.05;
const NORM_DELTA_STD = 0.01;

/**
 * The planted parameters of a 2-D tensor (null for 1-D norm weights). Deterministic in
 * (tensor, numLayers, seed): deeper layers get a slower decay (τ × (1 + 1.5·depth)) and a
 * larger update (× (0.8 + 0.4·depth)), each with a ±10 % seeded jitter; embeddings and
 * lm_head take the base target.
 */
export function planModule(tensor: SynthTensor, numLayers: number, seed: number): ModulePlan | null {
  if (tensor.kind === 'norm') return null;
  const depth = tensor.layer === null || numLayers < 2 ? 0 : tensor.layer / (numLayers - 1);
  const rng = new Rng(seed, 'plan', tensor.name);
  const jitter = () => 0.9 + 0.2 * rng.uniform();
  const tau = Number((TAU[tensor.kind] * (1 + 1.5 * depth) * jitter()).toFixed(3));
  const [m, n] = tensor.shape as [number, number];
  const plantedRank = Math.min(MAX_PLANTED_RANK, m, n, Math.max(4, Math.ceil(4 * tau)));
  const growth = tensor.layer === null ? 1 : 0.8 + 0.4 * depth;
  const relativeUpdate = Number((RELATIVE_UPDATE[tensor.kind] * growth * jitter()).toPrecision(4));
  return { tensor, plantedRank, tau, noiseShare: NOISE_SHARE[tensor.kind], relativeUpdate };
}

/** The base tensor, f32, regenerated identically on every call. O(numel). */
export function baseWeights(tensor: SynthTensor, seed: number): Float32Array {
  const out = new Float32Array(tensor.shape.reduce((a, b) => a * b, 1));
  const rng = new Rng(seed, 'base', tensor.name);
  if (tensor.kind === 'norm') rng.fillNormal(out, NORM_BASE_STD, 1);
  else rng.fillNormal(out, BASE_STD);
  return out;
}

export interface Tuned {
  /** W + ΔW, f32 (written over the `base` array given). */
  tuned: Float32Array;
  /** Planted singular values σ₀ ≥ σ₁ ≥ … of the low-rank part (empty for norms). */
  singularValues: Float64Array;
  /** ‖N‖_F of the dense noise part. */
  noiseNorm: number;
}

/**
 * The tuned tensor: `base` (from baseWeights, overwritten) plus the planted ΔW. For an
 * [m, n] tensor: O(m·n·R) for the low-rank product, O((m + n)·R²) for the orthonormal bases.
 */
export function tunedWeights(tensor: SynthTensor, plan: ModulePlan | null, base: Float32Array, seed: number): Tuned {
  const rng = new Rng(seed, 'noise', tensor.name);
  if (plan === null) {
    const delta = new Float32Array(base.length);
    rng.fillNormal(delta, NORM_DELTA_STD);
    let sq = 0;
    for (let i = 0; i < base.length; i++) {
      sq += delta[i]! * delta[i]!;
      base[i]! += delta[i]!;
    }
    return { tuned: base, singularValues: new Float64Array(0), noiseNorm: Math.sqrt(sq) };
  }
  const [m, n] = tensor.shape as [number, number];
  const R = plan.plantedRank;
  let baseSq = 0;
  for (let i = 0; i < base.length; i++) baseSq += base[i]! * base[i]!;
  const target = plan.relativeUpdate ** 2 * baseSq;

  const sigma = new Float64Array(R);
  let sigmaSq = 0;
  for (let i = 0; i < R; i++) {
    sigma[i] = Math.exp(-i / plan.tau);
    sigmaSq += sigma[i]! * sigma[i]!;
  }
  const sigmaScale = Math.sqrt(((1 - plan.noiseShare) * target) / sigmaSq);
  for (let i = 0; i < R; i++) sigma[i]! *= sigmaScale;

  const delta = new Float32Array(base.length);
  rng.fillNormal(delta);
  let noiseSq = 0;
  for (let i = 0; i < delta.length; i++) noiseSq += delta[i]! * delta[i]!;
  const noiseScale = Math.sqrt((plan.noiseShare * target) / noiseSq);

  const ut = orthonormalRows(R, m, new Rng(seed, 'u', tensor.name));
  const vt = orthonormalRows(R, n, new Rng(seed, 'v', tensor.name));
  addLowRank(delta, m, n, ut, sigma, vt, noiseScale);
  for (let i = 0; i < base.length; i++) base[i]! += delta[i]!;
  // ‖c·N‖ = c·‖N‖, exact up to the f32 rounding of the scaled values.
  return { tuned: base, singularValues: sigma, noiseNorm: noiseScale * Math.sqrt(noiseSq) };
}

/**
 * R random orthonormal rows of length n, [R, n] row-major f64: Gaussian rows through
 * modified Gram–Schmidt run twice ("twice is enough", Giraud et al. 2005), orthonormal to
 * ~1e-15. O(R²·n).
 */
export function orthonormalRows(R: number, n: number, rng: Rng): Float64Array {
  const q = new Float64Array(R * n);
  rng.fillNormal(q);
  for (let r = 0; r < R; r++) {
    const row = q.subarray(r * n, (r + 1) * n);
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < r; p++) {
        const prev = q.subarray(p * n, (p + 1) * n);
        let dot = 0;
        for (let j = 0; j < n; j++) dot += prev[j]! * row[j]!;
        for (let j = 0; j < n; j++) row[j]! -= dot * prev[j]!;
      }
    }
    let norm = 0;
    for (let j = 0; j < n; j++) norm += row[j]! * row[j]!;
    norm = Math.sqrt(norm);
    for (let j = 0; j < n; j++) row[j]! /= norm;
  }
  return q;
}

/**
 * out[i, :] = out[i, :]·noiseScale + Σ_r ut[r, i]·σ_r·vt[r, :], row by row with an f64 row
 * accumulator; four ranks per sweep so each accumulator element is loaded and stored once
 * per four multiply-adds. [m, n] row-major out; ut [R, m]; vt [R, n]. O(m·n·R).
 */
function addLowRank(out: Float32Array, m: number, n: number, ut: Float64Array, sigma: Float64Array, vt: Float64Array, noiseScale: number): void {
  const R = sigma.length;
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    let r = 0;
    for (; r + 4 <= R; r += 4) {
      const a0 = ut[r * m + i]! * sigma[r]!;
      const a1 = ut[(r + 1) * m + i]! * sigma[r + 1]!;
      const a2 = ut[(r + 2) * m + i]! * sigma[r + 2]!;
      const a3 = ut[(r + 3) * m + i]! * sigma[r + 3]!;
      const o0 = r * n;
      const o1 = o0 + n;
      const o2 = o1 + n;
      const o3 = o2 + n;
      for (let j = 0; j < n; j++) acc[j]! += a0 * vt[o0 + j]! + a1 * vt[o1 + j]! + a2 * vt[o2 + j]! + a3 * vt[o3 + j]!;
    }
    for (; r < R; r++) {
      const a = ut[r * m + i]! * sigma[r]!;
      const o = r * n;
      for (let j = 0; j < n; j++) acc[j]! += a * vt[o + j]!;
    }
    const row = i * n;
    for (let j = 0; j < n; j++) out[row + j] = out[row + j]! * noiseScale + acc[j]!;
  }
}
