/**
 * The sections of an `analyze` report: summary, layer × module heatmap, energy curves,
 * scree plots against a random-matrix baseline, extraction error frontier, tables.
 */
import type { AnalyzeResult, RankValue, TensorSpectrum } from '../analyze/types.js';
import {
  formatCount,
  formatNumber,
  formatPercent,
  formatRank,
  formatShape,
  maxOf,
  minOf,
  shortName,
} from './format.js';
import { fixedRankFrontier, greedyFrontier, matrixDims, rankGrid } from './frontier.js';
import { randomSpectrumBaseline } from './marchenko-pastur.js';
import type { PlotSpec, ReportSection } from './page.js';
import { escapeHtml, renderPage } from './page.js';
import { orderModuleTypes, tensorPlace } from './tensor-place.js';
import { pick, thinIndices } from './thin.js';

interface Placed {
  t: TensorSpectrum;
  type: string;
  layer: number | null;
  /** heatmap row label */
  row: string;
}

/** Row label of tensors outside the repeated blocks. */
const NO_LAYER = '—';

/** The heatmap's views: rank at an energy threshold, or the relative update. */
const HEATMAP_THRESHOLDS = ['0.9', '0.95', '0.99'];

/** Viridis at five stops (as matplotlib's), shared by the layer colours and their colour bar. */
const VIRIDIS: [number, string][] = [
  [0, '#440154'],
  [0.25, '#3b528b'],
  [0.5, '#21918c'],
  [0.75, '#5ec962'],
  [1, '#fde725'],
];

/** Colour of tensors without a layer in the energy plot. */
const NO_LAYER_COLOR = '#7f7f7f';

/** Cells whose value is unknown: a rank past the k computed, or a relative update without a base. */
const UNKNOWN_CELL_COLOR = '#c9ccd3';

const FONT = {
  family: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  size: 12,
  color: '#1d2330',
};

function baseLayout(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    font: FONT,
    paper_bgcolor: '#ffffff',
    plot_bgcolor: '#ffffff',
    margin: { l: 64, r: 24, t: 44, b: 52 },
    hoverlabel: { font: { family: FONT.family, size: 12 } },
    ...extra,
  };
}

function axis(title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { title: { text: title }, gridcolor: '#e8ebf0', zerolinecolor: '#d5d9e0', linecolor: '#9aa3b2', ...extra };
}

function viridis(x: number): string {
  const v = Math.min(1, Math.max(0, x));
  let i = 0;
  while (i < VIRIDIS.length - 2 && v > VIRIDIS[i + 1]![0]) i++;
  const [x0, c0] = VIRIDIS[i]!;
  const [x1, c1] = VIRIDIS[i + 1]!;
  const f = (v - x0) / (x1 - x0);
  const ch = (c: string, k: number) => parseInt(c.slice(1 + 2 * k, 3 + 2 * k), 16);
  const mix = [0, 1, 2].map((k) => Math.round(ch(c0, k) + f * (ch(c1, k) - ch(c0, k))));
  return `rgb(${mix.join(',')})`;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Median of ranks where null means "beyond the k computed" (larger than any number):
 * text "> k" when the median lands on such a value.
 */
function medianRankText(all: Placed[], key: string): { value: number | null; text: string } {
  const items = all.filter((p) => key in p.t.rankAt);
  if (items.length === 0) return { value: null, text: '—' };
  // The median of certified intervals lies between the medians of their ends.
  const median = (vals: number[]) => {
    vals.sort((a, b) => a - b);
    const mid = vals.length >> 1;
    return vals.length % 2 ? vals[mid]! : (vals[mid - 1]! + vals[mid]!) / 2;
  };
  const lo = median(items.map((p) => rankLo(p.t.rankAt[key])));
  const hi = median(items.map((p) => rankHi(p.t.rankAt[key])));
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    const k = minOf(items.filter((p) => p.t.rankAt[key] == null).map((p) => p.t.singularValues.length));
    return { value: null, text: `> ${k}` };
  }
  return lo === hi
    ? { value: lo, text: formatNumber(lo) }
    : { value: null, text: `${formatNumber(lo)}–${formatNumber(hi)}` };
}

/** A rank as certified: the number, or the ends of its interval (schema-1 documents held null past the values computed). */
function rankLo(r: RankValue | null | undefined): number {
  return r == null ? Infinity : typeof r === 'number' ? r : r.lo;
}
function rankHi(r: RankValue | null | undefined): number {
  return r == null ? Infinity : typeof r === 'number' ? r : r.hi;
}
function rankExact(r: RankValue | null | undefined): number | null {
  return typeof r === 'number' ? r : null;
}
function rankText(r: RankValue | null | undefined, k: number): string {
  return r == null ? formatRank(null, k) : typeof r === 'number' ? String(r) : `${r.lo}–${r.hi}`;
}

/** The adapter an `extract` run wrote, marked on the error-vs-size plot. */
export interface AdapterPoint {
  params: number;
  /** Model-level relative error measured from the factors as written. */
  error: number;
  /** The policy, as a user would type it ("--energy 0.9"). */
  policy: string;
}

export interface SpectrumSectionOptions {
  /** Mark this adapter on the error-vs-size plot (the extract report). */
  adapter?: AdapterPoint;
  /** Tensors saved whole rather than analyzed (the extract report's norms): shown in place of "other tensors". */
  savedWhole?: string[];
  /** How to get the singular values past those computed, in the words of the command that made the report. */
  moreValues?: string;
}

function thresholdLabel(key: string): string {
  return `r${Math.round(Number(key) * 100)}`;
}

