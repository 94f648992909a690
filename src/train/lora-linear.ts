/**
 * The LoRA layer (Hu et al. 2021): a frozen dense weight W [out, in] plus low-rank
 * adapters, y = x Wᵀ + b + s · dropout(x) Aᵀ Bᵀ with A [r, in], B [out, r] (PEFT layout)
 * and s = α/r, or α/√r with rsLoRA (Kalajdzievski 2023). Every flag of PEFT's
 * `LoraLayer.update_layer` that deltarank trains with:
 * - `useDora` (Liu et al. 2024): W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖, the norm per output row
 *   (torch.linalg.norm(dim=1) of the [out, in] weight) and detached from the gradient as
 *   PEFT does (DoRA §4.3); m [out] starts at the row norms of W + s·B·A and trains.
 * - `loraBias`: lora_B gets a trainable bias, zero at first; y gains s·bias.
 * - `initLoraWeights`: see lora-init.ts; PiSSA and OLoRA replace W by the residual W − s·B₀·A₀.
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { createRng, type Rng, type Svd64 } from '../svd/index.js';
import { initialFactors, type LoraInit, mutatesBase } from './lora-init.js';
import { matMulNT } from './ops.js';

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Scale α/√r instead of α/r. */
  rslora?: boolean;
  /** Dropout on the adapter's input during training (PEFT's lora_dropout). */
  dropout?: number;
  /** Seeds A's initialisation and the dropout masks. */
  seed: number;
  /** PEFT's use_dora: a trained magnitude per output row over the normalised direction. */
  useDora?: boolean;
  /** PEFT's lora_bias: a trainable bias on lora_B. */
  loraBias?: boolean;
  /** PEFT's init_lora_weights (default true: Kaiming-uniform A, zero B). */
  initLoraWeights?: LoraInit;
  /** SVDs of base weights by module path, reused across adapters on the same base (PiSSA). */
  svdCache?: Map<string, Svd64>;
}

/** One named adapter's tensors; what `trainableVariables` returns is what PEFT trains. */
export interface LoraAdapter {
  name: string;
  /** Rows of A: the rank asked for, or min(r, out, in) for SVD/QR inits. */
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  /** α/r or α/√r of the rank asked for (PEFT's `scaling`, which the config's r sets). */
  scale: number;
  init: LoraInit;
  /** [r, in]. */
  a: tf.Variable;
  /** [out, r]; zero at first except for SVD/QR inits. */
  b: tf.Variable;
  /** lora_B.bias [out], with loraBias. */
  bias: tf.Variable | null;
  /** DoRA's magnitude m [out], with useDora. */
  magnitude: tf.Variable | null;
  /** A₀ and B₀ of PiSSA/OLoRA (the residual base is W − s·B₀·A₀), kept to export ΔW = s·(B·A − B₀·A₀). */
  initial: { a: Float32Array; b: Float32Array } | null;
  /** W before a PiSSA/OLoRA init replaced it by its residual; restored when the adapter goes. */
  originalWeight: Float32Array | null;
  rng: Rng;
}

