/**
 * Seeded pseudo-random numbers for everything `train` draws (initial weights, LoRA A,
 * shuffling, dropout masks), so one seed gives the same run on every backend.
 */

/** A stream of uniform numbers in [0, 1); SplitMix32 (Steele, Lea & Flood 2014), period 2³². */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Fisher–Yates shuffle in place; returns `a`. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T;
  /** An independent stream for a named purpose, from the seed and the label alone, so draws made elsewhere do not shift it. */
  fork(label: string): Rng;
}

/**
 * @example
 * const rng = createRng(42);
 * const order = rng.shuffle(Int32Array.from({ length: 10 }, (_, i) => i));
 */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  let spare: number | null = null;
  const nextU32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const rng: Rng = {
    next: () => nextU32() / 2 ** 32,
    uniform: (lo, hi) => lo + (hi - lo) * rng.next(),
    normal() {
      if (spare !== null) {
        const v = spare;
        spare = null;
        return v;
      }
      // 1 − u keeps the logarithm's argument in (0, 1].
      const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
      const t = 2 * Math.PI * rng.next();
      spare = r * Math.sin(t);
      return r * Math.cos(t);
    },
    int: (n) => Math.floor(rng.next() * n),
    shuffle(a) {
      for (let i = a.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
      }
      return a;
    },
    fork: (label) => createRng(hashString(label) ^ Math.imul(seed >>> 0, 0x9e3779b1)),
  };
  return rng;
}

/** FNV-1a, 32 bits. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
