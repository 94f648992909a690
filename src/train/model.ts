/**
 * A task's model as tfjs variables named exactly like the checkpoint tensors
 * (PyTorch layout, Linear weights [out, in]), optionally with LoRA layers on its
 * target modules.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError } from '../errors.js';
import { LoraLinear, type LoraOptions } from './lora-linear.js';
import { matMulNT } from './ops.js';
import type { Params } from './task.js';

export interface TfModel {
  /** Every tensor by full name. */
  variables: Map<string, tf.Variable>;
  /** LoRA layers by module path (empty unless `attachLora` was called). */
  lora: Map<string, LoraLinear>;
  params: Params;
  /** Dropout (LoRA's) is on in forward passes while this is true. */
  training: boolean;
}

/**
 * Variables from a name → data map; each must match its shape in `shapes`.
 * Copies the data into tfjs; free with `disposeModel`.
 */
export function createModel(shapes: [string, number[]][], weights: Map<string, Float32Array>): TfModel {
  for (const [name, shape] of shapes) {
    const data = weights.get(name);
    if (!data) throw new ShapeError(`weights: tensor "${name}" is missing`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n)
      throw new ShapeError(
        `weights: tensor "${name}" has ${data.length} values but shape [${shape.join(', ')}] needs ${n}`,
      );
  }
  // Unnamed: tfjs refuses two live variables of one name, and models of one task coexist (base and merged, say).
  const variables = new Map<string, tf.Variable>();
  for (const [name, shape] of shapes) {
    variables.set(
      name,
      tf.tidy(() => tf.variable(tf.tensor(weights.get(name)!, shape))),
    );
  }
  const lora = new Map<string, LoraLinear>();
  const get = (name: string): tf.Tensor => {
    const v = variables.get(name);
    if (!v) throw new ShapeError(`model has no tensor "${name}"`);
    return v;
  };
  const params: Params = {
    get,
    linear(module, x) {
      const layer = lora.get(module);
      if (layer) return layer.apply(x, { training: model.training });
      const y = matMulNT(x, get(`${module}.weight`));
      const bias = variables.get(`${module}.bias`);
      return (bias ? tf.add(y, bias) : y) as tf.Tensor2D;
    },
  };
  const model: TfModel = { variables, lora, params, training: false };
  return model;
}

/**
 * Freeze every variable and wrap each target module in a LoRA layer with a fresh adapter
 * (by default A Kaiming-uniform, B zero; `opts` carries PEFT's use_dora, lora_bias and
 * init_lora_weights), so the model's output is unchanged until the adapter trains (PiSSA/OLoRA:
 * unchanged up to the rounding of the residual base).
 */
export function attachLora(model: TfModel, targets: string[], opts: LoraOptions & { adapter?: string }): void {
  for (const v of model.variables.values()) v.trainable = false;
  for (const module of targets) {
    let layer = model.lora.get(module);
    if (!layer) {
      const weight = model.variables.get(`${module}.weight`);
      if (!weight || weight.rank !== 2) throw new ShapeError(`LoRA target "${module}" has no 2-D weight`);
      layer = new LoraLinear(module, weight, model.variables.get(`${module}.bias`) ?? null);
      model.lora.set(module, layer);
    }
    layer.addAdapter(opts.adapter ?? 'default', opts);
  }
}

/** The variables a trainer updates: every variable (base, full) or the active adapters' (A, B, and DoRA's magnitude or lora_B.bias). */
export function trainableVariables(model: TfModel): tf.Variable[] {
  if (model.lora.size > 0) return [...model.lora.values()].flatMap((l) => l.trainableVariables());
  return [...model.variables.values()].filter((v) => v.trainable);
}

/** Parameters a trainer updates, counted. */
export function countTrainable(model: TfModel): number {
  return trainableVariables(model).reduce((n, v) => n + v.size, 0);
}

/** A copy of every tensor's current value (merged adapters included), name → data. */
export function readWeights(model: TfModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.variables) out.set(name, new Float32Array(v.dataSync())); // the cpu backend hands out its own buffer
  return out;
}

/** Free every tensor of the model, adapters included. */
export function disposeModel(model: TfModel): void {
  for (const layer of model.lora.values()) layer.dispose();
  for (const v of model.variables.values()) v.dispose();
  model.lora.clear();
  model.variables.clear();
}