/** LoRA scale: α/r, or α/√r with rsLoRA. */
export function loraScaleOf(rank: number, alpha: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/**
 * ‖W + s·B·A‖ per output row, as one op without gradient: torch's `.detach()` of PEFT's
 * weight norm (tfjs has no stop_gradient). One op rather than a zero-gradient wrapper around
 * the product, so backpropagation does not run the product's backward pass only to multiply it by zero.
 */
function detachedRowNorms(w: tf.Tensor, a: tf.Tensor, b: tf.Tensor, scale: number): tf.Tensor1D {
  const f = tf.customGrad((wt, at, bt, save) => {
    void save;
    const sum = tf.add(wt as tf.Tensor, tf.mul(tf.matMul(bt as tf.Tensor, at as tf.Tensor), scale));
    return {
      value: tf.sqrt(tf.sum(tf.square(sum), 1)),
      gradFunc: () => [tf.zerosLike(wt as tf.Tensor), tf.zerosLike(at as tf.Tensor), tf.zerosLike(bt as tf.Tensor)],
    };
  }) as (w: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor1D;
  return f(w, a, b);
}

/**
 * A dense layer with frozen weight and any number of named adapters, one active.
 * `merge()` folds the active adapter into W (faster inference, same outputs) and
 * `unmerge()` takes it out again; training requires the unmerged state.
 *
 * @example
 * const layer = new LoraLinear('model.layers.0.fc', w, bias);
 * layer.addAdapter('default', { rank: 8, alpha: 16, seed: 1, useDora: true });
 * const y = layer.apply(x, { training: true });   // x [n, in] → y [n, out]
 */
export class LoraLinear {
  readonly adapters = new Map<string, LoraAdapter>();
  private activeName: string | null = null;
  private mergedName: string | null = null;
  /** DoRA: the row norms used by `merge`, which `unmerge` needs again (PEFT caches them likewise). */
  private mergedNorm: tf.Tensor1D | null = null;

  /**
   * @param module full module path, e.g. "model.layers.0.self_attn.q_proj"
   * @param weight [out, in], PyTorch layout; frozen (its `trainable` is set to false)
   * @param bias [out] or null; frozen too (PEFT bias "none")
   */
  constructor(
    readonly module: string,
    readonly weight: tf.Variable,
    readonly bias: tf.Variable | null,
  ) {
    weight.trainable = false;
    if (bias) bias.trainable = false;
  }

  get outFeatures(): number {
    return this.weight.shape[0]!;
  }

  get inFeatures(): number {
    return this.weight.shape[1]!;
  }

  /** The adapter used by `apply`, `merge` and `trainableVariables`, or null when none is active. */
  get active(): LoraAdapter | null {
    return this.activeName === null ? null : this.adapters.get(this.activeName)!;
  }

  /** Name of the adapter folded into W, or null. */
  get merged(): string | null {
    return this.mergedName;
  }

  /**
   * Add an adapter and make it active. Costs r·(in + out) floats (+ out for DoRA or the bias).
   * PiSSA/OLoRA replace W by the residual, so at most one such adapter per layer, and they
   * refuse lora_bias (as PEFT's LoraConfig does); DoRA refuses lora_bias likewise.
   */
  addAdapter(
    name: string,
    {
      rank,
      alpha,
      rslora = false,
      dropout = 0,
      seed,
      useDora = false,
      loraBias = false,
      initLoraWeights = true,
      svdCache,
    }: LoraOptions,
  ): LoraAdapter {
    if (this.adapters.has(name)) throw new UsageError(`${this.module}: adapter "${name}" exists already`);
    if (!Number.isInteger(rank) || rank < 1)
      throw new UsageError(`${this.module}: LoRA rank must be a positive integer, got ${rank}`);
    if (!(dropout >= 0 && dropout < 1))
      throw new UsageError(`${this.module}: LoRA dropout must be in [0, 1), got ${dropout}`);
    if (loraBias && initLoraWeights !== true)
      throw new UsageError(
        `${this.module}: lora_bias works only with the default init (PEFT's rule), not ${initLoraWeights}`,
      );
    if (loraBias && useDora) throw new UsageError(`${this.module}: lora_bias is not supported with DoRA (PEFT's rule)`);
    const mutates = mutatesBase(initLoraWeights);
    if (mutates && [...this.adapters.values()].some((x) => x.originalWeight)) {
      throw new UsageError(`${this.module}: a PiSSA/OLoRA adapter has already replaced W by its residual`);
    }
    if (mutates && this.mergedName !== null)
      throw new UsageError(`${this.module}: unmerge "${this.mergedName}" before a PiSSA/OLoRA init`);
    const rng = createRng(seed).fork(`${this.module}/${name}`);
    const scale = loraScaleOf(rank, alpha, rslora);
    const out = this.outFeatures;
    const inF = this.inFeatures;
    const w = mutates || useDora ? new Float32Array(this.weight.dataSync()) : new Float32Array(0);
    const f = initialFactors(w, out, inF, { rank, scale, init: initLoraWeights, rng, module: this.module, svdCache });
    let originalWeight: Float32Array | null = null;
    if (mutates) {
      originalWeight = w;
      const residual = new Float32Array(w.length);
      for (let i = 0; i < out; i++) {
        for (let j = 0; j < inF; j++) {
          let acc = 0;
          for (let c = 0; c < f.rank; c++) acc += f.b[i * f.rank + c]! * f.a[c * inF + j]!;
          residual[i * inF + j] = w[i * inF + j]! - scale * acc;
        }
      }
      tf.tidy(() => this.weight.assign(tf.tensor2d(residual, [out, inF])));
    }
    let magnitude: tf.Variable | null = null;
    if (useDora) {
      // m₀ = ‖W + s·B₀·A₀‖ per row: the original W's norms, whatever the init (the residual plus its factors).
      const m0 = new Float32Array(out);
      for (let i = 0; i < out; i++) {
        let sq = 0;
        for (let j = 0; j < inF; j++) sq += w[i * inF + j]! ** 2;
        m0[i] = Math.sqrt(sq);
      }
      magnitude = tf.tidy(() => tf.variable(tf.tensor1d(m0)));
    }
    const adapter: LoraAdapter = {
      name,
      rank: f.rank,
      alpha,
      rslora,
      dropout,
      scale,
      init: initLoraWeights,
      a: tf.tidy(() => tf.variable(tf.tensor2d(f.a, [f.rank, inF]))),
      b: tf.tidy(() => tf.variable(tf.tensor2d(f.b, [out, f.rank]))),
      bias: loraBias ? tf.tidy(() => tf.variable(tf.zeros([out]))) : null,
      magnitude,
      initial: mutates ? { a: f.a, b: f.b } : null,
      originalWeight,
      rng: rng.fork('dropout'),
    };
    this.adapters.set(name, adapter);
    this.activeName = name;
    return adapter;
  }

  /** Choose the active adapter (null: none). Refused while another adapter is merged. */
  setActive(name: string | null): void {
    if (name !== null && !this.adapters.has(name)) throw new UsageError(`${this.module}: no adapter "${name}"`);
    if (this.mergedName !== null && this.mergedName !== name) {
      throw new UsageError(`${this.module}: unmerge adapter "${this.mergedName}" before switching`);
    }
    this.activeName = name;
  }

  /** Remove an adapter and free its tensors; a PiSSA/OLoRA adapter gives W back as it was before its init. */
  deleteAdapter(name: string): void {
    const adapter = this.adapters.get(name);
    if (!adapter) throw new UsageError(`${this.module}: no adapter "${name}"`);
    if (this.mergedName === name) this.unmerge();
    if (adapter.originalWeight)
      tf.tidy(() => this.weight.assign(tf.tensor2d(adapter.originalWeight!, [this.outFeatures, this.inFeatures])));
    tf.dispose([
      adapter.a,
      adapter.b,
      ...(adapter.bias ? [adapter.bias] : []),
      ...(adapter.magnitude ? [adapter.magnitude] : []),
    ]);
    this.adapters.delete(name);
    if (this.activeName === name) this.activeName = null;
  }

  /** What PEFT trains for the active adapter: A and B, plus lora_B.bias and DoRA's magnitude when present. */
  trainableVariables(): tf.Variable[] {
    const a = this.active;
    if (!a) return [];
    return [a.a, a.b, ...(a.bias ? [a.bias] : []), ...(a.magnitude ? [a.magnitude] : [])];
  }

  /**
   * x [n, in] → [n, out]. The adapter path is skipped when the active adapter is merged.
   * Dropout applies only with `training`, from the adapter's own seeded stream. DoRA follows
   * PEFT's DoraLinearLayer.forward: (m/‖W + s·B·A‖ − 1) ⊙ x_d Wᵀ + (m/‖·‖) ⊙ s·x_d Aᵀ Bᵀ added to
   * x Wᵀ + b, with x_d = dropout(x) (= x without dropout, which makes it (m/‖·‖) ⊙ (x W'ᵀ) + b).
   */
  apply(x: tf.Tensor2D, { training = false }: { training?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const base = matMulNT(x, this.weight, { constB: true });
      let y = this.bias ? tf.add(base, this.bias) : base;
      const a = this.active;
      if (!a || this.mergedName === a.name) return y as tf.Tensor2D;
      const dropped = training && a.dropout > 0;
      const h = dropped ? tf.mul(x, dropoutMask(a.rng, x.shape, a.dropout)) : x;
      let lora = matMulNT(matMulNT(h, a.a), a.b);
      if (a.bias) lora = tf.add(lora, a.bias);
      lora = tf.mul(lora, a.scale);
      if (!a.magnitude) return tf.add(y, lora) as tf.Tensor2D;
      const factor = tf.div(a.magnitude, detachedRowNorms(this.weight, a.a, a.b, a.scale));
      const baseD = dropped ? matMulNT(h, this.weight, { constB: true }) : base;
      y = tf.add(y, tf.mul(tf.sub(factor, 1), baseD));
      return tf.add(y, tf.mul(factor, lora)) as tf.Tensor2D;
    });
  }

  /**
   * The weight the active adapter makes, without merging: W + s·B·A, or DoRA's m ⊙ (W + s·B·A)/‖·‖
   * (W itself when none is active or it is merged). [out, in], a new tensor.
   */
  effectiveWeight(): tf.Tensor2D {
    return tf.tidy(() => {
      const a = this.active;
      if (!a || this.mergedName === a.name) return tf.clone(this.weight) as tf.Tensor2D;
      const sum = tf.add(this.weight, tf.mul(tf.matMul(a.b, a.a), a.scale));
      if (!a.magnitude) return sum as tf.Tensor2D;
      return tf.mul(sum, tf.reshape(tf.div(a.magnitude, this.rowNorms(a)), [-1, 1])) as tf.Tensor2D;
    });
  }

  /** ‖W + s·B·A‖ per output row [out]. One [out, r]·[r, in] product. */
  private rowNorms(a: LoraAdapter): tf.Tensor1D {
    return tf.tidy(
      () => tf.sqrt(tf.sum(tf.square(tf.add(this.weight, tf.mul(tf.matMul(a.b, a.a), a.scale))), 1)) as tf.Tensor1D,
    );
  }

  /**
   * Fold the active adapter into W: W ← W + s·B·A (b ← b + s·bias with lora_bias); DoRA
   * W ← (m/‖W + s·B·A‖) ⊙ (W + s·B·A), the norms kept for `unmerge`. One [out, r]·[r, in] product.
   */
  merge(): void {
    const a = this.active;
    if (!a) throw new UsageError(`${this.module}: no active adapter to merge`);
    if (this.mergedName !== null)
      throw new UsageError(`${this.module}: adapter "${this.mergedName}" is merged already`);
    if (a.bias && !this.bias)
      throw new UsageError(`${this.module}: lora_bias cannot merge into a layer without a bias`);
    tf.tidy(() => {
      const sum = tf.add(this.weight, tf.mul(tf.matMul(a.b, a.a), a.scale));
      if (a.magnitude) {
        const norm = tf.keep(tf.sqrt(tf.sum(tf.square(sum), 1)) as tf.Tensor1D);
        this.mergedNorm = norm;
        this.weight.assign(tf.mul(sum, tf.reshape(tf.div(a.magnitude, norm), [-1, 1])));
      } else {
        this.weight.assign(sum);
      }
      if (a.bias) this.bias!.assign(tf.add(this.bias!, tf.mul(a.bias, a.scale)));
    });
    this.mergedName = a.name;
  }

  /** Undo `merge` up to f32 rounding: W ← W ⊘ (m/‖·‖) − s·B·A for DoRA, W ← W − s·B·A otherwise. */
  unmerge(): void {
    if (this.mergedName === null) throw new UsageError(`${this.module}: nothing is merged`);
    const a = this.adapters.get(this.mergedName)!;
    tf.tidy(() => {
      let w: tf.Tensor = this.weight;
      if (a.magnitude) w = tf.div(w, tf.reshape(tf.div(a.magnitude, this.mergedNorm!), [-1, 1]));
      this.weight.assign(tf.sub(w, tf.mul(tf.matMul(a.b, a.a), a.scale)));
      if (a.bias) this.bias!.assign(tf.sub(this.bias!, tf.mul(a.bias, a.scale)));
    });
    this.mergedNorm?.dispose();
    this.mergedNorm = null;
    this.mergedName = null;
  }

  /** Free the adapters' tensors (W and the bias belong to the model and stay). */
  dispose(): void {
    for (const name of [...this.adapters.keys()]) this.deleteAdapter(name);
  }
}

/** Inverted dropout: zeros with probability p, survivors scaled by 1/(1 − p). */
function dropoutMask(rng: Rng, shape: number[], p: number): tf.Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  const mask = new Float32Array(n);
  const keep = 1 / (1 - p);
  for (let i = 0; i < n; i++) mask[i] = rng.uniform() < p ? 0 : keep;
  return tf.tensor(mask, shape);
}
