/**
 * The comparison view: full fine-tuning against trained and extracted LoRA on the task's
 * metric, their ΔW spectra, subspace similarity (LoRA paper Fig. 3) and Table 7.
 */
import type { CompareOutput } from '../compare/compare.js';
import type { ComparisonResult } from '../compare/types.js';
import { extractionSections } from './extraction-sections.js';
import { spectrumSections } from './spectrum-sections.js';
import { formatCount, formatNumber, shortName } from './format.js';
import { escapeHtml, renderPage } from './page.js';
import type { PlotSpec, ReportSection } from './page.js';

const COLORS = { base: '#7f7f7f', full: '#1d2330', trained: '#2d5fb4', extracted: '#d9730d' };

function metricLabel(r: ComparisonResult): string {
  return r.metric.name === 'accuracy' ? 'accuracy' : r.metric.name === 'bitsPerChar' ? 'bits per character' : r.metric.name;
}

function fmtMetric(r: ComparisonResult, v: number | undefined): string {
  if (v === undefined) return '—';
  return r.metric.name === 'accuracy' ? `${(100 * v).toFixed(1)} %` : formatNumber(v, 4);
}

/** Task metric against rank and against parameters, for base, full, trained and extracted LoRA. */
function scoresSection(r: ComparisonResult): ReportSection {
  const ranks = r.ranks.map((x) => x.rank);
  const trained = r.ranks.filter((x) => x.trained !== null);
  const line = (name: string, y: number, color: string, x: number[]) => ({
    type: 'scatter',
    mode: 'lines',
    name,
    x: [Math.min(...x), Math.max(...x)],
    y: [y, y],
    line: { color, dash: name.startsWith('base') ? 'dot' : 'dash' },
  });
  const plot = (divId: string, split: 'target' | 'source', byParams: boolean): PlotSpec => {
    const xs = (rows: typeof r.ranks, kind: 'trained' | 'extracted') => rows.map((x) => (byParams ? x[kind]!.params : x.rank));
    const allX = [...xs(r.ranks, 'extracted'), ...xs(trained, 'trained')];
    return {
      divId,
      data: [
        {
          type: 'scatter',
          mode: 'lines+markers',
          name: 'trained LoRA',
          x: xs(trained, 'trained'),
          y: trained.map((x) => x.trained![split]),
          text: trained.map((x) => `r=${x.rank}`),
          marker: { color: COLORS.trained },
          line: { color: COLORS.trained },
        },
        {
          type: 'scatter',
          mode: 'lines+markers',
          name: 'LoRA extracted from full',
          x: xs(r.ranks, 'extracted'),
          y: r.ranks.map((x) => x.extracted[split]),
          text: r.ranks.map((x) => `r=${x.rank}`),
          marker: { color: COLORS.extracted, symbol: 'diamond' },
          line: { color: COLORS.extracted },
        },
        line(`full fine-tune (${formatCount(r.full.params)} params)`, r.full[split], COLORS.full, allX),
        line('base model', r.base[split], COLORS.base, allX),
      ],
      layout: {
        title: { text: `${split === 'target' ? 'Target task (fine-tuned on)' : 'Source task (what is forgotten)'}: ${metricLabel(r)} by ${byParams ? 'trainable parameters' : 'rank'}` },
        height: 380,
        xaxis: { title: { text: byParams ? 'trainable / adapter parameters' : 'rank r' }, type: 'log' },
        yaxis: { title: { text: metricLabel(r) }, tickformat: r.metric.name === 'accuracy' ? '.0%' : undefined },
        legend: { orientation: 'h', y: -0.25 },
        margin: { l: 64, r: 16, t: 44, b: 40 },
      },
    };
  };
  const rows = r.ranks
    .map(
      (x) =>
        `<tr><td data-v="${x.rank}">${x.rank}</td><td data-v="${x.trained?.params ?? ''}">${x.trained ? formatCount(x.trained.params) : '—'}</td><td data-v="${x.trained?.target ?? ''}">${fmtMetric(r, x.trained?.target)}</td><td data-v="${x.trained?.source ?? ''}">${fmtMetric(r, x.trained?.source)}</td><td data-v="${x.extracted.params}">${formatCount(x.extracted.params)}</td><td data-v="${x.extracted.relativeError}">${formatNumber(x.extracted.relativeError)}</td><td data-v="${x.extracted.target}">${fmtMetric(r, x.extracted.target)}</td><td data-v="${x.extracted.source}">${fmtMetric(r, x.extracted.source)}</td></tr>`,
    )
    .join('');
  const better = r.metric.higherIsBetter ? 'higher is better' : 'lower is better';
  return {
    id: 'lora-vs-full',
    title: 'LoRA against full fine-tuning',
    html: `<p class="dr-note">Task <b>${escapeHtml(r.task)}</b> (${escapeHtml(metricLabel(r))}, ${better}), ${escapeHtml(r.backend)} backend.
Base: ${fmtMetric(r, r.base.target)} on the target task, ${fmtMetric(r, r.base.source)} on the source task. Full fine-tune: ${fmtMetric(r, r.full.target)} target, ${fmtMetric(r, r.full.source)} source.
Trained LoRA: the base frozen, only A and B trained. Extracted LoRA: the truncated SVD of the full fine-tune's ΔW at the same rank, measured, not assumed (biases and norms stay at the base's, as in the trained LoRA).</p>
<div class="dr-grid2"><div class="dr-plot" id="dr-cmp-rank"></div><div class="dr-plot" id="dr-cmp-params"></div></div>
<div class="dr-grid2"><div class="dr-plot" id="dr-cmp-source"></div>
<p class="dr-note">The source task is what the base model knew before fine-tuning: the further a run lies from the base model's line here, the more it forgot. The table below gives every number the plots show.</p></div>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-cmp-table"><thead><tr><th>rank</th><th>trained params</th><th>trained target</th><th>trained source</th><th>extracted params</th><th>extraction error</th><th>extracted target</th><th>extracted source</th></tr></thead><tbody>${rows}</tbody></table></div>`,
    plots: ranks.length > 0 ? [plot('dr-cmp-rank', 'target', false), plot('dr-cmp-params', 'target', true), plot('dr-cmp-source', 'source', false)] : [],
  };
}

