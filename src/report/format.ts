/** Number formatting for report text and tables: short, unit-aware, and stable across locales. */

/** 3 significant digits; exponent form outside [1e-3, 1e5). */
export function formatNumber(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

/** A fraction as a percentage: 0.0115 → "1.15 %". */
export function formatPercent(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return `${formatNumber(x * 100, digits)} %`;
}

/** A count with a k/M/G suffix: 131072 → "131k", 4194304 → "4.19M". */
export function formatCount(n: number): string {
  const units = ['', 'k', 'M', 'G', 'T'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? String(Math.round(v)) : `${Number(v.toPrecision(3))}${units[i]}`;
}

/** A rank, or "> k" where the spectrum computed stops before the threshold. */
export function formatRank(r: number | null | undefined, k: number): string {
  return r === null || r === undefined ? `> ${k}` : String(r);
}

/** "4096×11008" */
export function formatShape(shape: readonly number[]): string {
  return shape.join('×');
}

/** A tensor name for display: without the "model." prefix and the ".weight" suffix every tensor shares. */
export function shortName(name: string): string {
  return name.replace(/^model\./, '').replace(/\.weight$/, '');
}

/**
 * Largest and smallest of `xs` by a loop (−∞ and +∞ when empty). `Math.max(...xs)` passes
 * every element as an argument and overflows the call stack past about 100,000 of them.
 */
export function maxOf(xs: Iterable<number>): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  return m;
}

export function minOf(xs: Iterable<number>): number {
  let m = Infinity;
  for (const x of xs) if (x < m) m = x;
  return m;
}