function place(tensors: TensorSpectrum[]): Placed[] {
  return tensors.map((t) => {
    const { moduleType, layer } = tensorPlace(t.name);
    return { t, type: moduleType, layer, row: layer === null ? NO_LAYER : String(layer) };
  });
}

function rowLabels(items: Placed[]): string[] {
  const layers = [...new Set(items.filter((p) => p.layer !== null).map((p) => p.layer!))].sort((a, b) => a - b);
  const rows = layers.map(String);
  if (items.some((p) => p.layer === null)) rows.push(NO_LAYER);
  return rows;
}

function tile(value: string, label: string): string {
  return `<div class="dr-tile"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`;
}

function sourceLine(result: AnalyzeResult): string {
  const parts: string[] = [];
  if (result.base) parts.push(`base <code>${escapeHtml(result.base)}</code>`);
  if (result.tuned) parts.push(`tuned <code>${escapeHtml(result.tuned)}</code>`);
  if (result.delta) parts.push(`ΔW <code>${escapeHtml(result.delta)}</code>`);
  if (result.adapter) parts.push(`adapter <code>${escapeHtml(result.adapter)}</code>`);
  return parts.join(' · ');
}

/**
 * A median-rank tile. Where the median lies past the values computed, "> k" alone says little:
 * the label adds how many tensors stop short and the median energy they reach at their last value.
 */
function rankTile(items: Placed[], key: string, label: string, hint: string): string {
  const m = medianRankText(items, key);
  if (m.value !== null || m.text === '—') return tile(m.text, label);
  const short = items.filter((p) => key in p.t.rankAt && p.t.rankAt[key] == null);
  const reached = short.map((p) => p.t.energy[p.t.energy.length - 1] ?? 0).sort((a, b) => a - b);
  const median = reached[reached.length >> 1] ?? 0;
  return tile(
    m.text,
    `${label}: ${short.length} of ${items.length} tensors stop short of it, keeping a median ${formatPercent(median)} at their last value ${hint}`,
  );
}

