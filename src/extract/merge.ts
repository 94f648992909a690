/**
 * `merge`: apply a LoRA adapter to its base as PEFT's merge_and_unload does (W + s·B·A; Conv1D's
 * (s·B·A)ᵀ; DoRA's rescaled rows; lora_B.bias onto the base bias; saved full weights in place),
 * written in the base's sharding and names.
 */
import { copyFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  applyLoraBias,
  applyModule,
  applyParamLora,
  type ExpertPart,
  expertPartModule,
  fusedParams,
  resizedVocabulary,
  shapeLookup,
  storedTransposed,
  tiedReplacements,
  type WeightLayout,
  weightLayout,
} from '../analyze/index.js';
import { ShapeError } from '../errors.js';
import type {
  Adapter,
  LoraModule,
  ModelConfig,
  ParamLora,
  ReadAdapter,
  ResolvedParamLora,
  TensorInfo,
} from '../io/index.js';
import {
  checkConfig,
  checkpointLayout,
  loraScale,
  openCheckpoint,
  readAdapter,
  readModelConfig,
  resolveParamLora,
  writeDirAtomically,
  writeSafetensors,
} from '../io/index.js';

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
  /**
   * Replacement weights not written because the base ties them to one it stores (GPT-2 stores only
   * transformer.wte.weight; the adapter's equal lm_head.weight copy is there for PEFT's weight tying).
   */
  tiedSkipped: string[];
  /** The vocabulary the adapter's whole embeddings / lm_head resize the base to (config.json's vocab_size follows); null when unchanged. */
  resizedVocab: { from: number; to: number } | null;
}

/** Files of a model folder that travel with the weights (config, tokenizer, …). */
const COPIED_FILE = /\.(json|txt|model|py|md|jinja)$/;

/**
 * Merge `adapterDir` into `basePath`, writing `outDir` with the same shard files and tensor names,
 * each tensor in its base dtype; other small files of the base folder (config.json, tokenizer…) are copied.
 * A head the base ties to its token embeddings (stores only those) is written once, as them; whole
 * embeddings / lm_head of a resized vocabulary are written at their new row count and config.json's
 * vocab_size follows (PEFT's route: resize the base, load, merge). ShapeError for a replacement whose
 * shape or tied twin disagrees with the base.
 * @example await mergeAdapter('llama/', 'lora/', 'llama-merged/');
 */
