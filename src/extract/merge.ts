/**
 * `merge`: apply a LoRA adapter to its base, W + s·B·A, written in the base's sharding and names.
 * DoRA adapters (lora_magnitude_vector m) merge as PEFT does, m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per
 * output row; lora_bias adds s·bias to the layer's bias.
 */
import { copyFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ShapeError } from '../errors.js';
import type { Adapter, LoraModule, TensorInfo } from '../io/index.js';
import { loraScale, openCheckpoint, readAdapter, writeDirAtomically, writeSafetensors } from '../io/index.js';
import { matmul } from '../svd/index.js';

export interface MergeOptions {
  force?: boolean;
  onProgress?: (p: { index: number; total: number; name: string }) => void;
}

export interface MergeResult {
  out: string;
  files: string[];
  /** Tensors changed by a LoRA product. */
  merged: string[];
  /** Tensors replaced whole (modules_to_save). */
  replaced: string[];
  /** Tensors copied byte for byte. */
  copied: number;
}

/** Files of a model folder that travel with the weights (config, tokenizer, …). */
const COPIED_FILE = /\.(json|txt|model|py|md|jinja)$/;

/**
 * Merge `adapterDir` into `basePath`, writing `outDir` with the same shard files and tensor names,
 * each tensor in its base dtype; other small files of the base folder (config.json, tokenizer…) are copied.
 * @example await mergeAdapter('llama/', 'lora/', 'llama-merged/');
 */
