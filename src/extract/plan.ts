/**
 * What `extract` does with each tensor, decided from the layout table (io/layouts.ts) before any
 * ΔW is read: a LoRA factor pair, a module saved whole (modules_to_save), a bias carried with its
 * module, or a tensor left out with the reason. Checked against PEFT 0.21 and transformers 5.18.
 */
import type { TensorPair } from '../analyze/pairing.js';
import type { SkippedTensor } from '../analyze/types.js';
import type { ModelLayout, TensorInfo, TensorLayout } from '../io/index.js';

/** A LoRA candidate: a 2-D ΔW becoming lora_A/lora_B (or lora_embedding_A/B). */
export interface Candidate {
  pair: TensorPair;
  kind: 'linear' | 'embedding';
  module: string;
  /** Shape as stored. */
  m: number;
  n: number;
  /** ΔW as stored is (B·A)ᵀ: embeddings [vocab, dim] and Conv1D [in, out]. */
  transposed: boolean;
  /** The module's bias on both sides, when the base layer has one (PEFT lora_bias needs it). */
  bias?: TensorPair;
  /** Experts and routers PEFT fuses under transformers 5: they share one rank (the config's r). */
  fused: boolean;
  layout: TensorLayout;
}

/** A module written whole (modules_to_save), all of its tensors from the tuned side, when any of them changed. */
export interface WholeModule {
  module: string;
  /** Pairs on both sides (their ΔW decides whether the module changed). */
  pairs: TensorPair[];
  /** Tensors only in the tuned checkpoint (a new classifier head): saved whatever the base has. */
  tunedOnly: TensorInfo[];
  /** Saved under these names instead of the tuned names (PEFT's `base_layer.bias` of bias: "lora_only"). */
  rename?: (name: string) => string;
  /** Loaded by PEFT's `bias` setting, not listed in modules_to_save. */
  notModulesToSave?: boolean;
  /** Saved even when unchanged: PEFT's task model wraps it in modules_to_save itself and needs its weights. */
  always?: boolean;
}

/** A tensor not carried: its ‖ΔW‖² is measured for the model-level coverage line. */
export interface LeftOut {
  pair: TensorPair;
  reason: string;
}

export interface ExtractPlan {
  candidates: Candidate[];
  whole: WholeModule[];
  leftOut: LeftOut[];
  skipped: SkippedTensor[];
  /** How changed biases of LoRA modules travel: lora_B.bias, the tuned bias whole (bias: "lora_only"), or not at all. */
  biasMode: 'lora_bias' | 'whole' | 'none';
  /** PEFT ensure_weight_tying: the adapter targets tied token embeddings. */
  tieEmbeddings: boolean;
  /** With tieEmbeddings: the output head's module path ("lm_head", also where the checkpoint stores none) and the embedding's. */
  tiedHead: { module: string; source: string } | null;
  /** PEFT fan_in_fan_out: the LoRA targets are Conv1D. */
  fanInFanOut: boolean;
  warnings: string[];
}

export interface PlanOptions {
  embeddings: 'lora' | 'full' | 'skip';
  norms: 'full' | 'skip';
  biases: 'lora' | 'skip';
  profile: 'peft' | 'vllm';
}

/**
 * Sort the paired tensors by role. `layout` classifies the tuned side's tensors (with the tuned
 * config: its architectures give the task); its `tiedEmbeddings` should be the base config's (what
 * the model loaded under the adapter ties). Reads nothing: ΔW decides later what changed.
 * @example const plan = planExtraction(pairTensors(base.tensors, tuned.tensors), layout, (n) => tuned.info(n), { embeddings: 'lora', norms: 'full', biases: 'lora', profile: 'peft' });
 */
