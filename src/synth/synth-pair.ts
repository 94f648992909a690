/**
 * `deltarank synth`: a Llama-shaped base/tuned pair with a planted ΔW spectrum, written
 * tensor by tensor (memory: a few copies of the largest tensor), plus synth.json recording
 * every planted parameter and the exact norms of what was stored.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import {
  type DType,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  isFloatDType,
  type TensorSpec,
  writeCheckpoint,
  writeDirAtomically,
} from '../io/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { baseWeights, type ModulePlan, planModule, SYNTH_GENERATOR_VERSION, tunedWeights } from './planted.js';
import { llamaConfig, llamaTensors, SYNTH_SHAPES, type SynthShapeName, type SynthTensor } from './shapes.js';

export interface SynthOptions {
  shape: SynthShapeName;
  /** Storage dtype of every tensor (default BF16). */
  dtype?: DType;
  /** Shards per side (default 1: a single model.safetensors). */
  shards?: number;
  seed?: number;
  /** Replace an existing output folder. */
  force?: boolean;
  /** A full fine-tune's high-rank ΔW (dense, power-law energy profile) instead of planted low-rank directions. */
  highRank?: boolean;
  /** Called after each tensor written; `total` counts both sides. */
  onProgress?: (done: number, total: number, name: string) => void;
}

/** One 2-D tensor's entry in synth.json. */
export interface PlantedModule {
  name: string;
  shape: number[];
  /** `decaying` (R planted directions over noise) or `power-law` (high-rank, `--high-rank`). */
  spectrum: 'decaying' | 'power-law';
  plantedRank: number;
  /** τ of the decay, or the exponent of d_j² ∝ (1 + j)^−τ for power-law. */
  tau: number;
  noiseShare: number;
  /** Target ‖ΔW‖_F / ‖W‖_F. */
  relativeUpdate: number;
  /** Planted singular values of the low-rank part, descending (f32 before storage rounding); empty for power-law. */
  singularValues: number[];
  /** ‖N‖_F of the dense noise as planted. */
  noiseNorm: number;
  /** ‖W_tuned − W_base‖_F of the stored tensors, as a reader widening them to f32 sees them. */
  deltaNorm: number;
  /** ‖W_base‖_F of the stored tensor. */
  baseNorm: number;
}

/** synth.json. */
export interface SynthManifest {
  schemaVersion: number;
  tool: { name: string; version: string };
  /** SYNTH_GENERATOR_VERSION of the code that wrote the pair. */
  generatorVersion: number;
  shape: SynthShapeName;
  seed: number;
  dtype: DType;
  shards: number;
  /** Whether ΔW is high-rank (`--high-rank`). */
  highRank: boolean;
  config: Record<string, unknown>;
  modules: PlantedModule[];
  /** 1-D tensors (norm weights), changed by dense noise. */
  others: { name: string; shape: number[]; deltaNorm: number; baseNorm: number }[];
}

/** Values per chunk when narrowing with statistics: bounded scratch memory. */
const CHUNK = 1 << 16;

/**
 * Narrow `tuned` to `dtype` bytes and measure, in f64, ‖stored tuned − stored base‖² and
 * ‖stored base‖² from the values a reader will widen back. O(n), chunked scratch.
 */
function narrowWithNorms(
  dtype: DType,
  base: Float32Array,
  tuned: Float32Array,
): { bytes: Uint8Array; deltaSq: number; baseSq: number } {
  let deltaSq = 0;
  let baseSq = 0;
  if (dtype === 'F32' || dtype === 'F64') {
    for (let i = 0; i < base.length; i++) {
      const d = tuned[i]! - base[i]!;
      deltaSq += d * d;
      baseSq += base[i]! * base[i]!;
    }
    const bytes =
      dtype === 'F32'
        ? new Uint8Array(tuned.buffer, tuned.byteOffset, tuned.byteLength)
        : new Uint8Array(Float64Array.from(tuned).buffer);
    return { bytes, deltaSq, baseSq };
  }
  const encode = dtype === 'BF16' ? encodeBf16 : encodeF16;
  const decode = dtype === 'BF16' ? decodeBf16 : decodeF16;
  const out = new Uint16Array(tuned.length);
  const baseHalf = new Uint16Array(CHUNK);
  const wb = new Float32Array(CHUNK);
  const wt = new Float32Array(CHUNK);
  for (let start = 0; start < tuned.length; start += CHUNK) {
    const end = Math.min(tuned.length, start + CHUNK);
    const k = end - start;
    const tunedHalf = out.subarray(start, end);
    encode(tuned.subarray(start, end), tunedHalf);
    encode(base.subarray(start, end), baseHalf.subarray(0, k));
    decode(tunedHalf, wt);
    decode(baseHalf.subarray(0, k), wb);
    for (let i = 0; i < k; i++) {
      const d = wt[i]! - wb[i]!;
      deltaSq += d * d;
      baseSq += wb[i]! * wb[i]!;
    }
  }
  return { bytes: new Uint8Array(out.buffer), deltaSq, baseSq };
}