function summarySection(
  result: AnalyzeResult,
  items: Placed[],
  types: string[],
  opts: SpectrumSectionOptions,
): ReportSection {
  const sumDelta = items.reduce((s, p) => s + p.t.deltaNorm ** 2, 0);
  const allBase = items.length > 0 && items.every((p) => p.t.baseNorm !== null);
  const sumBase = items.reduce((s, p) => s + (p.t.baseNorm ?? 0) ** 2, 0);
  const layers = new Set(items.filter((p) => p.layer !== null).map((p) => p.layer));
  const hint = opts.moreValues ?? '(raise --top-k, or --exact)';
  const tiles = [
    tile(String(items.length), 'tensors analyzed (2-D)'),
    tile(String(layers.size), 'layers'),
    tile(formatNumber(Math.sqrt(sumDelta)), '‖ΔW‖_F of all 2-D tensors together'),
    tile(
      allBase && sumBase > 0 ? formatPercent(Math.sqrt(sumDelta / sumBase)) : '—',
      'overall relative update ‖ΔW‖/‖W‖',
    ),
    rankTile(items, '0.9', 'median rank at 90 % energy', hint),
    rankTile(items, '0.99', 'median rank at 99 % energy', hint),
    opts.savedWhole
      ? tile(String(opts.savedWhole.length), 'other tensors saved whole (modules_to_save)')
      : tile(String(result.others.length), 'other tensors (norms, biases)'),
    tile(String(result.skipped.length), 'skipped'),
    tile(`${formatNumber(result.seconds)} s`, 'analysis time'),
  ];
  const rankKeys = HEATMAP_THRESHOLDS.filter((k) => items.some((p) => k in p.t.rankAt));
  const rows = types.map((type) => {
    const of = items.filter((p) => p.type === type);
    const rel = of.map((p) => p.t.relativeUpdate).filter((x): x is number => x !== null);
    const share = of.reduce((s, p) => s + p.t.deltaNorm ** 2, 0) / (sumDelta || 1);
    const shapes = [...new Set(of.map((p) => formatShape(p.t.shape)))];
    const ranks = rankKeys.map((k) => {
      const m = medianRankText(of, k);
      return `<td data-v="${m.value ?? ''}">${escapeHtml(m.text)}</td>`;
    });
    const medRel = median(rel);
    const maxRel = rel.length ? maxOf(rel) : null;
    return `<tr><td>${escapeHtml(type)}</td><td data-v="${of.length}">${of.length}</td><td class="dr-text">${escapeHtml(shapes.join(', '))}</td>${ranks.join('')}<td data-v="${medRel ?? ''}">${formatPercent(medRel)}</td><td data-v="${maxRel ?? ''}">${formatPercent(maxRel)}</td><td data-v="${share}">${formatPercent(share)}</td></tr>`;
  });
  const typeTable = `<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-type-table"><thead><tr><th>module type</th><th>tensors</th><th>shape</th>${rankKeys
    .map((k) => `<th>median ${thresholdLabel(k)}</th>`)
    .join(
      '',
    )}<th>median rel. update</th><th>max rel. update</th><th>share of ‖ΔW‖²</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;

  const plots: PlotSpec[] = [];
  const withRel = items.filter((p) => p.t.relativeUpdate !== null && p.t.relativeUpdate > 0);
  let boxHtml = '';
  if (withRel.length > 0) {
    const boxTypes = types.filter((type) => withRel.some((p) => p.type === type));
    plots.push({
      divId: 'dr-relupdate-plot',
      data: boxTypes.map((type) => {
        const of = withRel.filter((p) => p.type === type);
        return {
          type: 'box',
          name: type,
          y: of.map((p) => p.t.relativeUpdate),
          text: of.map((p) => escapeHtml(shortName(p.t.name))),
          boxpoints: 'all',
          jitter: 0.35,
          pointpos: 0,
          marker: { size: 4, color: '#2d5fb4', opacity: 0.7 },
          line: { color: '#1d2330', width: 1 },
          fillcolor: 'rgba(45,95,180,0.08)',
          hovertemplate: '%{text}<br>‖ΔW‖/‖W‖ = %{y:.3~%}<extra></extra>',
          showlegend: false,
        };
      }),
      layout: baseLayout({
        height: 320,
        title: { text: 'Relative update ‖ΔW‖/‖W‖ by module type', font: { size: 13 } },
        yaxis: axis('‖ΔW‖ / ‖W‖', { type: 'log', tickformat: '.2~%' }),
        xaxis: axis(''),
      }),
    });
    boxHtml = `<div class="dr-plot" id="dr-relupdate-plot"></div>`;
  }

  const skippedHtml =
    result.skipped.length === 0
      ? '<p class="dr-note">Nothing was skipped.</p>'
      : `<p class="dr-note"><b>${result.skipped.length} skipped</b> (all listed under <a href="#tensors">Every tensor</a>):</p><ul class="dr-note">${summarizeReasons(result)}</ul>`;

  const html = `<p class="dr-note">${sourceLine(result)} · ${escapeHtml(result.tool.name)} ${escapeHtml(result.tool.version)}</p>
<div class="dr-tiles">${tiles.join('')}</div>
${typeTable}
${boxHtml}
${skippedHtml}`;
  return { id: 'summary', title: 'Summary', html, plots };
}

/** Skip reasons grouped by their wording up to the first digit, so 40 "shape […] vs […]" lines read as one. */
function summarizeReasons(result: AnalyzeResult): string {
  const groups = new Map<string, { count: number; example: string }>();
  for (const s of result.skipped) {
    const key = s.reason.replace(/[\d[].*$/, '').trim() || s.reason;
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { count: 1, example: `${s.name}: ${s.reason}` });
  }
  return [...groups.values()]
    .map((g) => `<li>${g.count > 1 ? `${g.count} × like ` : ''}<code>${escapeHtml(g.example)}</code></li>`)
    .join('');
}

function heatmapSection(items: Placed[], types: string[]): ReportSection {
  const rows = rowLabels(items);
  const cell = new Map<string, Placed[]>();
  for (const p of items) {
    const key = `${p.row}\u0000${p.type}`;
    const list = cell.get(key);
    if (list) list.push(p);
    else cell.set(key, [p]);
  }
  const grid = <T>(f: (ps: Placed[]) => T, empty: T): T[][] =>
    rows.map((r) =>
      types.map((c) => {
        const ps = cell.get(`${r}\u0000${c}`);
        return ps ? f(ps) : empty;
      }),
    );
  const names = grid((ps) => ps.map((p) => escapeHtml(shortName(p.t.name))).join('<br>'), '');

  interface Mode {
    label: string;
    title: string;
    colorTitle: string;
    z: (number | null)[][];
    text: string[][];
    unknown: (number | null)[][];
    unknownText: string[][];
    ticks: { vals: number[]; text: string[] };
  }
  const logTicks = (lo: number, hi: number, fmt: (v: number) => string) => {
    const vals: number[] = [];
    const text: string[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= lo / 1.0001 && v <= hi * 1.0001) {
          vals.push(Math.log10(v));
          text.push(fmt(v));
        }
      }
    }
    if (vals.length === 0) {
      vals.push(Math.log10(lo));
      text.push(fmt(lo));
    }
    return { vals, text };
  };
  const modeOf = (
    label: string,
    title: string,
    colorTitle: string,
    value: (p: Placed) => number | null,
    show: (p: Placed) => string,
    missing: (ps: Placed[]) => string,
    fmt: (v: number) => string,
  ): Mode => {
    // A cell holding several tensors (two modules sharing a type name) shows the largest.
    const best = (ps: Placed[]) => {
      const vs = ps.map(value);
      if (vs.some((v) => v === null)) return null;
      return maxOf(vs as number[]);
    };
    const z = grid((ps) => {
      const v = best(ps);
      return v !== null && v > 0 ? Math.log10(v) : null;
    }, null);
    // Off the colour scale: unknown values, and zero (an unchanged tensor has rank 0, which no log scale shows).
    const off = (ps: Placed[]) => {
      const v = best(ps);
      return v === null || v <= 0;
    };
    const text = grid((ps) => (off(ps) ? '' : ps.map(show).join(' / ')), '');
    const unknown = grid((ps) => (off(ps) ? 1 : null), null);
    const unknownText = grid((ps) => (best(ps) === null ? missing(ps) : off(ps) ? 'unchanged' : ''), '');
    const present = items.map(value).filter((v): v is number => v !== null && v > 0);
    const ticks = present.length ? logTicks(minOf(present), maxOf(present), fmt) : { vals: [0], text: [fmt(1)] };
    return { label, title, colorTitle, z, text, unknown, unknownText, ticks };
  };
  const modes: Mode[] = [];
  for (const key of HEATMAP_THRESHOLDS) {
    if (!items.some((p) => key in p.t.rankAt)) continue;
    const pct = Math.round(Number(key) * 100);
    modes.push(
      modeOf(
        `rank at ${pct} %`,
        `Rank at ${pct} % energy`,
        thresholdLabel(key),
        (p) => rankExact(p.t.rankAt[key]),
        (p) => rankText(p.t.rankAt[key], p.t.singularValues.length),
        (ps) => ps.map((p) => rankText(p.t.rankAt[key], p.t.singularValues.length)).join(' / '),
        (v) => formatCount(v),
      ),
    );
  }
  if (items.some((p) => p.t.relativeUpdate !== null)) {
    modes.push(
      modeOf(
        'relative update',
        'Relative update ‖ΔW‖/‖W‖',
        '‖ΔW‖/‖W‖',
        (p) => p.t.relativeUpdate,
        (p) => formatPercent(p.t.relativeUpdate),
        () => 'no base',
        (v) => formatPercent(v, 2),
      ),
    );
  }
  const first = modes[0];
  if (first === undefined) {
    return {
      id: 'heatmap',
      title: 'Rank by layer and module',
      html: '<p class="dr-note">No energy thresholds and no base norms in this result: nothing to map.</p>',
    };
  }
  const traces = [
    {
      type: 'heatmap',
      x: types,
      y: rows,
      z: first.z,
      text: first.text,
      customdata: names,
      texttemplate: '%{text}',
      textfont: { size: 10 },
      colorscale: VIRIDIS,
      colorbar: {
        title: { text: first.colorTitle },
        tickvals: first.ticks.vals,
        ticktext: first.ticks.text,
        thickness: 14,
      },
      hovertemplate: '%{customdata}<br>layer %{y} · %{x}: <b>%{text}</b><extra></extra>',
      xgap: 2,
      ygap: 2,
      hoverongaps: false,
    },
    {
      type: 'heatmap',
      x: types,
      y: rows,
      z: first.unknown,
      text: first.unknownText,
      customdata: names,
      texttemplate: '%{text}',
      textfont: { size: 10, color: '#1d2330' },
      colorscale: [
        [0, UNKNOWN_CELL_COLOR],
        [1, UNKNOWN_CELL_COLOR],
      ],
      showscale: false,
      hovertemplate: '%{customdata}<br>layer %{y} · %{x}: <b>%{text}</b><extra></extra>',
      xgap: 2,
      ygap: 2,
      hoverongaps: false,
    },
  ];
  const buttons = modes.map((m) => ({
    label: m.label,
    method: 'update',
    args: [
      {
        z: [m.z, m.unknown],
        text: [m.text, m.unknownText],
        'colorbar.title.text': [m.colorTitle, m.colorTitle],
        'colorbar.tickvals': [m.ticks.vals, m.ticks.vals],
        'colorbar.ticktext': [m.ticks.text, m.ticks.text],
      },
      { 'title.text': `${m.title}, layer × module` },
    ],
  }));
  const height = Math.max(320, 110 + 24 * rows.length);
  const plot: PlotSpec = {
    divId: 'dr-heatmap-plot',
    data: traces,
    layout: baseLayout({
      height,
      title: { text: `${first.title}, layer × module`, font: { size: 14 }, x: 0.01, xanchor: 'left' },
      margin: { l: 56, r: 24, t: 76, b: 40 },
      xaxis: axis('', { type: 'category', side: 'top', showgrid: false }),
      yaxis: axis('layer', { type: 'category', autorange: 'reversed', showgrid: false }),
      updatemenus: [
        {
          type: 'buttons',
          direction: 'right',
          x: 1,
          xanchor: 'right',
          y: 1.0,
          yanchor: 'bottom',
          pad: { b: 24 },
          showactive: true,
          active: 0,
          buttons,
          font: { size: 11 },
        },
      ],
    }),
  };
  const html = `<p class="dr-note">Each cell is one tensor; colour on a log scale. Buttons switch between the rank needed for 90, 95 and 99 % of ‖ΔW‖²
and the relative update. <span style="background:${UNKNOWN_CELL_COLOR};padding:0 4px;border-radius:3px">Grey cells</span> read “&gt; k”: the rank lies past the k singular values computed
(“no base”: no base weights were read; “unchanged”: ΔW = 0).</p>
<div class="dr-plot" id="dr-heatmap-plot"></div>`;
  return { id: 'heatmap', title: 'Rank by layer and module', html, plots: [plot] };
}

function energySection(items: Placed[], types: string[]): ReportSection {
  const layers = items.filter((p) => p.layer !== null).map((p) => p.layer!);
  const minL = layers.length ? minOf(layers) : 0;
  const maxL = layers.length ? maxOf(layers) : 0;
  const colorOf = (p: Placed) =>
    p.layer === null ? NO_LAYER_COLOR : viridis(maxL > minL ? (p.layer - minL) / (maxL - minL) : 0.5);
  const traces: Record<string, unknown>[] = [];
  const owner: string[] = [];
  const symbols: Record<string, string> = { '0.9': 'circle', '0.95': 'diamond', '0.99': 'square' };
  for (const type of types) {
    const of = items.filter((p) => p.type === type);
    for (const p of of) {
      const idx = thinIndices(p.t.energy.length);
      traces.push({
        type: 'scatter',
        mode: 'lines',
        x: idx.map((i) => i + 1),
        y: pick(p.t.energy, idx),
        name: shortName(p.t.name),
        line: { color: colorOf(p), width: 1.3 },
        opacity: 0.85,
        hovertemplate: `${escapeHtml(shortName(p.t.name))}<br>rank %{x}: E = %{y:.4f}<extra></extra>`,
        showlegend: false,
      });
      owner.push(type);
    }
    for (const key of HEATMAP_THRESHOLDS) {
      const hit = of.filter(
        (p) => rankExact(p.t.rankAt[key]) !== null && rankExact(p.t.rankAt[key])! <= p.t.energy.length,
      );
      traces.push({
        type: 'scatter',
        mode: 'markers',
        x: hit.map((p) => rankExact(p.t.rankAt[key])),
        y: hit.map((p) => p.t.energy[rankExact(p.t.rankAt[key])! - 1]),
        text: hit.map((p) => escapeHtml(shortName(p.t.name))),
        name: thresholdLabel(key),
        marker: { symbol: symbols[key], size: 7, color: '#ffffff', line: { color: '#1d2330', width: 1.3 } },
        hovertemplate: `%{text}<br>${thresholdLabel(key)} = %{x}<extra></extra>`,
      });
      owner.push(type);
    }
  }
  const layerBar = {
    type: 'scatter',
    mode: 'markers',
    x: [null],
    y: [null],
    hoverinfo: 'skip',
    showlegend: false,
    marker: {
      color: [minL],
      cmin: minL,
      cmax: Math.max(maxL, minL + 1),
      colorscale: VIRIDIS,
      showscale: layers.length > 0,
      colorbar: { title: { text: 'layer' }, thickness: 12, len: 0.6, y: 0.3, yanchor: 'middle' },
    },
  };
  const visibleFor = (type: string) => [...owner.map((o) => o === type), true];
  const first = types[0]!;
  const buttons = types.map((type) => ({
    label: `${type} (${items.filter((p) => p.type === type).length})`,
    method: 'update',
    args: [{ visible: visibleFor(type) }, { 'title.text': `Cumulative energy E(r), module type ${type}` }],
  }));
  traces.forEach((t, i) => (t.visible = owner[i] === first));
  const shapes = HEATMAP_THRESHOLDS.map((key) => ({
    type: 'line',
    xref: 'paper',
    x0: 0,
    x1: 1,
    y0: Number(key),
    y1: Number(key),
    line: { color: '#9aa3b2', width: 1, dash: 'dot' },
  }));
  const plot: PlotSpec = {
    divId: 'dr-energy-plot',
    data: [...traces, layerBar],
    layout: baseLayout({
      height: 460,
      title: { text: `Cumulative energy E(r), module type ${first}`, font: { size: 14 }, x: 0.01, xanchor: 'left' },
      margin: { l: 64, r: 24, t: 84, b: 52 },
      xaxis: axis('rank r (log)', { type: 'log' }),
      yaxis: axis('E(r) = Σᵢ≤ᵣ σᵢ² / ‖ΔW‖²', { range: [0, 1.02] }),
      legend: { orientation: 'h', x: 1, xanchor: 'right', y: 1.0, yanchor: 'bottom' },
      shapes,
      updatemenus: [
        {
          type: 'dropdown',
          x: 0,
          xanchor: 'left',
          y: 1.0,
          yanchor: 'bottom',
          pad: { b: 8 },
          active: 0,
          buttons,
          font: { size: 11 },
        },
      ],
    }),
  };
  const html = `<p class="dr-note">Every tensor of one module type overlaid (pick the type in the menu); colour = layer depth.
Markers show the ranks r90 / r95 / r99 where E(r) first reaches 0.9 / 0.95 / 0.99 — a curve that rises fast is a low-rank update.</p>
<div class="dr-plot" id="dr-energy-plot"></div>`;
  return { id: 'energy', title: 'Cumulative energy', html, plots: [plot] };
}

const SCREE_HEIGHT = 420;

/** Redraws the scree plot for the tensor picked; the baseline is stored once per shape at unit norm. */
const SCREE_JS = `
var pickEl = document.getElementById('dr-scree-pick');
function range(n) { var a = new Array(n); for (var i = 0; i < n; i++) a[i] = i + 1; return a; }
function draw(i) {
  var t = data.tensors[i];
  var b = data.baselines[t.b];
  var x = t.x || range(t.s.length);
  var last = x[x.length - 1];
  var bx = [], by = [];
  for (var j = 0; j < b.x.length && b.x[j] <= last; j++) { bx.push(b.x[j]); by.push(b.s[j] * t.f); }
  var traces = [
    { type: 'scatter', mode: 'lines', x: x, y: t.s, name: 'σᵢ of ΔW', line: { color: '#2d5fb4', width: 2 },
      error_y: t.lo ? { type: 'data', symmetric: false, array: t.hi.map(function (h, i) { return h - t.s[i]; }),
        arrayminus: t.lo.map(function (l, i) { return t.s[i] - l; }), color: '#7f9cd0', thickness: 1, width: 0 } : undefined,
      hovertemplate: 'σ<sub>%{x}</sub> = %{y:.4g}<extra></extra>' },
    { type: 'scatter', mode: 'lines', x: bx, y: by, name: 'Gaussian noise, same shape and ‖ΔW‖',
      line: { color: '#d0802a', width: 1.5, dash: 'dash' }, hovertemplate: 'noise σ<sub>%{x}</sub> = %{y:.4g}<extra></extra>' }
  ];
  var shapes = [], notes = [];
  data.marks.forEach(function (label, j) {
    var r = t.r[j];
    if (r === null) {
      notes.push({ x: 1, xref: 'paper', xanchor: 'right', yref: 'paper', y: 1 - 0.07 * j, yanchor: 'top', text: label + ' ∈ ' + t.rt[j],
        showarrow: false, font: { size: 10, color: '#5b6475' }, bgcolor: 'rgba(255,255,255,0.8)' });
      return;
    }
    shapes.push({ type: 'line', x0: r, x1: r, yref: 'paper', y0: 0, y1: 1, line: { color: '#9aa3b2', width: 1, dash: 'dot' } });
    // Near the right edge a label reads leftwards, so it stays inside the plot.
    var leftwards = r > 0.75 * last;
    notes.push({ x: r, yref: 'paper', y: 1 - 0.07 * j, xanchor: leftwards ? 'right' : 'left', yanchor: 'top', xshift: leftwards ? -2 : 2, text: label + ' = ' + r,
      showarrow: false, font: { size: 10, color: '#5b6475' }, bgcolor: 'rgba(255,255,255,0.8)' });
  });
  var layout = Object.assign({}, data.layout, {
    title: Object.assign({}, data.layout.title, { text: t.title }),
    shapes: shapes, annotations: notes
  });
  return Plotly.react('dr-scree-plot', traces, layout, config);
}
pickEl.addEventListener('change', function () { draw(Number(pickEl.value)); });
return draw(Number(pickEl.value));
`;

function screeSection(items: Placed[]): ReportSection {
  const ordered = [...items].sort((a, b) => (a.layer ?? Infinity) - (b.layer ?? Infinity));
  const byShape = new Map<string, { rows: number; cols: number; count: number }>();
  for (const p of ordered) {
    const key = formatShape(p.t.shape);
    const e = byShape.get(key);
    const count = p.t.singularValues.length;
    if (e) e.count = Math.max(e.count, count);
    else {
      const [rows, cols] = matrixDims(p.t.shape);
      byShape.set(key, { rows, cols, count });
    }
  }
  const baselines: Record<string, { x: number[]; s: number[] }> = {};
  for (const [key, { rows, cols, count }] of byShape) {
    const x = thinIndices(Math.min(count, Math.min(rows, cols))).map((i) => i + 1);
    baselines[key] = { x, s: Array.from(randomSpectrumBaseline(rows, cols, 1, x)) };
  }
  const tensors = ordered.map((p) => {
    const n = p.t.singularValues.length;
    const idx = thinIndices(n);
    const thinned = idx.length < n;
    const title = `${shortName(p.t.name)} · ${formatShape(p.t.shape)} · ‖ΔW‖ = ${formatNumber(p.t.deltaNorm)} · ${n} of ${Math.min(...matrixDims(p.t.shape))} values (${p.t.method})`;
    return {
      title: escapeHtml(title),
      b: formatShape(p.t.shape),
      f: p.t.deltaNorm,
      ...(thinned ? { x: idx.map((i) => i + 1) } : {}),
      s: pick(p.t.singularValues, idx),
      // Certified bounds, drawn as error bars where they differ visibly from the value.
      ...(p.t.bounds ? { lo: pick(p.t.bounds.lower, idx), hi: pick(p.t.bounds.upper, idx) } : {}),
      r: HEATMAP_THRESHOLDS.map((k) => rankExact(p.t.rankAt[k])),
      rt: HEATMAP_THRESHOLDS.map((k) => rankText(p.t.rankAt[k], n)),
    };
  });
  const options = ordered
    .map((p, i) => `<option value="${i}">${escapeHtml(`${shortName(p.t.name)}  (${formatShape(p.t.shape)})`)}</option>`)
    .join('');
  const data = {
    tensors,
    baselines,
    marks: HEATMAP_THRESHOLDS.map(thresholdLabel),
    layout: baseLayout({
      height: SCREE_HEIGHT,
      title: { text: '', font: { size: 13 }, x: 0.01, xanchor: 'left' },
      margin: { l: 70, r: 24, t: 48, b: 84 },
      xaxis: axis('index i'),
      yaxis: axis('σᵢ (log)', { type: 'log', exponentformat: 'power' }),
      // Below the plot: inside it, the rank labels (r95 = 64 at the right edge) covered the legend.
      legend: { orientation: 'h', x: 0, xanchor: 'left', y: -0.2, yanchor: 'top' },
    }),
  };
  const html = `<p class="dr-note">Singular values of one ΔW on a log scale, against the spectrum a Gaussian random matrix of the same shape and
Frobenius norm would have (Marchenko–Pastur quantiles). Values well above the dashed line are structure; a spectrum that
hugs it is noise-like, full-rank change. Error bars are each value's certified bounds (randomized values are lower bounds).</p>
<label class="dr-pick">tensor <select id="dr-scree-pick">${options}</select></label>
<div class="dr-plot" id="dr-scree-plot" style="height:${SCREE_HEIGHT}px"></div>`;
  return { id: 'scree', title: 'Scree plots', html, data, script: SCREE_JS };
}

function extractionSection(items: Placed[], adapter?: AdapterPoint): ReportSection {
  const tensors = items.map((p) => p.t);
  const maxK = maxOf(tensors.map((t) => t.singularValues.length));
  const fixed = fixedRankFrontier(tensors, rankGrid(maxK));
  const greedy = greedyFrontier(tensors);
  const denseParams = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  const split = greedy.exactUntil;
  const solid = split === null ? greedy.points : greedy.points.filter((q) => q.params <= split);
  const dashed = split === null ? [] : greedy.points.filter((q) => q.params >= split);
  const line = (pts: typeof greedy.points, name: string, dash: string) => ({
    type: 'scatter',
    mode: 'lines',
    x: pts.map((q) => q.params),
    y: pts.map((q) => q.error),
    name,
    line: { color: '#21918c', width: 2, dash },
    hovertemplate: `${name}<br>%{x:.3s} params → error %{y:.3f}<extra></extra>`,
  });
  const traces: unknown[] = [line(solid, 'best per-tensor ranks (σ²/(m+n) greedy)', 'solid')];
  if (dashed.length > 1) traces.push(line(dashed, 'greedy past the spectra computed (achievable)', 'dash'));
  traces.push({
    type: 'scatter',
    mode: 'lines+markers+text',
    x: fixed.map((f) => f.params),
    y: fixed.map((f) => f.error),
    text: fixed.map((f) => `r=${f.rank}`),
    // The last labels read leftwards so that "r=512" is not cut off at the plot's edge; a rank close
    // to the one before (the spectra's length after a power of two: 32 then 37) is labelled below it.
    textposition: fixed.map((f, i) => {
      const crowded = i > 0 && f.rank < 1.5 * fixed[i - 1]!.rank;
      return `${crowded ? 'bottom' : 'top'} ${i >= fixed.length - 2 ? 'left' : 'right'}`;
    }),
    cliponaxis: false,
    textfont: { size: 10, color: '#3b3f4a' },
    customdata: fixed.map((f) => (f.bound ? 'upper bound: some spectra stop before this rank' : 'exact')),
    name: 'same rank r for every tensor (extract --rank r)',
    line: { color: '#2d5fb4', width: 1.2 },
    marker: {
      size: 8,
      color: '#2d5fb4',
      symbol: fixed.map((f) => (f.bound ? 'circle-open' : 'circle')),
      line: { width: 1.5, color: '#2d5fb4' },
    },
    hovertemplate: '%{text}: %{x:.3s} params → error %{y:.3f}<br>%{customdata}<extra></extra>',
  });
  if (adapter) {
    traces.push({
      type: 'scatter',
      mode: 'markers',
      x: [adapter.params],
      y: [adapter.error],
      cliponaxis: false,
      name: `the adapter extracted (${adapter.policy}): measured error`,
      marker: { size: 14, symbol: 'star', color: '#b4262d', line: { width: 1, color: '#fff' } },
      hovertemplate: `the adapter extracted (${escapeHtml(adapter.policy)})<br>%{x:.3s} params → measured error %{y:.3f}<extra></extra>`,
    });
  }
  const plot: PlotSpec = {
    divId: 'dr-frontier-plot',
    data: traces,
    layout: baseLayout({
      height: 500,
      margin: { l: 70, r: 24, t: 48, b: 150 },
      title: {
        text: 'Extraction error √(1 − E) against adapter size, whole model',
        font: { size: 14 },
        x: 0.01,
        xanchor: 'left',
      },
      xaxis: axis('adapter parameters Σ r·(m + n) (log)', { type: 'log' }),
      yaxis: axis('relative error ‖ΔW − ΔW_r‖ / ‖ΔW‖', { range: [0, 1.08] }),
      // Below the axis: inside the plot the legend covered the points of the largest ranks (and the adapter's star).
      legend: { x: 0, xanchor: 'left', y: -0.25, yanchor: 'top', font: { size: 11 } },
      shapes: [
        {
          type: 'line',
          x0: denseParams,
          x1: denseParams,
          yref: 'paper',
          y0: 0,
          y1: 1,
          line: { color: '#9a3d00', width: 1, dash: 'dot' },
        },
      ],
      annotations: [
        {
          x: Math.log10(denseParams),
          yref: 'paper',
          y: 1,
          xanchor: 'right',
          yanchor: 'top',
          text: `dense ΔW: ${formatCount(denseParams)}`,
          showarrow: false,
          font: { size: 10, color: '#9a3d00' },
        },
      ],
    }),
  };
  const rows = fixed
    .map(
      (f) =>
        `<tr><td data-v="${f.rank}">${f.rank}</td><td data-v="${f.params}">${formatCount(f.params)}</td><td data-v="${f.params / denseParams}">${formatPercent(f.params / denseParams)}</td><td data-v="${f.error}"${f.bound ? ' class="dr-bound"' : ''}>${f.bound ? '≤ ' : ''}${formatNumber(f.error)}</td><td data-v="${1 - f.error ** 2}">${f.bound ? '≥ ' : ''}${formatPercent(1 - f.error ** 2)}</td></tr>`,
    )
    .join('');
  const html = `<p class="dr-note">What <code>extract</code> would cost: the model-level error √(Σ‖ΔW‖²(1 − E(r)) / Σ‖ΔW‖²) (the best any rank-r factors can do,
by Eckart–Young) against the parameters of the adapter. Blue points give every tensor the same rank; the green line spends the same
budget where it buys the most energy. Open points and “≤” values are upper bounds: some spectra stop before that rank, so their
last computed energy stands in.${adapter ? ` The red star is the adapter this run extracted (${escapeHtml(adapter.policy)}), at its measured error.` : ''}${split !== null ? ` The green line is optimal up to ${formatCount(split)} parameters; past it, values beyond the top k computed could do better.` : ''}</p>
<div class="dr-grid2"><div class="dr-plot" id="dr-frontier-plot"></div>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-frontier-table"><thead><tr><th>rank</th><th>adapter params</th><th>of dense ΔW</th><th>error</th><th>energy kept</th></tr></thead><tbody>${rows}</tbody></table></div></div>`;
  return { id: 'extraction', title: 'Extraction error vs adapter size', html, plots: [plot] };
}