export function planExtraction(
  pairing: { matrices: TensorPair[]; others: TensorPair[]; skipped: SkippedTensor[] },
  layout: ModelLayout,
  tunedInfo: (name: string) => TensorInfo | undefined,
  opts: PlanOptions,
): ExtractPlan {
  const { embeddings, norms, profile } = opts;
  const peft = profile === 'peft';
  const warnings: string[] = [];
  const skipped: SkippedTensor[] = [];
  const leftOut: LeftOut[] = [];
  const candidates: Candidate[] = [];
  const wholeByModule = new Map<string, WholeModule>();
  const whole = (module: string) => {
    let w = wholeByModule.get(module);
    if (!w) wholeByModule.set(module, (w = { module, pairs: [], tunedOnly: [] }));
    return w;
  };
  const all = [...pairing.matrices, ...pairing.others];
  const pairByName = new Map(all.map((p) => [p.name, p]));
  const roleOf = (name: string): TensorLayout =>
    layout.byName.get(name) ?? {
      name,
      module: name,
      param: '',
      role: 'unknown',
      transposed: false,
      hasBias: false,
      note: 'not in the tuned checkpoint',
    };
  const embeddingSaved = new Set<string>();
  // PEFT's SEQ_CLS / TOKEN_CLS / QUESTION_ANS models add their head (classifier, score, qa_outputs) to
  // modules_to_save themselves and raise KeyError on loading an adapter without its weights, changed or not.
  const headAlways =
    layout.taskType === 'SEQ_CLS' || layout.taskType === 'TOKEN_CLS' || layout.taskType === 'QUESTION_ANS';
  /** A head's module: its root (RoBERTa's classifier.dense and classifier.out_proj are one `classifier`). */
  const headModule = (l: TensorLayout) => {
    const w = whole(l.module.replace(/\.(dense|out_proj)$/, ''));
    if (headAlways) w.always = true;
    return w;
  };

  // Tensors on one side only, or of different shapes.
  for (const s of pairing.skipped) {
    const t = tunedInfo(s.name);
    const l = t ? roleOf(s.name) : undefined;
    if (
      t &&
      s.reason === 'only in tuned' &&
      (l?.role === 'classifier' || (l?.role === 'bias' && l.of === 'classifier'))
    ) {
      if (peft) headModule(l).tunedOnly.push(t);
      else skipped.push({ name: s.name, reason: 'new classifier head: not with --profile vllm (no modules_to_save)' });
      continue;
    }
    if (t && s.reason.startsWith('shape') && l && (l.role === 'embedding' || l.role === 'lm_head')) {
      if (embeddings === 'full' && peft) {
        whole(l.module).tunedOnly.push(t);
        if (l.role === 'embedding') embeddingSaved.add(l.module);
        warnings.push(
          `${s.name}: resized vocabulary saved whole (modules_to_save); the base model must be resized to [${t.shape.join(', ')}] before loading`,
        );
        continue;
      }
      skipped.push({
        name: s.name,
        reason: `${s.reason}: a resized vocabulary cannot be a LoRA; use --embeddings full`,
      });
      continue;
    }
    skipped.push(s);
  }

  const tokenEmbeddingChanged = all.some(
    (p) => roleOf(p.name).role === 'embedding' && roleOf(p.name).embedding === 'token',
  );
  for (const pair of pairing.matrices) {
    const l = roleOf(pair.name);
    const [m, n] = pair.tuned.shape as [number, number];
    const biasName = `${l.module}.bias`;
    const bias = l.hasBias ? pairByName.get(biasName) : undefined;
    const candidate = (kind: Candidate['kind'], transposed: boolean, fused = false): Candidate => ({
      pair,
      kind,
      module: l.module,
      m,
      n,
      transposed,
      fused,
      layout: l,
      ...(bias ? { bias } : {}),
    });
    switch (l.role) {
      case 'linear':
      case 'conv1d':
        candidates.push(candidate('linear', l.role === 'conv1d'));
        break;
      case 'expert':
        candidates.push(candidate('linear', false, layout.fusedExperts !== null));
        break;
      case 'router':
        // PEFT's conversion maps the router onto target_parameters "gate.weight" with the config's r.
        candidates.push(candidate('linear', false, layout.fusedExperts !== null));
        break;
      case 'lm_head':
        if (layout.tiedEmbeddings && tokenEmbeddingChanged) {
          skipped.push({
            name: pair.name,
            reason: 'tied to the token embeddings (tie_word_embeddings): extracted once, with them',
          });
        } else if (embeddings === 'lora') candidates.push(candidate('linear', false));
        else if (embeddings === 'full' && peft) whole(l.module).pairs.push(pair);
        else
          leftOut.push({
            pair,
            reason: `--embeddings ${embeddings}${!peft && embeddings === 'full' ? ' (not with --profile vllm)' : ''}`,
          });
        break;
      case 'embedding':
        if (l.embedding === 'token_type') {
          // [types, dim] with a handful of rows: a LoRA of it saves nothing, the table itself is tiny.
          if (peft) whole(l.module).pairs.push(pair);
          else leftOut.push({ pair, reason: 'token-type embeddings are saved whole, not with --profile vllm' });
        } else if (embeddings === 'lora') candidates.push(candidate('embedding', true));
        else if (embeddings === 'full' && peft) {
          whole(l.module).pairs.push(pair);
          if (l.embedding === 'token') embeddingSaved.add(l.module);
        } else
          leftOut.push({
            pair,
            reason: `--embeddings ${embeddings}${!peft && embeddings === 'full' ? ' (not with --profile vllm)' : ''}`,
          });
        break;
      case 'classifier':
        if (peft) headModule(l).pairs.push(pair);
        else leftOut.push({ pair, reason: 'classifier head: saved whole, not with --profile vllm' });
        break;
      case 'buffer':
        skipped.push({ name: pair.name, reason: l.note ?? 'a buffer, not a parameter' });
        break;
      default:
        leftOut.push({ pair, reason: `layout unknown (${l.note ?? l.role}): not extracted` });
    }
  }

  const loraModules = new Set(candidates.map((c) => c.module));
  const pendingBiases: { pair: TensorPair; l: TensorLayout }[] = [];
  for (const pair of pairing.others) {
    const l = roleOf(pair.name);
    if (l.role === 'norm') {
      if (norms === 'full' && peft) whole(l.module).pairs.push(pair);
      else leftOut.push({ pair, reason: `norm (--norms skip${!peft ? ', implied by --profile vllm' : ''})` });
    } else if (l.role === 'bias' && l.of === 'classifier') {
      if (peft) headModule(l).pairs.push(pair);
      else leftOut.push({ pair, reason: 'classifier head: saved whole, not with --profile vllm' });
    } else if (l.role === 'bias' && loraModules.has(l.module)) {
      pendingBiases.push({ pair, l });
    } else if (l.role === 'bias') {
      leftOut.push({
        pair,
        reason: 'bias of a module that is not a LoRA target (its weight did not change or was left out)',
      });
    } else if (l.role === 'buffer') {
      skipped.push({ name: pair.name, reason: l.note ?? 'a buffer, not a parameter' });
    } else {
      leftOut.push({ pair, reason: `layout unknown (${l.note ?? l.role}): not extracted` });
    }
  }

  // Biases. PEFT's lora_bias is one flag for the whole adapter (PEFT 0.21): every targeted layer without a
  // base bias then warns and makes merge_and_unload raise, and embedding layers refuse it outright. It is
  // used where it is clean; otherwise the tuned biases are saved whole under PEFT's bias: "lora_only"
  // (key <module>.base_layer.bias), which loads, merges and warns about nothing.
  let biasMode: ExtractPlan['biasMode'] = 'none';
  if (opts.biases === 'skip' || !peft) {
    for (const { pair } of pendingBiases)
      leftOut.push({
        pair,
        reason: !peft
          ? 'bias (not with --profile vllm: serving engines load LoRA factors only)'
          : 'bias (--biases skip)',
      });
  } else if (pendingBiases.length > 0) {
    const clean =
      candidates.every((c) => c.kind === 'linear' && c.bias !== undefined) &&
      !(layout.tiedEmbeddings && tokenEmbeddingChanged && embeddings === 'lora');
    if (clean) biasMode = 'lora_bias';
    else {
      biasMode = 'whole';
      const why = candidates.some((c) => c.kind === 'embedding')
        ? 'PEFT refuses lora_bias on embedding layers'
        : `PEFT's lora_bias would warn on, and refuse to merge, the targets without a base bias (e.g. ${candidates.find((c) => c.bias === undefined)?.module})`;
      warnings.push(
        `changed biases saved whole (bias: "lora_only", <module>.base_layer.bias) rather than as lora_B.bias: ${why}`,
      );
      for (const { pair, l } of pendingBiases) {
        const w = whole(`${l.module}.base_layer`);
        w.pairs.push(pair);
        w.rename = (name) => name.replace(/\.bias$/, '.base_layer.bias');
        w.notModulesToSave = true;
      }
    }
  }
  const embeddingLora = candidates.some((c) => c.layout.role === 'embedding' && c.layout.embedding === 'token');
  const tieEmbeddings = layout.tiedEmbeddings && peft && (embeddingLora || embeddingSaved.size > 0);
  const source =
    candidates.find((c) => c.layout.role === 'embedding' && c.layout.embedding === 'token')?.module ??
    [...embeddingSaved][0];
  const head = layout.tensors.find((l) => l.role === 'lm_head')?.module ?? 'lm_head';
  const tiedHead = tieEmbeddings && source ? { module: head, source } : null;
  const conv = candidates.filter((c) => c.layout.role === 'conv1d').length;
  const linear = candidates.filter((c) => c.kind === 'linear').length;
  if (conv > 0 && conv < linear)
    warnings.push(
      `${conv} Conv1D and ${linear - conv} nn.Linear targets: fan_in_fan_out is one flag, PEFT corrects it per layer with a warning`,
    );
  return {
    candidates,
    whole: [...wholeByModule.values()],
    leftOut,
    skipped,
    biasMode,
    tieEmbeddings,
    tiedHead,
    fanInFanOut: conv > 0 && 2 * conv >= linear,
    warnings,
  };
}
