/**
 * One self-contained HTML page: a nav bar, one card per section, plotly inlined and every
 * figure's data in a single JSON blob drawn after load. Opening the file makes no network
 * request: no CDN, no web font, no fetch.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DeltarankError } from '../errors.js';

/** A plotly figure drawn after load into the `<div id={divId}>` the section's html holds. */
export interface PlotSpec {
  divId: string;
  data: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/**
 * One card of the page.
 * `data` goes into the page's JSON blob under the section id; `script` is the body of a
 * function `(data, Plotly, config)` run after the plots are drawn (for views that redraw
 * on input, such as a tensor picker); it may return a promise that settles once its own
 * plots are drawn. Every plot container carries the class `dr-plot`; a figure a script
 * draws needs its container's CSS height set (plotly resizes responsive figures to it).
 */
export interface ReportSection {
  id: string;
  title: string;
  html: string;
  /** plotly figures: { divId, data, layout } rendered after load */
  plots?: PlotSpec[];
  data?: unknown;
  script?: string;
}

/** Significant digits kept for non-integer numbers in the blob: far below what a plot resolves, and it halves the size. */
const BLOB_DIGITS = 6;

let plotlySource: string | undefined;

/** plotly.min.js, read once, made safe to sit inside a `<script>` element. */
function plotlyScript(): string {
  if (plotlySource === undefined) {
    const file = createRequire(import.meta.url).resolve('plotly.js-dist-min');
    plotlySource = escapeScript(readFileSync(file, 'utf8'));
  }
  return plotlySource;
}

/**
 * Make JavaScript source safe inside `<script>…</script>`: `</script` would end the
 * element and `<!--` opens the HTML parser's escaped state. Both only occur inside string
 * or regex literals in practice, where `<\/` and `<\!` mean the same characters.
 */
export function escapeScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** Text for HTML content or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * JSON for a `<script type="application/json">` element: `<` written as \u003c so no
 * string in the data can close the element; numbers rounded to BLOB_DIGITS significant
 * digits; non-finite numbers become null (JSON has no Infinity).
 */
export function serializeBlob(value: unknown): string {
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'number') return v;
    if (!Number.isFinite(v)) return null;
    return Number.isInteger(v) ? v : Number(v.toPrecision(BLOB_DIGITS));
  });
  return json
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const CSS = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #dfe3ea; --bg: #f4f6f9; --card: #fff; --accent: #2d5fb4; }
* { box-sizing: border-box; }
html { scroll-padding-top: 56px; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.dr-head { padding: 18px 24px 8px; max-width: 1240px; margin: 0 auto; }
header.dr-head h1 { margin: 0; font-size: 22px; font-weight: 650; }
header.dr-head p { margin: 4px 0 0; color: var(--muted); }
nav.dr-nav { position: sticky; top: 0; z-index: 10; background: rgba(244,246,249,.95); border-bottom: 1px solid var(--line);
  backdrop-filter: blur(4px); }
nav.dr-nav ul { list-style: none; margin: 0 auto; padding: 8px 24px; display: flex; flex-wrap: wrap; gap: 4px 18px; max-width: 1240px; }
nav.dr-nav a { color: var(--accent); text-decoration: none; font-weight: 550; }
nav.dr-nav a:hover { text-decoration: underline; }
main { max-width: 1240px; margin: 0 auto; padding: 12px 24px 40px; }
section.dr-card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0;
  box-shadow: 0 1px 2px rgba(20,30,50,.04); }
