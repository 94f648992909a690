/**
 * `npm run bench [-- AREA ...]`: speed and memory figures, each measured in this run,
 * beside its peer and target. Areas run one after another so they do not share the CPUs.
 */
import { availableParallelism, cpus, totalmem } from 'node:os';
import type { BenchRow } from './types.js';

const AREAS = ['io', 'svd', 'svd-exact', 'analyze', 'extract', 'fidelity', 'train', 'train-variants'] as const;

const wanted = process.argv.slice(2);
const unknown = wanted.filter((a) => !(AREAS as readonly string[]).includes(a));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown area ${unknown.join(', ')}; known: ${AREAS.join(', ')}\n`);
  process.exit(2);
}
const areas = wanted.length > 0 ? wanted : [...AREAS];

process.stderr.write(
  `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}\n`,
);

const rows: BenchRow[] = [];
for (const area of areas) {
  process.stderr.write(`bench: ${area} …\n`);
  const mod = (await import(`./${area}.ts`)) as { bench: () => Promise<BenchRow[]> };
  const got = await mod.bench();
  for (const r of got) process.stderr.write(`  ${r.name}: ${r.figure}\n`);
  rows.push(...got);
}

const header = ['area', 'measurement', 'figure', 'peer', 'target', 'met'];
const cells = rows.map((r) => [
  r.area,
  r.name,
  r.figure,
  r.peer ?? '',
  r.target ?? '',
  r.met === undefined ? '' : r.met ? 'yes' : 'NO',
]);
const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c]!.length)));
const line = (row: string[]) => '| ' + row.map((v, c) => v.padEnd(widths[c]!)).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const row of cells) console.log(line(row));
