/**
 * Whole replacement weights (modules_to_save) that do not line up one-to-one with the base's
 * tensors, as merge and analyze meet them: a head the base ties to the embeddings it stores, and a
 * vocabulary the fine-tune resized.
 */
import { ShapeError } from '../errors.js';
import { type Adapter, type Checkpoint, type ModelConfig, type ModelLayout, modelLayout } from '../io/index.js';

type FullWeight = Adapter['fullWeights'][number];

/**
 * Whole replacements (modules_to_save) of an output head the base does not store because it ties
 * it to the token embeddings: skipped when the adapter replaces that embedding with the very same
 * values (PEFT needs the head's copy to load under ensure_weight_tying; its merged checkpoint holds
 * only the embedding). ShapeError where they differ (one tensor cannot take two values) or where
 * the adapter replaces the head only. Cost: one comparison of the two copies.
 * @example tiedReplacements(full, gpt2, config, true, 'gpt2/') // ['lm_head.weight']
 */
export function tiedReplacements(
  full: Map<string, FullWeight>,
  base: Checkpoint,
  config: ModelConfig | null,
  ensureWeightTying: boolean,
  basePath: string,
): string[] {
  const missing = [...full.values()].filter((w) => !base.has(w.name));
  if (missing.length === 0) return [];
  // Classify the missing names as the base's own would be (lm_head vs anything else).
  const layout = modelLayout(config, [...base.tensors, ...missing.map((w) => ({ name: w.name, shape: w.shape }))]);
  const embedding = layout.tensors.find((l) => l.role === 'embedding' && l.embedding === 'token' && base.has(l.name));
  const skipped: string[] = [];
  for (const w of missing) {
    const head = layout.byName.get(w.name)?.role === 'lm_head';
    if (!head || !embedding || !(layout.tiedEmbeddings || ensureWeightTying))
      throw new ShapeError(`adapter replaces "${w.name}", which ${basePath} does not have`);
    const e = full.get(embedding.name);
    if (!e)
      throw new ShapeError(
        `adapter replaces "${w.name}" but not ${embedding.name}, which ${basePath} ties it to (and stores in its place): the merged model would have one tensor with two values`,
      );
    const same = e.shape.join(',') === w.shape.join(',') && e.data.every((v, i) => Object.is(v, w.data[i]));
    if (!same)
      throw new ShapeError(
        `adapter replaces "${w.name}" and ${embedding.name} with different values, but ${basePath} ties them (stores only ${embedding.name}): untie the base first`,
      );
    skipped.push(w.name);
  }
  return skipped;
}

/**
 * A vocabulary resized by the fine-tune (tokens added), its tensors saved whole: the new row count
 * where every replacement whose shape differs from the base's is a vocabulary tensor (token
 * embeddings, lm_head, its bias) differing in dim 0 only, all to one size, and every vocabulary
 * tensor of the base is replaced — PEFT's route (resize the base, load, merge) then gives exactly
 * the adapter's weights. Null when no shape differs; ShapeError otherwise. `lora` holds the
 * tensor names a LoRA also changes (refused: no base of that shape to add it to).
 * @example resizedVocabulary(full, llama, table, new Map(), 'llama/') // { from: 96, to: 104, tensors: Set {…} }
 */
export function resizedVocabulary(
  full: Map<string, FullWeight>,
  base: Checkpoint,
  table: ModelLayout,
  lora: Map<string, unknown>,
  basePath: string,
): { from: number; to: number; tensors: Set<string> } | null {
  const isVocab = (name: string) => {
    const l = table.byName.get(name);
    return (
      l !== undefined &&
      ((l.role === 'embedding' && l.embedding === 'token') ||
        l.role === 'lm_head' ||
        (l.role === 'bias' && l.of === 'lm_head'))
    );
  };
  let vocab: { from: number; to: number; tensors: Set<string> } | null = null;
  for (const [name, w] of full) {
    const shape = base.info(name).shape;
    if (shape.join(',') === w.shape.join(',')) continue;
    const rowsOnly = shape.length === w.shape.length && shape.slice(1).join(',') === w.shape.slice(1).join(',');
    if (!isVocab(name) || !rowsOnly || lora.has(name))
      throw new ShapeError(
        `adapter replaces ${name} with [${w.shape.join(', ')}] but the base has [${shape.join(', ')}]`,
      );
    if (vocab && vocab.to !== w.shape[0])
      throw new ShapeError(
        `adapter resizes the vocabulary to ${vocab.to} in ${[...vocab.tensors][0]} but to ${w.shape[0]} in ${name}`,
      );
    vocab ??= { from: shape[0]!, to: w.shape[0]!, tensors: new Set() };
    vocab.tensors.add(name);
  }
  if (!vocab) return null;
  const left = base.tensors.find((t) => isVocab(t.name) && !vocab!.tensors.has(t.name));
  if (left)
    throw new ShapeError(
      `adapter resizes the vocabulary ${vocab.from} → ${vocab.to} (${[...vocab.tensors].join(', ')}) but not ${left.name} of ${basePath}: the merged model would not load`,
    );
  return vocab;
}