/** Full ΔW spectrum beside each trained LoRA product's, per module (menu). */
function spectraSection(r: ComparisonResult): ReportSection {
  if (r.spectra.length === 0) return { id: 'lora-spectra', title: 'Spectra: full ΔW and trained LoRA', html: '<p class="dr-note">No trained LoRA in this run.</p>' };
  const traces: unknown[] = [];
  const visible: boolean[][] = [];
  r.spectra.forEach((m, k) => {
    const own: number[] = [];
    traces.push({ type: 'scatter', mode: 'lines', name: 'full fine-tune ΔW', x: m.full.map((_, i) => i + 1), y: m.full, line: { color: COLORS.full, width: 2.5 }, visible: k === 0 });
    own.push(traces.length - 1);
    m.trained.forEach((t, j) => {
      traces.push({ type: 'scatter', mode: 'lines+markers', name: `trained LoRA r=${t.rank}`, x: t.s.map((_, i) => i + 1), y: t.s, marker: { size: 4 }, line: { color: `hsl(${210 + 25 * j}, 60%, ${35 + 6 * j}%)` }, visible: k === 0 });
      own.push(traces.length - 1);
    });
    visible.push(traces.map((_, i) => own.includes(i)));
  });
  const all = traces.length;
  const buttons = r.spectra.map((m, k) => ({ label: shortName(m.module), method: 'restyle', args: [{ visible: Array.from({ length: all }, (_, i) => visible[k]![i] ?? false) }] }));
  return {
    id: 'lora-spectra',
    title: 'Spectra: full ΔW and trained LoRA',
    html: `<p class="dr-note">Singular values of the full fine-tune's ΔW and of each trained LoRA product s·B·A for one module (menu). A LoRA of rank r has at most r non-zero values; where the full ΔW's spectrum falls steeply, a small rank already holds most of the update.</p>
<div class="dr-plot" id="dr-cmp-spectra"></div>`,
    plots: [
      {
        divId: 'dr-cmp-spectra',
        data: traces,
        layout: {
          height: 420,
          xaxis: { title: { text: 'index i' }, type: 'log' },
          yaxis: { title: { text: 'σ_i' }, type: 'log' },
          updatemenus: [{ buttons, direction: 'down', x: 0, xanchor: 'left', y: 1.15, yanchor: 'top', showactive: true }],
          margin: { l: 64, r: 16, t: 56, b: 44 },
        },
      },
    ],
  };
}