export async function mergeAdapter(
  basePath: string,
  adapterDir: string,
  outDir: string,
  opts: MergeOptions = {},
): Promise<MergeResult> {
  const adapter = await readAdapter(adapterDir);
  const { useRslora, fanInFanOut } = adapter.settings;
  const base = await openCheckpoint(basePath);
  try {
    const lora = new Map<string, { m: LoraModule; layout: WeightLayout }>();
    const loraBias = new Map<string, LoraModule>();
    const full = new Map(adapter.fullWeights.map((w) => [w.name, w]));
    const tiedTo = new Map(adapter.tied.map((t) => [t.module, t.source]));
    // PEFT takes Conv1D vs nn.Linear from the layer type; io's table tells it from config.json and the names.
    const table = await checkpointLayout(basePath, base.tensors);
    for (const m of adapter.modules) {
      const name = `${m.module}.weight`;
      // ensure_weight_tying: a base storing only the tied embedding takes their one change once, through the embedding.
      if (!base.has(name) && tiedTo.has(m.module) && base.has(`${tiedTo.get(m.module)}.weight`)) continue;
      if (!base.has(name))
        throw new ShapeError(
          `adapter module ${m.module} has no weight "${name}" in ${basePath}: adapter and base are of different models`,
        );
      const layout = weightLayout(m, base.info(name).shape, storedTransposed(table, name, fanInFanOut));
      if (typeof layout === 'string') throw new ShapeError(layoutMismatch(m, name, basePath, base.info(name).shape));
      lora.set(name, { m, layout });
      if (m.bias) {
        const biasName = `${m.module}.bias`;
        // PEFT's merge raises here too: "Impossible to merge LoRA with `lora_bias=True` because the base layer has no bias".
        if (!base.has(biasName))
          throw new ShapeError(
            `adapter module ${m.module} has a lora_B.bias but ${basePath} has no "${biasName}" to add it to`,
          );
        const shape = base.info(biasName).shape;
        if (shape.length !== 1 || shape[0] !== m.outFeatures)
          throw new ShapeError(
            `adapter module ${m.module}: lora_B.bias is [${m.outFeatures}] but ${biasName} is [${shape.join(', ')}]`,
          );
        loraBias.set(biasName, m);
      }
    }
    const params = new Map<string, { p: ParamLora; r: ResolvedParamLora }>();
    const parts = new Map<string, { p: ParamLora; r: ResolvedParamLora; part: ExpertPart }>();
    if (adapter.paramModules.length > 0) {
      // A fused expert parameter may be stored per expert on disk (transformers 5 saves Mixtral that way).
      const fused = fusedParams(table);
      const shapeOf = shapeLookup(base, fused);
      const seen = new Set<string>();
      for (const p of adapter.paramModules) {
        const r = resolveParamLora(p, adapter.settings, shapeOf);
        if (seen.has(r.name) || lora.has(r.name)) throw new ShapeError(`adapter adapts ${r.name} twice`);
        seen.add(r.name);
        if (base.has(r.name)) params.set(r.name, { p, r });
        else for (const part of fused.get(r.name)!.parts) parts.set(part.tensor, { p, r, part });
      }
    }
    const config = await readModelConfig(basePath);
    const tiedSkipped = tiedReplacements(full, base, config, adapter.settings.ensureWeightTying, basePath);
    for (const name of tiedSkipped) full.delete(name);
    const vocab = resizedVocabulary(full, base, table, lora, basePath);

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
          // A resized vocabulary's tensors take the adapter's shape, in the base's dtype.
          tensors.map((t) => ({
            name: t.name,
            dtype: t.dtype,
            shape: vocab?.tensors.has(t.name) ? full.get(t.name)!.shape : t.shape,
          })),
          async (spec) => {
            opts.onProgress?.({ index: ++done, total, name: spec.name });
            const l = lora.get(spec.name);
            const bm = loraBias.get(spec.name);
            const pl = params.get(spec.name);
            if (pl) {
              merged.push(spec.name);
              return applyParamLora(await base.readFloat32(spec.name), pl.p, pl.r, useRslora);
            }
            const pp = parts.get(spec.name);
            if (pp) {
              merged.push(spec.name);
              const sub = expertPartModule(pp.p, pp.r, pp.part);
              return applyModule(await base.readFloat32(spec.name), sub, loraScale(sub, useRslora), {
                transposed: false,
                shape: [sub.outFeatures, sub.inFeatures],
              });
            }
            const w = full.get(spec.name);
            if (w) replaced.push(spec.name);
            if (!l && !bm) {
              if (w) return w.data;
              copied++;
              return base.readRaw(spec.name);
            }
            // A saved full weight (PEFT saves the base embedding beside an embedding LoRA) is what the LoRA applies to.
            const start = w ? w.data.slice() : await base.readFloat32(spec.name);
            merged.push(spec.name);
            if (l) return applyModule(start, l.m, loraScale(l.m, useRslora), l.layout);
            return applyLoraBias(start, bm!, loraScale(bm!, useRslora));
          },
          { metadata: base.metadata },
        );
      }
      if (byFile.size > 1) {
        const weightMap: Record<string, string> = {};
        for (const t of base.tensors) weightMap[t.name] = basename(t.file);
        const totalSize = base.tensors.reduce(
          (s, t) => s + (vocab?.tensors.has(t.name) ? (t.byteLength / t.shape[0]!) * vocab.to : t.byteLength),
          0,
        );
        await writeFile(
          join(tmp, 'model.safetensors.index.json'),
          JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n',
        );
      }
      // A model folder's config and tokenizer travel with its weights; a lone file's neighbours do not.
      const isModel = basePath.endsWith('.json') || (await stat(basePath)).isDirectory();
      const written = new Set([...files, 'model.safetensors.index.json']);
      if (isModel && vocab && config) {
        // transformers' resize_token_embeddings sets the text config's vocab_size: the merged folder loads as the fine-tune.
        await writeFile(join(tmp, 'config.json'), JSON.stringify(withVocabSize(config, vocab.to), null, 2) + '\n');
        written.add('config.json');
      }
      if (isModel) await copySideFiles(base.files[0]!, tmp, written);
    });
    return {
      out: outDir,
      files,
      merged,
      replaced,
      copied,
      tiedSkipped,
      resizedVocab: vocab ? { from: vocab.from, to: vocab.to } : null,
    };
  } finally {
    await base.close();
  }
}

