/**
 * Rank policies of `extract` and `resize`, and the per-module choice of rank from a spectrum.
 */
import { UsageError } from '../errors.js';
import { rankAt } from '../svd/index.js';

/** How ranks are chosen. */
export type RankPolicy =
  | { rank: number }
  | { energy: number }
  | { error: number }
  /** Total adapter parameters; `relative` minimises the sum of relative errors instead of the total squared error. */
  | { budget: number; relative?: boolean };

export interface RankLimits {
  /** No module gets more. */
  maxRank?: number;
  /** No extracted module gets less (budget default 1: every module keeps at least one rank). */
  minRank?: number;
}

/** Exactly one policy out of the flags given, or a UsageError. */
export function policyFromFlags(flags: {
  rank?: number;
  energy?: number;
  error?: number;
  budget?: number;
  budgetRelative?: number;
}): RankPolicy {
  const given = Object.entries(flags).filter(([, v]) => v !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      `choose exactly one of \`rank\`, \`energy\`, \`error\`, \`budget\`, \`budgetRelative\` (got ${given.length === 0 ? 'none' : given.map(([k]) => `\`${k}\``).join(', ')})`,
      { option: given[1]?.[0] },
    );
  }
  const [key, value] = given[0]! as [string, number];
  switch (key) {
    case 'rank':
      if (!Number.isInteger(value) || value < 1)
        throw new UsageError(`\`rank\` must be a positive integer, got ${value}`, { option: 'rank' });
      return { rank: value };
    case 'energy':
      if (!(value > 0 && value <= 1))
        throw new UsageError(`\`energy\` must be in (0, 1], got ${value}`, { option: 'energy' });
      return { energy: value };
    case 'error':
      if (!(value >= 0 && value < 1))
        throw new UsageError(`\`error\` must be in [0, 1), got ${value}`, { option: 'error' });
      return { error: value };
    case 'budget':
      return { budget: value };
    default:
      return { budget: value, relative: true };
  }
}

/**
 * Rank for one module of spectrum `s` (descending, maybe truncated) with ‖ΔW‖_F² = frobSquared,
 * for the per-module policies (rank, energy, error). Returns the rank and whether the values
 * computed reached the target (false: the rank is the most that was computed).
 */
export function rankFor(
  policy: RankPolicy,
  s: ArrayLike<number>,
  frobSquared: number,
  maxRank: number,
): { rank: number; reached: boolean } {
  if ('rank' in policy) return { rank: Math.min(policy.rank, maxRank), reached: true };
  if ('budget' in policy) throw new Error('rankFor: budget is allocated across modules, not per module');
  if (frobSquared === 0) return { rank: 0, reached: true };
  // error ε on ‖ΔW − ΔW_r‖_F/‖ΔW‖_F is energy 1 − ε².
  const target = 'energy' in policy ? policy.energy : 1 - policy.error * policy.error;
  const energy = new Float64Array(s.length);
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc += s[i]! * s[i]!;
    energy[i] = acc / frobSquared;
  }
  const r = rankAt(energy, target);
  if (r === null) return { rank: Math.min(s.length, maxRank), reached: false };
  return { rank: Math.min(r, maxRank), reached: r <= maxRank };
}

/** One module's spectrum, for the budget allocator. */
export interface BudgetModule {
  /** Parameters one rank costs: m + n. */
  cost: number;
  /** Descending singular values computed. */
  s: ArrayLike<number>;
  frobSquared: number;
  /** Most ranks this module may get. */
  maxRank: number;
}

/**
 * Allocate ranks across modules for at most `budget` parameters, minimising Σ‖ΔW − ΔW_r‖_F²
 * (or Σ of relative squared errors): greedy on the gain per parameter σ_i² / (m + n)
 * (divided by ‖ΔW‖_F² when relative). Each module's gains decrease with i, so taking
 * the best ratio first is what the optimum takes (up to the last, partly fitting ranks:
 * the scan goes on to cheaper modules while budget is left).
 * Throws UsageError when the budget cannot give every module `minRank`.
 * Cost O(R log M) for R ranks allocated over M modules.
 */
export function allocateBudget(
  modules: BudgetModule[],
  budget: number,
  { relative = false, minRank = 1 }: { relative?: boolean; minRank?: number } = {},
): number[] {
  const ranks = modules.map((m) => Math.min(minRank, m.maxRank, m.s.length));
  const floor = modules.reduce((sum, m, i) => sum + ranks[i]! * m.cost, 0);
  if (floor > budget) {
    const option = relative ? 'budgetRelative' : 'budget';
    throw new UsageError(
      `\`${option}\` ${budget} is too small: ${minRank === 1 ? 'one rank' : `${minRank} ranks`} in each of the ${modules.length} modules takes ${floor} parameters (the minimum); raise the budget or lower \`minRank\``,
      { option },
    );
  }
  let left = budget - floor;
  const gain = (i: number, r: number) => {
    const m = modules[i]!;
    const sv = m.s[r]!;
    return (sv * sv) / (relative && m.frobSquared > 0 ? m.frobSquared : 1) / m.cost;
  };
  // Max-heap of (gain of the next rank, module).
  const heap: [number, number][] = [];
  const push = (g: number, i: number) => {
    heap.push([g, i]);
    let c = heap.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (heap[p]![0] >= heap[c]![0]) break;
      [heap[p], heap[c]] = [heap[c]!, heap[p]!];
      c = p;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        const r = l + 1;
        let best = p;
        if (l < heap.length && heap[l]![0] > heap[best]![0]) best = l;
        if (r < heap.length && heap[r]![0] > heap[best]![0]) best = r;
        if (best === p) break;
        [heap[p], heap[best]] = [heap[best]!, heap[p]!];
        p = best;
      }
    }
    return top;
  };
  const limit = (i: number) => Math.min(modules[i]!.maxRank, modules[i]!.s.length);
  modules.forEach((_, i) => {
    if (ranks[i]! < limit(i)) push(gain(i, ranks[i]!), i);
  });
  while (heap.length > 0) {
    const [g, i] = pop();
    if (g <= 0) break;
    const cost = modules[i]!.cost;
    // A module whose next rank does not fit is dropped: its later ranks cost the same and gain less.
    if (cost > left) continue;
    left -= cost;
    ranks[i]!++;
    if (ranks[i]! < limit(i)) push(gain(i, ranks[i]!), i);
  }
  return ranks;
}
