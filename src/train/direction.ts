/**
 * The magnitude/direction view of DoRA (Liu et al. 2024, §2.2, Fig. 2): how a tuned weight W'
 * differs from its base W row by row (each output's weight vector, PEFT's norm axis):
 * ΔM = mean over rows of |‖W'ᵢ‖ − ‖Wᵢ‖|, ΔD = mean over rows of 1 − cos(W'ᵢ, Wᵢ). Full
 * fine-tuning and DoRA tend to show ΔM falling as ΔD rises (negative slope across
 * checkpoints and layers); LoRA moves both together.
 */

/** ΔM and ΔD of one layer at one checkpoint. */
export interface MagnitudeDirection {
  module: string;
  dM: number;
  dD: number;
}

/** A checkpoint's ΔM/ΔD for every adapted layer. */
export interface DirectionPoint {
  epoch: number;
  step: number;
  layers: MagnitudeDirection[];
}

/**
 * ΔM and ΔD of `tuned` against `base`, both [rows, cols] row-major f32; sums in f64. Rows of
 * zero norm count as direction change 0 when both are zero, 1 otherwise. Cost 3·rows·cols.
 * @example const { dM, dD } = magnitudeDirection(wTuned, wBase, 256, 784);
 */
export function magnitudeDirection(
  tuned: Float32Array,
  base: Float32Array,
  rows: number,
  cols: number,
): { dM: number; dD: number } {
  let dM = 0;
  let dD = 0;
  for (let i = 0; i < rows; i++) {
    let tt = 0;
    let bb = 0;
    let tb = 0;
    for (let j = i * cols, end = j + cols; j < end; j++) {
      const t = tuned[j]!;
      const b = base[j]!;
      tt += t * t;
      bb += b * b;
      tb += t * b;
    }
    const nt = Math.sqrt(tt);
    const nb = Math.sqrt(bb);
    dM += Math.abs(nt - nb);
    dD += nt > 0 && nb > 0 ? 1 - tb / (nt * nb) : nt === nb ? 0 : 1;
  }
  return { dM: dM / rows, dD: dD / rows };
}