section.dr-card > h2 { margin: 0 0 10px; font-size: 17px; font-weight: 650; }
.dr-note { color: var(--muted); margin: 4px 0 10px; max-width: 80ch; }
.dr-plot { width: 100%; min-height: 200px; }
.dr-tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 8px 0 14px; }
.dr-tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.dr-tile b { display: block; font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.dr-tile span { color: var(--muted); font-size: 12px; }
.dr-grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; align-items: start; }
@media (max-width: 900px) { .dr-grid2 { grid-template-columns: minmax(0, 1fr); } }
/* Tables show every row (no inner scroll box: a printed or full-page view would show the first twenty); wide ones scroll sideways. */
.dr-scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table.dr-table { border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.dr-table th, table.dr-table td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
table.dr-table th:first-child, table.dr-table td:first-child { text-align: left; }
table.dr-table .dr-text { text-align: left; }
table.dr-table td.dr-text { white-space: normal; }
table.dr-table thead th { position: sticky; top: 0; background: #eef1f6; font-weight: 600; }
table.dr-sortable thead th { cursor: pointer; user-select: none; }
table.dr-sortable thead th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
table.dr-sortable thead th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
table.dr-table tbody tr:hover { background: #f6f8fc; }
.dr-bound { color: #9a3d00; }
label.dr-pick { display: inline-flex; gap: 8px; align-items: center; margin: 0 0 6px; font-weight: 550; }
label.dr-pick select { font: inherit; padding: 3px 6px; max-width: 60ch; }
code { font-size: 12.5px; }
`;

/** Draws every PlotSpec, then tells the section scripts; sorts `table.dr-sortable` on header click. */
const BOOT_JS = `
(function () {
  'use strict';
  var blob = JSON.parse(document.getElementById('dr-data').textContent);
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ['sendDataToCloud', 'lasso2d', 'select2d'] };
  var pending = [];
  window.deltarank = { data: blob.sections, config: config, pending: pending };
  blob.plots.forEach(function (p) {
    // plotly sizes a responsive figure from its container on every relayout: the container holds the height
    var div = document.getElementById(p.divId);
    if (div && p.layout && p.layout.height && !div.style.height) div.style.height = p.layout.height + 'px';
    pending.push(Plotly.newPlot(p.divId, p.data, p.layout || {}, Object.assign({}, config, p.config || {})));
  });
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v !== null) return v === '' ? Infinity : Number(v);
    return cell.textContent.trim().toLowerCase();
  }
  document.querySelectorAll('table.dr-sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        table.querySelectorAll('thead th').forEach(function (o) { o.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
`;

const READY_JS = `
Promise.all(window.deltarank.pending).then(function () {
  document.body.setAttribute('data-plots-ready', String(document.querySelectorAll('.dr-plot').length));
}, function (err) {
  console.error('deltarank report: a plot failed to draw:', err);
});
`;

/**
 * One self-contained HTML page from sections (≈ 4.8 MB of plotly plus the data).
 *
 * @example
 * const html = renderPage({ title: 'ΔW spectrum', sections: spectrumSections(result) });
 */
export function renderPage(opts: { title: string; subtitle?: string; sections: ReportSection[] }): string {
  const { title, subtitle, sections } = opts;
  const ids = new Set<string>();
  for (const s of sections) {
    if (ids.has(s.id)) throw new DeltarankError(`report: two sections have the id "${s.id}"`);
    ids.add(s.id);
  }
  const blob = {
    plots: sections.flatMap((s) => s.plots ?? []),
    sections: Object.fromEntries(sections.filter((s) => s.data !== undefined).map((s) => [s.id, s.data])),
  };
  const nav = sections.map((s) => `<li><a href="#${escapeHtml(s.id)}">${escapeHtml(s.title)}</a></li>`).join('');
  const cards = sections
    .map(
      (s) =>
        `<section class="dr-card" id="${escapeHtml(s.id)}">\n<h2>${escapeHtml(s.title)}</h2>\n${s.html}\n</section>`,
    )
    .join('\n');
  const scripts = sections
    .filter((s) => s.script !== undefined)
    .map(
      (s) =>
        `<script>window.deltarank.pending.push(Promise.resolve((function (data, Plotly, config) {\n${escapeScript(s.script!)}\n})(window.deltarank.data[${JSON.stringify(s.id)}], Plotly, window.deltarank.config)));</script>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="dr-head"><h1>${escapeHtml(title)}</h1>${subtitle ? `<p>${escapeHtml(subtitle)}</p>` : ''}</header>
<nav class="dr-nav"><ul>${nav}</ul></nav>
<main>
${cards}
</main>
<script type="application/json" id="dr-data">${serializeBlob(blob)}</script>
<script>${plotlyScript()}</script>
<script>${BOOT_JS}</script>
${scripts}
<script>${READY_JS}</script>
</body>
</html>
`;
}