/** φ(i, j) heatmaps (LoRA paper Fig. 3), one module at a time. */
function similaritySection(r: ComparisonResult): ReportSection {
  if (r.similarity.length === 0) return { id: 'subspace', title: 'Subspace similarity', html: '<p class="dr-note">No trained LoRA in this run.</p>' };
  const kinds = [...new Set(r.similarity.map((g) => g.what.replace(/ \(.*\)$/, '')))];
  const plots: PlotSpec[] = [];
  const blocks: string[] = [];
  kinds.forEach((kind, idx) => {
    const grids = r.similarity.filter((g) => g.what.startsWith(kind));
    const traces = grids.map((g, k) => ({
      type: 'heatmap',
      x: g.cols.map(String),
      y: g.rows.map(String),
      z: g.phi,
      zmin: 0,
      zmax: 1,
      colorscale: 'Viridis',
      visible: k === 0,
      hovertemplate: `${escapeHtml(shortName(g.module))}<br>i=%{y}, j=%{x}<br>φ=%{z:.3f}<extra></extra>`,
      colorbar: { title: { text: 'φ' } },
    }));
    const buttons = grids.map((g, k) => ({ label: shortName(g.module), method: 'restyle', args: [{ visible: grids.map((_, i) => i === k) }] }));
    const divId = `dr-subspace-${idx}`;
    const [a, b] = kind.split(' vs ');
    plots.push({
      divId,
      data: traces,
      layout: {
        title: { text: escapeHtml(grids[0]!.what), x: 0, xanchor: 'left', y: 0.97, font: { size: 13 } },
        height: 440,
        xaxis: { title: { text: `j (${b ?? ''})` }, type: 'category' },
        yaxis: { title: { text: `i (${a ?? ''})` }, type: 'category', autorange: 'reversed' },
        updatemenus: [{ buttons, direction: 'down', x: 1, xanchor: 'right', y: 1.13, yanchor: 'bottom' }],
        margin: { l: 64, r: 16, t: 96, b: 48 },
      },
    });
    blocks.push(`<div class="dr-plot" id="${divId}"></div>`);
  });
  return {
    id: 'subspace',
    title: 'Subspace similarity',
    html: `<p class="dr-note">φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖²<sub>F</sub> / min(i, j) (LoRA paper, eq. 4): 1 when the top-i directions of one lie inside the top-j of the other, 0 when orthogonal.
Left: the top directions learned at a small and a large rank (right singular vectors of A) — when they overlap, the extra ranks of the large adapter add little. Right: the trained LoRA's update against the top singular directions of the full fine-tune's ΔW.</p>
<div class="dr-grid2">${blocks.join('')}</div>`,
    plots,
  };
}

/** LoRA paper Table 7: ‖Uᵀ W V‖_F for U, V from ΔW, from W, from a random matrix. */
function projectionSection(r: ComparisonResult): ReportSection {
  const rows = r.projections
    .map(
      (p) =>
        `<tr><td class="dr-text">${escapeHtml(shortName(p.module))}</td><td data-v="${p.rank}">${p.rank}</td><td data-v="${p.fromDelta}">${formatNumber(p.fromDelta)}</td><td data-v="${p.fromWeight}">${formatNumber(p.fromWeight)}</td><td data-v="${p.fromRandom}">${formatNumber(p.fromRandom)}</td><td data-v="${p.weightNorm}">${formatNumber(p.weightNorm)}</td><td data-v="${p.deltaNorm}">${formatNumber(p.deltaNorm)}</td><td data-v="${p.amplification}">${formatNumber(p.amplification)}</td></tr>`,
    )
    .join('');
  return {
    id: 'table7',
    title: 'Does ΔW amplify directions W already uses? (LoRA paper Table 7)',
    html: `<p class="dr-note">For the trained LoRA's ΔW at two ranks: ‖Uᵀ W V‖<sub>F</sub> with U, V the top-r singular directions of ΔW, of W itself, and of a random matrix; ‖W‖<sub>F</sub>, ‖ΔW‖<sub>F</sub>, and the amplification factor ‖ΔW‖<sub>F</sub> / ‖U<sub>ΔW</sub>ᵀ W V<sub>ΔW</sub>‖<sub>F</sub>.
A projection from ΔW well above the random one but far below W's own top directions means the fine-tune amplifies directions that W holds but does not emphasise.</p>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-table7"><thead><tr><th>module</th><th>r</th><th>‖U<sub>ΔW</sub>ᵀ W V<sub>ΔW</sub>‖</th><th>‖U<sub>W</sub>ᵀ W V<sub>W</sub>‖</th><th>‖U<sub>rand</sub>ᵀ W V<sub>rand</sub>‖</th><th>‖W‖</th><th>‖ΔW‖</th><th>amplification</th></tr></thead><tbody>${rows}</tbody></table></div>`,
  };
}

/** The comparison sections of a `compare` result. */
export function comparisonSections(result: ComparisonResult): ReportSection[] {
  return [scoresSection(result), spectraSection(result), similaritySection(result), projectionSection(result)];
}

/** The whole story of a trained run in one page: comparison, extraction (largest rank) and the full ΔW's spectra. */
export function renderCompareReport(result: CompareOutput, opts: { title?: string } = {}): string {
  return renderPage({
    title: opts.title ?? `LoRA against full fine-tuning · ${result.task}`,
    subtitle: `${result.dir} · ${result.tool.name} ${result.tool.version}`,
    sections: [...comparisonSections(result), ...extractionSections(result.extraction), ...spectrumSections(result.analysis)],
  });
}