export async function mergeAdapter(basePath: string, adapterDir: string, outDir: string, opts: MergeOptions = {}): Promise<MergeResult> {
  const adapter = await readAdapter(adapterDir);
  const useRslora = adapter.config['use_rslora'] === true;
  const base = await openCheckpoint(basePath);
  try {
    const lora = new Map<string, LoraModule>(adapter.modules.map((m) => [`${m.module}.weight`, m]));
    const loraBias = new Map<string, LoraModule>(adapter.modules.filter((m) => m.bias).map((m) => [`${m.module}.bias`, m]));
    for (const [name, m] of loraBias) {
      if (!base.has(name)) throw new ShapeError(`adapter module ${m.module} has lora_bias but ${basePath} has no "${name}" to merge it into`);
    }
    const full = new Map(adapter.fullWeights.map((w) => [w.name, w]));
    for (const [name, m] of lora) {
      if (!base.has(name)) throw new ShapeError(`adapter module ${m.module} has no weight "${name}" in ${basePath}: adapter and base are of different models`);
      const shape = base.info(name).shape;
      const want = m.kind === 'embedding' ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
      if (shape.length !== 2 || shape[0] !== want[0] || shape[1] !== want[1]) {
        throw new ShapeError(`adapter module ${m.module} is [${want.join(', ')}] but ${name} in ${basePath} is [${shape.join(', ')}]`);
      }
    }
    for (const [name, w] of full) {
      if (!base.has(name)) throw new ShapeError(`adapter replaces "${name}", which ${basePath} does not have`);
      const shape = base.info(name).shape;
      if (shape.join(',') !== w.shape.join(',')) {
        throw new ShapeError(`adapter replaces ${name} with [${w.shape.join(', ')}] but the base has [${shape.join(', ')}] (a resized vocabulary: resize the base first)`);
      }
    }

    const byFile = new Map<string, TensorInfo[]>();
    for (const t of base.tensors) byFile.set(t.file, [...(byFile.get(t.file) ?? []), t]);
    const merged: string[] = [];
    const replaced: string[] = [];
    let copied = 0;
    let done = 0;
    const total = base.tensors.length;
    const files: string[] = [];
    await writeDirAtomically(outDir, { force: opts.force }, async (tmp) => {
      for (const [file, tensors] of byFile) {
        const name = basename(file);
        files.push(name);
        await writeSafetensors(
          join(tmp, name),
          tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
          async (spec) => {
            opts.onProgress?.({ index: ++done, total, name: spec.name });
            const m = lora.get(spec.name);
            if (m) {
              merged.push(spec.name);
              return addProduct(await base.readFloat32(spec.name), m, loraScale(m, useRslora));
            }
            const mb = loraBias.get(spec.name);
            if (mb) {
              merged.push(spec.name);
              return addBias(await base.readFloat32(spec.name), mb, loraScale(mb, useRslora));
            }
            const w = full.get(spec.name);
            if (w) {
              replaced.push(spec.name);
              return w.data;
            }
            copied++;
            return base.readRaw(spec.name);
          },
          { metadata: base.metadata },
        );
      }
      if (byFile.size > 1) {
        const weightMap: Record<string, string> = {};
        for (const t of base.tensors) weightMap[t.name] = basename(t.file);
        const totalSize = base.tensors.reduce((s, t) => s + t.byteLength, 0);
        await writeFile(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
      }
      // A model folder's config and tokenizer travel with its weights; a lone file's neighbours do not.
      const isModel = basePath.endsWith('.json') || (await stat(basePath)).isDirectory();
      if (isModel) await copySideFiles(base.files[0]!, tmp, new Set([...files, 'model.safetensors.index.json']));
    });
    return { out: outDir, files, merged, replaced, copied };
  } finally {
    await base.close();
  }
}

/**
 * An adapter applied to weights held in memory (name → f32, PyTorch layout): a new map,
 * the input untouched. For small models (compare, tests); `mergeAdapter` streams big ones.
 */
export async function applyAdapter(weights: Map<string, Float32Array>, adapter: Adapter): Promise<Map<string, Float32Array>> {
  const useRslora = adapter.config['use_rslora'] === true;
  const out = new Map(weights);
  for (const m of adapter.modules) {
    const name = `${m.module}.weight`;
    const w = weights.get(name);
    if (!w) throw new ShapeError(`adapter module ${m.module} has no weight "${name}" in the model`);
    if (w.length !== m.inFeatures * m.outFeatures) throw new ShapeError(`adapter module ${m.module} is ${m.outFeatures}×${m.inFeatures} but ${name} holds ${w.length} values`);
    out.set(name, await addProduct(w.slice(), m, loraScale(m, useRslora)));
    if (m.bias) {
      const b = weights.get(`${m.module}.bias`);
      if (!b) throw new ShapeError(`adapter module ${m.module} has lora_bias but the model has no "${m.module}.bias"`);
      out.set(`${m.module}.bias`, addBias(b.slice(), m, loraScale(m, useRslora)));
    }
  }
  for (const f of adapter.fullWeights) {
    if (!weights.has(f.name)) throw new ShapeError(`adapter replaces "${f.name}", which the model does not have`);
    out.set(f.name, f.data);
  }
  return out;
}

/** W + scale·B·A (embedding: W + scale·(B·A)ᵀ), in place on `w`. */
async function addProduct(w: Float32Array, m: LoraModule, scale: number): Promise<Float32Array> {
  const r = m.rank;
  const a = { rows: r, cols: m.inFeatures, data: m.a };
  const b = { rows: m.outFeatures, cols: r, data: m.b };
  const p = m.kind === 'embedding' ? await matmul(a, b, { transA: true, transB: true }) : await matmul(b, a);
  for (let i = 0; i < w.length; i++) w[i]! += scale * p.data[i]!;
  if (m.magnitude) {
    // DoRA: each output row of W + s·B·A rescaled to its trained magnitude (norms in f64).
    const cols = m.inFeatures;
    for (let o = 0; o < m.outFeatures; o++) {
      let sq = 0;
      for (let j = o * cols; j < (o + 1) * cols; j++) sq += w[j]! * w[j]!;
      const f = m.magnitude[o]! / Math.sqrt(sq);
      for (let j = o * cols; j < (o + 1) * cols; j++) w[j]! *= f;
    }
  }
  return w;
}

/** b + scale·lora_B.bias, in place on `b`. */
function addBias(b: Float32Array, m: LoraModule, scale: number): Float32Array {
  if (b.length !== m.outFeatures) throw new ShapeError(`adapter module ${m.module} has lora_bias [${m.outFeatures}] but the bias holds ${b.length} values`);
  for (let i = 0; i < b.length; i++) b[i]! += scale * m.bias![i]!;
  return b;
}

/** Copy the small files beside the base weights (config.json, tokenizer…) into the output. */
async function copySideFiles(firstShard: string, dest: string, written: Set<string>): Promise<void> {
  const dir = join(firstShard, '..');
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || written.has(entry.name) || entry.name.endsWith('.safetensors') || entry.name.endsWith('.index.json')) continue;
    if (COPIED_FILE.test(entry.name)) await copyFile(join(dir, entry.name), join(dest, entry.name));
  }
}
