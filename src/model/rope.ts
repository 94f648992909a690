/**
 * Rotary position embeddings (Su et al. 2021, RoFormer) as transformers computes them: inverse
 * frequencies θ^(−2i/d) in f32, angles pos·freq rounded to f32, the rotate-half layout (the
 * first d/2 dimensions pair with the last d/2), and the `linear` and `llama3` rescalings.
 */
import type { RopeConfig } from './config.js';

/** cos/sin tables [positions, rotaryDim/2] (the half repeats), f32. */
export interface RopeTables {
  half: number;
  cos: Float32Array;
  sin: Float32Array;
}

/** Inverse frequencies [rotaryDim/2] after the config's rescaling, rounded to f32 like torch. */
export function inverseFrequencies(rope: RopeConfig): Float32Array {
  const dim = rope.rotaryDim;
  const half = dim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(rope.theta ** Math.fround((2 * i) / dim)));
  if (rope.type === 'linear') for (let i = 0; i < half; i++) inv[i] = Math.fround(inv[i]! / rope.factor);
  if (rope.type === 'llama3') {
    // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
    const old = rope.originalMaxPositions;
    const lowWave = old / rope.lowFreqFactor;
    const highWave = old / rope.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wave = (2 * Math.PI) / f;
      let g = wave > lowWave ? f / rope.factor : f;
      if (!(wave < highWave) && !(wave > lowWave)) {
        const smooth = (old / wave - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
        g = (1 - smooth) * (g / rope.factor) + smooth * g;
      }
      inv[i] = Math.fround(g);
    }
  }
  return inv;
}

/** Tables for positions 0..positions-1. Cost positions · rotaryDim/2 cos and sin. */
export function ropeTables(rope: RopeConfig, positions: number): RopeTables {
  const inv = inverseFrequencies(rope);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]!);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { half, cos, sin };
}

/**
 * Rotate, in place, every head of `x` [tokens, heads·headDim] (row-major), token t at position
 * positions[t]: (x₁, x₂) ← (x₁·cos − x₂·sin, x₂·cos + x₁·sin) on the first rotaryDim dimensions.
 */
export function applyRope(
  x: Float32Array,
  heads: number,
  headDim: number,
  positions: ArrayLike<number>,
  t: RopeTables,
): void {
  const { half, cos, sin } = t;
  const width = heads * headDim;
  for (let tok = 0; tok < positions.length; tok++) {
    const off = positions[tok]! * half;
    for (let h = 0; h < heads; h++) {
      const base = tok * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        const c = cos[off + i]!;
        const s = sin[off + i]!;
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}
