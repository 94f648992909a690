/**
 * Terminal output shared by every command: results to stdout, everything else to
 * stderr, progress only on a TTY, one JSON document under `--json`.
 */
import { SCHEMA_VERSION, TOOL } from '../version.js';
import { withFlags } from './option-flags.js';

/** Flags every command takes. */
export interface CommonArgs {
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

let currentOutput: string | undefined;

/**
 * Name the output a command is about to write: a system error that names no path (a write
 * to an open file) is then reported against it.
 */
export function writingTo(path: string): void {
  currentOutput = path;
}

/** The output named last by `writingTo`. */
export function lastOutput(): string | undefined {
  return currentOutput;
}

/** Print one JSON document (with schemaVersion and tool first) and nothing else. */
export function printJson(doc: object): void {
  process.stdout.write(JSON.stringify({ schemaVersion: SCHEMA_VERSION, tool: TOOL, ...doc }, null, 2) + '\n');
}

/** A line for a person, on stderr, unless `--json` or `--quiet`. */
export function say(args: CommonArgs, line: string): void {
  if (!args.json && !args.quiet) process.stderr.write(line + '\n');
}

/** A warning: on stderr unless `--quiet` (kept under `--json`, where stdout holds the document). */
export function warn(args: CommonArgs, line: string): void {
  // Library warnings name options as the API spells them: shown as the flags that set them.
  if (!args.quiet) process.stderr.write(`warning: ${withFlags(line)}\n`);
}

/** Human-readable byte count: 1.5 GB, 12.0 MB, 512 B. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Left-aligned text table with a header row; numbers right-aligned. Widths come from a loop,
 * not `Math.max(...cells)`: spreading a column into arguments overflows the call stack past
 * about 100,000 rows (a checkpoint of 130,000 tensors).
 */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map(() => 0);
  for (const r of cells) for (let c = 0; c < widths.length; c++) widths[c] = Math.max(widths[c]!, (r[c] ?? '').length);
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number'));
  return cells
    .map((r) =>
      r
        .map((v, c) => (numeric[c] ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export interface Progress {
  /**
   * Report that `done` of `total` units are finished, with an optional detail. `work` (bytes,
   * elements, flops: any measure that grows with the time a unit takes) gives the ETA; without
   * it the ETA counts units, which misleads when the first unit is the largest.
   */
  update(done: number, detail?: string, work?: { done: number; total: number }): void;
  /** Clear the line. */
  finish(): void;
}

/** Erase from the cursor to the end of the line (ANSI EL): no padding, so no terminal width is needed. */
const CLEAR_LINE = '\x1b[K';

/**
 * A one-line progress indicator with ETA on stderr; silent unless stderr is a TTY
 * and neither `--json` nor `--quiet` is set. A terminal that reports 0 columns (a
 * pseudo-terminal without a size, as `script` makes) gets the line uncut.
 */
export function createProgress(args: CommonArgs, label: string, total: number): Progress {
  const active = Boolean(process.stderr.isTTY) && !args.json && !args.quiet;
  const start = performance.now();
  let last = 0;
  let shown = false;
  return {
    update(done, detail, work) {
      if (!active) return;
      const now = performance.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const elapsed = (now - start) / 1000;
      const fraction = work ? (work.total > 0 ? work.done / work.total : 0) : total > 0 ? done / total : 0;
      const eta = fraction > 0 ? (elapsed / fraction) * (1 - fraction) : NaN;
      const etaText = Number.isFinite(eta) ? `ETA ${formatDuration(eta)}` : 'ETA --';
      const line = `${label} ${done}/${total} ${etaText}${detail ? `  ${detail}` : ''}`;
      const columns = process.stderr.columns ?? 0;
      process.stderr.write('\r' + (columns > 1 ? line.slice(0, columns - 1) : line) + CLEAR_LINE);
      shown = true;
    },
    finish() {
      if (active && shown) process.stderr.write('\r' + CLEAR_LINE);
      shown = false;
    },
  };
}

/** 75 → "1m15s", 4.2 → "4.2s". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return m < 60 ? `${m}m${String(s).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