function tablesSection(result: AnalyzeResult, items: Placed[], opts: SpectrumSectionOptions): ReportSection {
  const keys = result.thresholds.length ? result.thresholds.map(String) : ['0.5', '0.9', '0.95', '0.99'];
  const num = (v: number | null, text: string) => `<td data-v="${v ?? ''}">${escapeHtml(text)}</td>`;
  const txt = (text: string) => `<td class="dr-text">${escapeHtml(text)}</td>`;
  /** header, left-aligned text column */
  type Column = [string, boolean];
  const head: Column[] = [
    ['tensor', true],
    ['layer', false],
    ['type', true],
    ['shape', false],
    ['‖ΔW‖', false],
    ['rel. update', false],
    ...keys.map((k): Column => [thresholdLabel(k), false]),
    ['stable rank', false],
    ['eff. rank', false],
    ['k', false],
    ['method', true],
    ['complete', true],
    ['seconds', false],
  ];
  const rows = items.map((p) => {
    const t = p.t;
    const k = t.singularValues.length;
    const cells = [
      txt(shortName(t.name)),
      num(p.layer, p.row),
      txt(p.type),
      num(
        t.shape.reduce((a, b) => a * b, 1),
        formatShape(t.shape),
      ),
      num(t.deltaNorm, formatNumber(t.deltaNorm)),
      num(t.relativeUpdate, formatPercent(t.relativeUpdate)),
      ...keys.map((key) => num(t.rankAt[key] == null ? null : rankLo(t.rankAt[key]), rankText(t.rankAt[key], k))),
      num(t.stableRank, formatNumber(t.stableRank)),
      num(t.effectiveRank, formatNumber(t.effectiveRank)),
      num(k, String(k)),
      txt(t.method),
      txt(t.complete ? 'yes' : 'no'),
      num(t.seconds, formatNumber(t.seconds)),
    ];
    return `<tr>${cells.join('')}</tr>`;
  });
  const table = (id: string, headers: Column[], body: string[]) =>
    `<div class="dr-scroll"><table class="dr-table dr-sortable" id="${id}"><thead><tr>${headers
      .map(([h, text]) => `<th${text ? ' class="dr-text"' : ''}>${escapeHtml(h)}</th>`)
      .join('')}</tr></thead><tbody>${body.join('')}</tbody></table></div>`;
  const others = result.others.map(
    (o) =>
      `<tr>${txt(shortName(o.name))}${num(
        o.shape.reduce((a, b) => a * b, 1),
        formatShape(o.shape),
      )}${num(o.deltaNorm, formatNumber(o.deltaNorm))}${num(o.relativeUpdate, formatPercent(o.relativeUpdate))}</tr>`,
  );
  const skipped = result.skipped.map((s) => `<tr>${txt(s.name)}${txt(s.reason)}</tr>`);
  const html = `<p class="dr-note">Click a header to sort. A rank “30–32” is certified to lie in that range but not pinned down (the values'
bounds do not separate the threshold); a single number is exact.</p>
${table('dr-tensor-table', head, rows)}
${
  opts.savedWhole
    ? `<h3>Other tensors (${opts.savedWhole.length})</h3>\n<p class="dr-note">Saved whole in the adapter (modules_to_save): ${opts.savedWhole.map((n) => `<code>${escapeHtml(n)}</code>`).join(', ') || 'none'}.</p>`
    : `<h3>Other tensors (${result.others.length})</h3>\n<p class="dr-note">Not 2-D weights (norms, biases): their change alone.</p>\n${
        result.others.length
          ? table(
              'dr-others-table',
              [
                ['tensor', true],
                ['shape', false],
                ['‖ΔW‖', false],
                ['rel. update', false],
              ],
              others,
            )
          : '<p class="dr-note">None.</p>'
      }`
}
<h3>Skipped (${result.skipped.length})</h3>
${
  result.skipped.length
    ? table(
        'dr-skipped-table',
        [
          ['tensor', true],
          ['reason', true],
        ],
        skipped,
      )
    : '<p class="dr-note">None.</p>'
}`;
  return { id: 'tensors', title: 'Every tensor', html };
}

