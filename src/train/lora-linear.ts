/**
 * The LoRA layer (Hu et al. 2021): a frozen dense weight W [out, in] plus low-rank
 * adapters, y = x Wᵀ + b + s · dropout(x) Aᵀ Bᵀ with A [r, in], B [out, r] (PEFT layout)
 * and s = α/r, or α/√r with rsLoRA (Kalajdzievski 2023).
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { matMulNT } from './ops.js';
import { createRng, type Rng } from '../svd/index.js';

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Scale α/√r instead of α/r. */
  rslora?: boolean;
  /** Dropout on the adapter's input during training (PEFT's lora_dropout). */
  dropout?: number;
  /** Seeds A's initialisation and the dropout masks. */
  seed: number;
}

/** One named adapter's factors; A and B are the only trainable tensors of a LoRA fine-tune. */
export interface LoraAdapter {
  name: string;
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  scale: number;
  /** [r, in], Kaiming-uniform as PEFT initialises it (bound 1/√in). */
  a: tf.Variable;
  /** [out, r], zero, so a fresh adapter leaves the layer's output unchanged. */
  b: tf.Variable;
  rng: Rng;
}

/** LoRA scale: α/r, or α/√r with rsLoRA. */
export function loraScaleOf(rank: number, alpha: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/**
 * A dense layer with frozen weight and any number of named adapters, one active.
 * `merge()` folds the active adapter into W (faster inference, same outputs) and
 * `unmerge()` takes it out again; training requires the unmerged state.
 *
 * @example
 * const layer = new LoraLinear('model.layers.0.fc', w, bias);
 * layer.addAdapter('default', { rank: 8, alpha: 16, seed: 1 });
 * const y = layer.apply(x, { training: true });   // x [n, in] → y [n, out]
 */
export class LoraLinear {
  readonly adapters = new Map<string, LoraAdapter>();
  private activeName: string | null = null;
  private mergedName: string | null = null;

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

  /** Add an adapter and make it active. Costs r·(in + out) floats. */
  addAdapter(name: string, { rank, alpha, rslora = false, dropout = 0, seed }: LoraOptions): LoraAdapter {
    if (this.adapters.has(name)) throw new UsageError(`${this.module}: adapter "${name}" exists already`);
    if (!Number.isInteger(rank) || rank < 1) throw new UsageError(`${this.module}: LoRA rank must be a positive integer, got ${rank}`);
    if (!(dropout >= 0 && dropout < 1)) throw new UsageError(`${this.module}: LoRA dropout must be in [0, 1), got ${dropout}`);
    const rng = createRng(seed).fork(`${this.module}/${name}`);
    const bound = 1 / Math.sqrt(this.inFeatures);
    const a0 = new Float32Array(rank * this.inFeatures);
    for (let i = 0; i < a0.length; i++) a0[i] = rng.uniform(-bound, bound);
    const adapter: LoraAdapter = {
      name,
      rank,
      alpha,
      rslora,
      dropout,
      scale: loraScaleOf(rank, alpha, rslora),
      a: tf.tidy(() => tf.variable(tf.tensor2d(a0, [rank, this.inFeatures]))),
      b: tf.tidy(() => tf.variable(tf.zeros([this.outFeatures, rank]))),
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

  /** Remove an adapter and free its tensors. */
  deleteAdapter(name: string): void {
    const adapter = this.adapters.get(name);
    if (!adapter) throw new UsageError(`${this.module}: no adapter "${name}"`);
    if (this.mergedName === name) this.unmerge();
    adapter.a.dispose();
    adapter.b.dispose();
    this.adapters.delete(name);
    if (this.activeName === name) this.activeName = null;
  }

  /** A and B of the active adapter: what a LoRA fine-tune trains. */
  trainableVariables(): tf.Variable[] {
    const a = this.active;
    return a ? [a.a, a.b] : [];
  }

  /**
   * x [n, in] → [n, out]. The adapter path is skipped when the active adapter is merged.
   * Dropout applies only with `training`, from the adapter's own seeded stream.
   */
  apply(x: tf.Tensor2D, { training = false }: { training?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      let y = matMulNT(x, this.weight, { constB: true });
      if (this.bias) y = tf.add(y, this.bias);
      const a = this.active;
      if (!a || this.mergedName === a.name) return y as tf.Tensor2D;
      let h = x;
      if (training && a.dropout > 0) h = tf.mul(x, dropoutMask(a.rng, x.shape, a.dropout));
      const low = matMulNT(h, a.a);
      return tf.add(y, tf.mul(matMulNT(low, a.b), a.scale)) as tf.Tensor2D;
    });
  }

  /** W ← W + s·B·A for the active adapter. One [out, r]·[r, in] product. */
  merge(): void {
    const a = this.active;
    if (!a) throw new UsageError(`${this.module}: no active adapter to merge`);
    if (this.mergedName !== null) throw new UsageError(`${this.module}: adapter "${this.mergedName}" is merged already`);
    tf.tidy(() => this.weight.assign(tf.add(this.weight, tf.mul(tf.matMul(a.b, a.a), a.scale))));
    this.mergedName = a.name;
  }

  /** W ← W − s·B·A, undoing `merge` up to f32 rounding. */
  unmerge(): void {
    if (this.mergedName === null) throw new UsageError(`${this.module}: nothing is merged`);
    const a = this.adapters.get(this.mergedName)!;
    tf.tidy(() => this.weight.assign(tf.sub(this.weight, tf.mul(tf.matMul(a.b, a.a), a.scale))));
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