/**
 * An adapter applied to weights held in memory (name → f32, PyTorch layout: [out, in], Conv1D
 * [in, out] when the adapter says fan_in_fan_out): a new map, the input untouched. For small
 * models (compare, tests); `mergeAdapter` streams big ones.
 */
export async function applyAdapter(
  weights: Map<string, Float32Array>,
  adapter: Adapter,
): Promise<Map<string, Float32Array>> {
  const settings = 'settings' in adapter ? (adapter as ReadAdapter).settings : checkConfig(adapter.config);
  if ((adapter as Partial<ReadAdapter>).paramModules?.length)
    throw new ShapeError(
      'applyAdapter does not apply target_parameters LoRA (no shapes in memory to resolve it by): use mergeAdapter',
    );
  const out = new Map(weights);
  for (const f of adapter.fullWeights) {
    if (!weights.has(f.name)) throw new ShapeError(`adapter replaces "${f.name}", which the model does not have`);
    out.set(f.name, f.data);
  }
  for (const m of adapter.modules) {
    const name = `${m.module}.weight`;
    const w = out.get(name);
    const source = (adapter as Partial<ReadAdapter>).tied?.find((t) => t.module === m.module)?.source;
    if (!w && source && out.has(`${source}.weight`)) continue; // tied lm_head: the embedding carries the change
    if (!w) throw new ShapeError(`adapter module ${m.module} has no weight "${name}" in the model`);
    if (w.length !== m.inFeatures * m.outFeatures)
      throw new ShapeError(
        `adapter module ${m.module} is ${m.outFeatures}×${m.inFeatures} but ${name} holds ${w.length} values`,
      );
    const transposed = m.kind === 'embedding' || settings.fanInFanOut;
    const layout: WeightLayout = {
      transposed,
      shape: transposed ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures],
    };
    const scale = loraScale(m, settings.useRslora);
    out.set(name, await applyModule(w.slice(), m, scale, layout));
    if (m.bias) {
      const b = out.get(`${m.module}.bias`);
      if (!b)
        throw new ShapeError(`adapter module ${m.module} has a lora_B.bias but the model has no "${m.module}.bias"`);
      out.set(`${m.module}.bias`, applyLoraBias(b.slice(), m, scale));
    }
  }
  return out;
}

/** config.json with the text config's vocab_size set (transformers' get_text_config(): text_config where there is one). */
function withVocabSize(config: ModelConfig, vocabSize: number): ModelConfig {
  const text = config['text_config'];
  if (text && typeof text === 'object' && !Array.isArray(text))
    return { ...config, text_config: { ...(text as object), vocab_size: vocabSize } };
  return { ...config, vocab_size: vocabSize };
}

/** "adapter module X is [out, in] but NAME in BASE is [..]" (an embedding's [num_embeddings, dim]). */
function layoutMismatch(m: LoraModule, name: string, basePath: string, shape: readonly number[]): string {
  const want = m.kind === 'embedding' ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
  return `adapter module ${m.module} is [${want.join(', ')}] but ${name} in ${basePath} is [${shape.join(', ')}]`;
}

/** Copy the small files beside the base weights (config.json, tokenizer…) into the output. */
async function copySideFiles(firstShard: string, dest: string, written: Set<string>): Promise<void> {
  const dir = join(firstShard, '..');
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (
      !entry.isFile() ||
      written.has(entry.name) ||
      entry.name.endsWith('.safetensors') ||
      entry.name.endsWith('.index.json')
    )
      continue;
    if (COPIED_FILE.test(entry.name)) await copyFile(join(dir, entry.name), join(dest, entry.name));
  }
}