/**
 * All the spectrum sections for an analyze result: summary, heatmap, energy curves, scree
 * plots, extraction frontier, tables (the plot sections only when some tensor was analyzed).
 * Long spectra are thinned (every value up to KEEP_ALL, log-spaced after), so a 160-tensor
 * model with 512 values each stays a few MB beyond plotly itself.
 * Cost: O(Σ k·log Σ k) for the frontier plus O(min(m, n)) per distinct shape for the baselines.
 *
 * @example renderPage({ title: 'ΔW', sections: spectrumSections(result) })
 */
export function spectrumSections(result: AnalyzeResult, opts: SpectrumSectionOptions = {}): ReportSection[] {
  const items = place(result.tensors);
  const types = orderModuleTypes(items.map((p) => p.type));
  const sections = [summarySection(result, items, types, opts)];
  if (items.length > 0) {
    sections.push(
      heatmapSection(items, types),
      energySection(items, types),
      screeSection(items),
      extractionSection(items, opts.adapter),
    );
  }
  sections.push(tablesSection(result, items, opts));
  return sections;
}

/** The analyze report as one HTML page: renderPage({ title, sections: spectrumSections(result) }). */
export function renderAnalyzeReport(result: AnalyzeResult, opts: { title?: string } = {}): string {
  const subject = result.tuned ?? result.delta ?? result.adapter ?? 'model';
  const { title = `ΔW spectrum · ${subject.replace(/\/+$/, '').split('/').pop() || subject}` } = opts;
  const from = result.base && result.tuned ? `${result.base} → ${result.tuned}` : subject;
  const subtitle = `${from} · ${result.tensors.length} tensors · ${result.tool.name} ${result.tool.version}`;
  return renderPage({ title, subtitle, sections: spectrumSections(result) });
}
