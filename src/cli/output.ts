/**
 * Terminal output shared by every command: results to stdout, everything else to
 * stderr, progress only on a TTY, one JSON document under `--json`.
 */
import { SCHEMA_VERSION, TOOL } from '../version.js';

/** Flags every command takes. */
export interface CommonArgs {
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
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
  if (!args.quiet) process.stderr.write(`warning: ${line}\n`);
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

/** Left-aligned text table with a header row; numbers right-aligned. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number'));
  return cells
    .map((r) => r.map((v, c) => (numeric[c] ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n');
}

export interface Progress {
  /** Report that `done` of `total` units are finished, with an optional detail. */
  update(done: number, detail?: string): void;
  /** Clear the line. */
  finish(): void;
}

/**
 * A one-line progress indicator with ETA on stderr; silent unless stderr is a TTY
 * and neither `--json` nor `--quiet` is set.
 */
export function createProgress(args: CommonArgs, label: string, total: number): Progress {
  const active = Boolean(process.stderr.isTTY) && !args.json && !args.quiet;
  const start = performance.now();
  let last = 0;
  return {
    update(done, detail) {
      if (!active) return;
      const now = performance.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const elapsed = (now - start) / 1000;
      const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
      const etaText = Number.isFinite(eta) ? `ETA ${formatDuration(eta)}` : 'ETA --';
      const line = `${label} ${done}/${total} ${etaText}${detail ? `  ${detail}` : ''}`;
      const width = process.stderr.columns ?? 100;
      process.stderr.write('\r' + line.slice(0, width - 1).padEnd(width - 1));
    },
    finish() {
      if (active) process.stderr.write('\r' + ' '.repeat((process.stderr.columns ?? 100) - 1) + '\r');
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
