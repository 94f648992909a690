/**
 * Thinning long series before they go into a report: the head of a spectrum is where the
 * eye looks, the tail only needs its shape, so every index up to a limit is kept and
 * log-spaced indices after it.
 */

/** Values kept one by one: covers every top-k analyze computes by default, and a 4096-value exact spectrum's head. */
export const KEEP_ALL = 512;

/** Log-spaced points past KEEP_ALL: on a log rank axis the tail then looks as smooth as the head. */
export const TAIL_POINTS = 128;

/**
 * 0-based indices of a series of `count` values to keep, ascending, without repeats: all of
 * 0..keepAll−1 (at least index 0), then about `tail` log-spaced ones, always ending at count − 1.
 *
 * @example thinIndices(4096).length // ≈ 512 + 128
 */
export function thinIndices(count: number, opts: { keepAll?: number; tail?: number } = {}): number[] {
  const { keepAll = KEEP_ALL, tail = TAIL_POINTS } = opts;
  if (count <= keepAll + tail) return Array.from({ length: count }, (_, i) => i);
  const head = Math.max(1, keepAll);
  const out = Array.from({ length: head }, (_, i) => i);
  // The log series starts at the head's last index so its first steps continue the head's spacing.
  const start = Math.max(1, head - 1);
  const ratio = (count - 1) / start;
  for (let j = 1; j <= tail; j++) {
    const i = Math.round(start * ratio ** (j / tail));
    if (i > out[out.length - 1]!) out.push(i);
  }
  if (out[out.length - 1] !== count - 1) out.push(count - 1);
  return out;
}

/** `values` at `indices`, as a plain array (for JSON). */
export function pick(values: ArrayLike<number>, indices: readonly number[]): number[] {
  return indices.map((i) => values[i]!);
}
