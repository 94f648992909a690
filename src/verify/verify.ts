/**
 * `verify`: how close an adapter brings the base model's outputs to the fine-tune's, measured on
 * text. Runs base, tuned and base+adapter in lockstep, layer by layer (src/model), and compares
 * their next-token distributions token by token: KL(tuned‖base+adapter) against KL(tuned‖base),
 * top-1 agreement, perplexities, the share of the fine-tune's logit change recovered, and the
 * relative error of every layer's hidden states.
 */
import { ShapeError } from '../errors.js';
import { openCheckpoint } from '../io/index.js';
import { type AppliedAdapter, type ForwardVariant, loadAdapter, readModelArch, runDecoder } from '../model/index.js';
import type { Matrix } from '../svd/index.js';
import { SCHEMA_VERSION, TOOL } from '../version.js';
import type { LayerError, VerifyResult } from './types.js';

export interface VerifyOptions {
  /** Apply the adapter merged into W (W + s·B·A formed per layer) rather than as two factors. */
  merge?: boolean;
  /** Tokens (spread evenly) whose logit-lens KL is measured after every layer; 0: none. */
  layerKlTokens?: number;
  onProgress?: (p: { index: number; total: number; name: string }) => void;
}

/** Logit-lens tokens per layer unless told: enough for a curve, cheap beside the pass (64 · vocab · hidden per model and layer). */
export const DEFAULT_LAYER_KL_TOKENS = 64;

/** Tokens whose logits are formed at once: [block, vocab] f32 per model (32 000 vocab: 33 MB). */
const LOGIT_BLOCK = 256;

/**
 * Verify `adapterDir` (a PEFT LoRA/DoRA folder) against the fine-tune it stands for, on
 * `sequences` (token ids; each a causal context of its own). Memory: one layer of each
 * checkpoint, the hidden states of three models, one block of logits.
 * @example const r = await verifyAdapter('base/', 'tuned/', 'lora/', sequences); r.kl.adapter
 */
export async function verifyAdapter(
  basePath: string,
  tunedPath: string,
  adapterDir: string | AppliedAdapter,
  sequences: number[][],
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const start = performance.now();
  const arch = await readModelArch(basePath);
  const tunedArch = await readModelArch(tunedPath);
  if (
    tunedArch.hiddenSize !== arch.hiddenSize ||
    tunedArch.numLayers !== arch.numLayers ||
    tunedArch.vocabSize !== arch.vocabSize
  ) {
    throw new ShapeError(
      `${tunedPath} (${tunedArch.modelType}, ${tunedArch.numLayers} layers of ${tunedArch.hiddenSize}) is not a fine-tune of ${basePath} (${arch.modelType}, ${arch.numLayers} layers of ${arch.hiddenSize})`,
    );
  }
  const adapter = typeof adapterDir === 'string' ? await loadAdapter(adapterDir) : adapterDir;
  const base = await openCheckpoint(basePath);
  try {
    const tuned = await openCheckpoint(tunedPath);
    try {
      const variants: ForwardVariant[] = [
        { checkpoint: base },
        { checkpoint: tuned },
        { checkpoint: base, adapter, merge: opts.merge },
      ];
      const layers: LayerError[] = [];
      const total = sequences.reduce((s, q) => s + q.length, 0);
      const lensCount = Math.min(total, opts.layerKlTokens ?? DEFAULT_LAYER_KL_TOKENS);
      const lensRows = Array.from({ length: lensCount }, (_, k) => Math.floor(((k + 0.5) * total) / lensCount));
      const run = await runDecoder(arch, variants, sequences, {
        onProgress: opts.onProgress,
        lens:
          lensCount > 0
            ? {
                rows: lensRows,
                onLens: (layer, [zb, zt, za]) => {
                  const e = layers.find((x) => x.layer === layer)!;
                  e.klAdapter = meanKl(zt!, za!);
                  e.klBase = meanKl(zt!, zb!);
                },
              }
            : undefined,
        onLayer: (layer, [hb, ht, ha]) => {
          layers.push(layerError(layer, hb!, ht!, ha!));
        },
      });
      const metrics = await compareLogits(run, sequences);
      run.release();
      return {
        schemaVersion: SCHEMA_VERSION,
        tool: TOOL,
        base: basePath,
        tuned: tunedPath,
        adapter: typeof adapterDir === 'string' ? adapterDir : null,
        modelType: arch.modelType,
        merged: opts.merge === true,
        sequences: sequences.length,
        tokens: sequences.reduce((s, q) => s + q.length, 0),
        ...metrics,
        layers,
        seconds: (performance.now() - start) / 1000,
      };
    } finally {
      await tuned.close();
    }
  } finally {
    await base.close();
  }
}

/** ‖h_a − h_t‖ against ‖h_t − h_b‖ and ‖h_t‖ over every token of one layer (f64 sums). */
function layerError(layer: number, hb: Matrix, ht: Matrix, ha: Matrix): LayerError {
  let errSq = 0;
  let changeSq = 0;
  let tunedSq = 0;
  for (let i = 0; i < ht.data.length; i++) {
    const t = ht.data[i]!;
    errSq += (ha.data[i]! - t) ** 2;
    changeSq += (t - hb.data[i]!) ** 2;
    tunedSq += t * t;
  }
  return {
    layer,
    relativeError: changeSq > 0 ? Math.sqrt(errSq / changeSq) : 0,
    relativeToTuned: tunedSq > 0 ? Math.sqrt(errSq / tunedSq) : 0,
    tunedChange: tunedSq > 0 ? Math.sqrt(changeSq / tunedSq) : 0,
  };
}