/**
 * Write `out/base`, `out/tuned` (each with config.json and its safetensors) and `out/synth.json`,
 * atomically (an existing `out` needs `force`). Deterministic for (shape, dtype, shards, seed).
 * Cost: generating the base twice (once per side) and one rank-R product per 2-D tensor;
 * tinyllama takes a few minutes on 2 cores.
 * @example const manifest = await writeSynthPair('pairs/tiny', { shape: 'tiny', dtype: 'F32', seed: 1 });
 */
export async function writeSynthPair(out: string, opts: SynthOptions): Promise<SynthManifest> {
  const { shape: shapeName, dtype = 'BF16', shards = 1, seed = 0, force = false, highRank = false, onProgress } = opts;
  const shape = SYNTH_SHAPES[shapeName];
  if (!shape)
    throw new UsageError(`\`shape\` "${shapeName}" is not known; known: ${Object.keys(SYNTH_SHAPES).join(', ')}`, {
      option: 'shape',
    });
  if (!isFloatDType(dtype))
    throw new UsageError(`\`dtype\` ${dtype} is not a float dtype, and synth writes float weights`, {
      option: 'dtype',
    });
  if (!Number.isSafeInteger(seed)) throw new UsageError(`\`seed\` must be an integer, got ${seed}`, { option: 'seed' });
  const tensors = llamaTensors(shape);
  const plans = new Map<string, ModulePlan | null>(
    tensors.map((t) => [t.name, planModule(t, shape.numLayers, seed, { highRank })]),
  );
  const specs: TensorSpec[] = tensors.map((t) => ({ name: t.name, dtype, shape: t.shape }));
  const config = llamaConfig(shape, dtype);
  const total = 2 * tensors.length;
  let done = 0;
  const modules: PlantedModule[] = [];
  const others: SynthManifest['others'] = [];

  const baseSource = (_spec: TensorSpec, i: number) => {
    const w = baseWeights(tensors[i]!, seed);
    onProgress?.(++done, total, tensors[i]!.name);
    return w;
  };
  const tunedSource = (_spec: TensorSpec, i: number) => {
    const t: SynthTensor = tensors[i]!;
    const plan = plans.get(t.name) ?? null;
    const base = baseWeights(t, seed);
    const baseCopy = base.slice();
    const { tuned, singularValues, noiseNorm } = tunedWeights(t, plan, base, seed);
    const { bytes, deltaSq, baseSq } = narrowWithNorms(dtype, baseCopy, tuned);
    if (plan) {
      modules.push({
        name: t.name,
        shape: t.shape,
        spectrum: plan.spectrum,
        plantedRank: plan.plantedRank,
        tau: plan.tau,
        noiseShare: plan.noiseShare,
        relativeUpdate: plan.relativeUpdate,
        singularValues: [...singularValues],
        noiseNorm,
        deltaNorm: Math.sqrt(deltaSq),
        baseNorm: Math.sqrt(baseSq),
      });
    } else {
      others.push({ name: t.name, shape: t.shape, deltaNorm: Math.sqrt(deltaSq), baseNorm: Math.sqrt(baseSq) });
    }
    onProgress?.(++done, total, t.name);
    return bytes;
  };

  return writeDirAtomically(out, { force }, async (tmp) => {
    const metadata = { format: 'pt' };
    const configText = JSON.stringify(config, null, 2) + '\n';
    await writeCheckpoint(join(tmp, 'base'), specs, baseSource, { shards, metadata });
    await writeFile(join(tmp, 'base', 'config.json'), configText);
    await writeCheckpoint(join(tmp, 'tuned'), specs, tunedSource, { shards, metadata });
    await writeFile(join(tmp, 'tuned', 'config.json'), configText);
    const manifest: SynthManifest = {
      schemaVersion: SCHEMA_VERSION,
      tool: TOOL,
      generatorVersion: SYNTH_GENERATOR_VERSION,
      shape: shapeName,
      seed,
      dtype,
      shards,
      highRank,
      config,
      modules,
      others,
    };
    await writeFile(join(tmp, 'synth.json'), JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  });
}
