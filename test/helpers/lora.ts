/** Small deterministic LoRA modules for adapter tests: values sin(k·(i + 1)), never all zero, never repeating. */
import type { LoraModule } from '../../src/io/index.js';

/** n values sin(k·1), sin(k·2), …: smooth, distinct, of mixed sign. */
export const seq = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(k * (i + 1)));

/** A linear LoRA module [outF, inF] of rank `rank` with alpha = 2·rank (s = 2); `extra` overrides any field. */
export function lora(
  module: string,
  rank: number,
  inF: number,
  outF: number,
  extra: Partial<LoraModule> = {},
): LoraModule {
  return {
    module,
    kind: 'linear',
    rank,
    alpha: 2 * rank,
    a: seq(rank * inF, 0.7),
    b: seq(outF * rank, 1.3),
    inFeatures: inF,
    outFeatures: outF,
    ...extra,
  };
}