/** Mean over rows of KL(softmax(p) ‖ softmax(q)), logits [rows, vocab]. */
function meanKl(p: Matrix, q: Matrix): number {
  const n = p.cols;
  const lp = new Float64Array(n);
  const lq = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < p.rows; i++) {
    logSoftmax(p.data, i * n, n, lp);
    logSoftmax(q.data, i * n, n, lq);
    let k = 0;
    for (let j = 0; j < n; j++) k += Math.exp(lp[j]!) * (lp[j]! - lq[j]!);
    sum += Math.max(0, k);
  }
  return sum / p.rows;
}

/** log-softmax of one row into `out` (f64), returning the argmax. */
function logSoftmax(z: Float32Array, off: number, n: number, out: Float64Array): number {
  let max = -Infinity;
  let arg = 0;
  for (let j = 0; j < n; j++) {
    const v = z[off + j]!;
    if (v > max) {
      max = v;
      arg = j;
    }
  }
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(z[off + j]! - max);
  const lse = max + Math.log(sum);
  for (let j = 0; j < n; j++) out[j] = z[off + j]! - lse;
  return arg;
}

/** Mean and its standard error of a sample. */
function meanSe(values: Float64Array): { mean: number; stdErr: number } {
  const n = values.length;
  let s = 0;
  for (const v of values) s += v;
  const mean = s / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  return { mean, stdErr: n > 1 ? Math.sqrt(ss / (n - 1) / n) : 0 };
}

type LogitMetrics = Pick<VerifyResult, 'kl' | 'top1' | 'perplexity' | 'recovered' | 'perPosition'>;

/** Token-by-token comparison of the three models' next-token distributions, block by block. */
async function compareLogits(
  run: Awaited<ReturnType<typeof runDecoder>>,
  sequences: number[][],
): Promise<LogitMetrics> {
  const N = run.starts[run.starts.length - 1]!;
  const klA = new Float64Array(N);
  const klB = new Float64Array(N);
  let agreeA = 0;
  let agreeB = 0;
  const nll = [0, 0, 0];
  let predicted = 0;
  let errSq = 0;
  let changeSq = 0;
  const next = new Int32Array(N).fill(-1);
  const position = new Int32Array(N);
  sequences.forEach((s, i) => {
    for (let t = 0; t < s.length; t++) {
      position[run.starts[i]! + t] = t;
      if (t + 1 < s.length) next[run.starts[i]! + t] = s[t + 1]!;
    }
  });
  let vocab = 0;
  let lp: Float64Array[] = [];
  for (let r0 = 0; r0 < N; r0 += LOGIT_BLOCK) {
    const r1 = Math.min(N, r0 + LOGIT_BLOCK);
    const z = [await run.logits(0, r0, r1), await run.logits(1, r0, r1), await run.logits(2, r0, r1)];
    if (vocab === 0) {
      vocab = z[0]!.cols;
      lp = [new Float64Array(vocab), new Float64Array(vocab), new Float64Array(vocab)];
    }
    const [lb, lt, la] = lp as [Float64Array, Float64Array, Float64Array];
    for (let i = 0; i < r1 - r0; i++) {
      const off = i * vocab;
      const argB = logSoftmax(z[0]!.data, off, vocab, lb);
      const argT = logSoftmax(z[1]!.data, off, vocab, lt);
      const argA = logSoftmax(z[2]!.data, off, vocab, la);
      let ka = 0;
      let kb = 0;
      // Logits are compared after centring: softmax ignores a shift, log-probabilities are centred logits.
      let mb = 0;
      let mt = 0;
      let ma = 0;
      for (let j = 0; j < vocab; j++) {
        mb += lb[j]!;
        mt += lt[j]!;
        ma += la[j]!;
      }
      mb /= vocab;
      mt /= vocab;
      ma /= vocab;
      for (let j = 0; j < vocab; j++) {
        const pt = Math.exp(lt[j]!);
        ka += pt * (lt[j]! - la[j]!);
        kb += pt * (lt[j]! - lb[j]!);
        const ct = lt[j]! - mt;
        errSq += (la[j]! - ma - ct) ** 2;
        changeSq += (ct - (lb[j]! - mb)) ** 2;
      }
      const row = r0 + i;
      klA[row] = Math.max(0, ka);
      klB[row] = Math.max(0, kb);
      if (argA === argT) agreeA++;
      if (argB === argT) agreeB++;
      const tok = next[row]!;
      if (tok >= 0) {
        nll[0]! -= lb[tok]!;
        nll[1]! -= lt[tok]!;
        nll[2]! -= la[tok]!;
        predicted++;
      }
    }
  }
  const a = meanSe(klA);
  const b = meanSe(klB);
  const maxLen = Math.max(...sequences.map((s) => s.length));
  const sumA = new Float64Array(maxLen);
  const sumB = new Float64Array(maxLen);
  const count = new Float64Array(maxLen);
  for (let i = 0; i < N; i++) {
    sumA[position[i]!]! += klA[i]!;
    sumB[position[i]!]! += klB[i]!;
    count[position[i]!]!++;
  }
  return {
    kl: {
      adapter: a.mean,
      base: b.mean,
      adapterStdErr: a.stdErr,
      baseStdErr: b.stdErr,
      recovered: b.mean > 0 ? 1 - a.mean / b.mean : 0,
    },
    top1: { adapter: agreeA / N, base: agreeB / N },
    perplexity: {
      base: Math.exp(nll[0]! / predicted),
      tuned: Math.exp(nll[1]! / predicted),
      adapter: Math.exp(nll[2]! / predicted),
    },
    recovered: changeSq > 0 ? 1 - errSq / changeSq : 1,
    perPosition: {
      adapter: Array.from(sumA, (s, t) => s / count[t]!),
      base: Array.from(sumB, (s, t) => s / count[t]!),
    },
  };
}
