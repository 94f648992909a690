/**
 * The comparison view: full fine-tuning against every trained LoRA variant and extracted LoRA on
 * the task's metric, their ΔW spectra, subspace similarity (LoRA paper Fig. 3), Table 7, DoRA's
 * magnitude/direction view (Liu et al. 2024 Fig. 2) and intruder dimensions (Shuttleworth et al. 2024).
 */
import type { CompareOutput } from '../compare/compare.js';
import type { ComparisonResult } from '../compare/types.js';
import { extractionSections } from './extraction-sections.js';
import { formatCount, formatNumber, shortName } from './format.js';
import type { PlotSpec, ReportSection } from './page.js';
import { escapeHtml, renderPage } from './page.js';
import { spectrumSections } from './spectrum-sections.js';

const COLORS = { base: '#7f7f7f', full: '#1d2330', trained: '#2d5fb4', extracted: '#d9730d', calibrated: '#2a9d5c' };
/** Colours of the trained variants after plain LoRA, in training order. */
const VARIANT_COLORS = ['#2d5fb4', '#2a9d5c', '#b5338a', '#8c6d1f', '#5b3fb0', '#c23b22', '#1f8a99'];

/** People's names of variant specs: "dora+gaussian" → "DoRA + gaussian". */
function variantLabel(v: string): string {
  const words: Record<string, string> = {
    lora: 'LoRA',
    dora: 'DoRA',
    pissa: 'PiSSA',
    olora: 'OLoRA',
    bias: 'lora_bias',
    gaussian: 'gaussian init',
    full: 'full fine-tune',
  };
  return v
    .split('+')
    .map((w) => words[w] ?? w.replace(/^pissa_niter_(\d+)$/, 'PiSSA (randomized, $1 iterations)'))
    .join(' + ');
}

function variantColor(r: ComparisonResult, v: string): string {
  if (v === 'full') return COLORS.full;
  const i = Math.max(0, (r.variants ?? []).indexOf(v));
  return VARIANT_COLORS[i % VARIANT_COLORS.length]!;
}

function metricLabel(r: ComparisonResult): string {
  return r.metric.name === 'accuracy'
    ? 'accuracy'
    : r.metric.name === 'bitsPerChar'
      ? 'bits per character'
      : r.metric.name;
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
  const variants = r.variants ?? (trained.length > 0 ? ['lora'] : []);
  const variantRows = (v: string) =>
    r.ranks.flatMap((x) =>
      (x.variants ?? (x.trained ? [{ ...x.trained, variant: 'lora', run: `lora-r${x.rank}` }] : []))
        .filter((s) => s.variant === v)
        .map((s) => ({ rank: x.rank, s })),
    );
  const plot = (divId: string, split: 'target' | 'source', byParams: boolean): PlotSpec => {
    const xs = (rows: typeof r.ranks, kind: 'trained' | 'extracted') =>
      rows.map((x) => (byParams ? x[kind]!.params : x.rank));
    const allX = [
      ...xs(r.ranks, 'extracted'),
      ...variants.flatMap((v) => variantRows(v).map((p) => (byParams ? p.s.params : p.rank))),
    ];
    return {
      divId,
      data: [
        ...variants.map((v) => ({
          type: 'scatter',
          mode: 'lines+markers',
          name: `trained ${variantLabel(v)}`,
          x: variantRows(v).map((p) => (byParams ? p.s.params : p.rank)),
          y: variantRows(v).map((p) => p.s[split]),
          text: variantRows(v).map((p) => p.s.run),
          marker: { color: variantColor(r, v) },
          line: { color: variantColor(r, v) },
        })),
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
        title: {
          text: `${split === 'target' ? 'Target task (fine-tuned on)' : 'Source task (what is forgotten)'}: ${metricLabel(r)} by ${byParams ? 'trainable parameters' : 'rank'}`,
        },
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
  const others = variants.filter((v) => v !== 'lora');
  const variantTable =
    others.length === 0
      ? ''
      : `<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-cmp-variants"><thead><tr><th>variant</th><th>rank</th><th>trainable params</th><th>target</th><th>source</th></tr></thead><tbody>${r.ranks
          .flatMap((x) =>
            (x.variants ?? []).map(
              (s) =>
                `<tr><td class="dr-text">${escapeHtml(variantLabel(s.variant))}</td><td data-v="${x.rank}">${x.rank}</td><td data-v="${s.params}">${formatCount(s.params)}</td><td data-v="${s.target}">${fmtMetric(r, s.target)}</td><td data-v="${s.source}">${fmtMetric(r, s.source)}</td></tr>`,
            ),
          )
          .join('')}</tbody></table></div>`;
  return {
    id: 'lora-vs-full',
    title: 'LoRA against full fine-tuning',
    html: `<p class="dr-note">Task <b>${escapeHtml(r.task)}</b> (${escapeHtml(metricLabel(r))}, ${better}), ${escapeHtml(r.backend)} backend.
Base: ${fmtMetric(r, r.base.target)} on the target task, ${fmtMetric(r, r.base.source)} on the source task. Full fine-tune: ${fmtMetric(r, r.full.target)} target, ${fmtMetric(r, r.full.source)} source.
Trained LoRA: the base frozen, only A and B trained${others.length ? `; also trained at every rank: ${others.map((v) => escapeHtml(variantLabel(v))).join(', ')} (DoRA trains a magnitude per output row too, PiSSA/OLoRA start A and B from W's top singular or QR directions with the residual frozen, lora_bias trains a bias on B), each merged onto the base as PEFT merges it` : ''}. Extracted LoRA: the truncated SVD of the full fine-tune's ΔW at the same rank, measured, not assumed (biases and norms stay at the base's, as in the trained LoRA).</p>
<div class="dr-grid2"><div class="dr-plot" id="dr-cmp-rank"></div><div class="dr-plot" id="dr-cmp-params"></div></div>
<div class="dr-grid2"><div class="dr-plot" id="dr-cmp-source"></div>
<p class="dr-note">The source task is what the base model knew before fine-tuning: the further a run lies from the base model's line here, the more it forgot. The table below gives every number the plots show.</p></div>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-cmp-table"><thead><tr><th>rank</th><th>trained params</th><th>trained target</th><th>trained source</th><th>extracted params</th><th>extraction error</th><th>extracted target</th><th>extracted source</th></tr></thead><tbody>${rows}</tbody></table></div>${variantTable}`,
    plots:
      ranks.length > 0
        ? [
            plot('dr-cmp-rank', 'target', false),
            plot('dr-cmp-params', 'target', true),
            plot('dr-cmp-source', 'source', false),
          ]
        : [],
  };
}

/** Plain truncated-SVD extraction against calibrated extraction at each rank: task metric, fidelity to the full fine-tune, output and weight errors. */
function calibratedSection(r: ComparisonResult): ReportSection {
  const id = 'calibrated-extraction';
  const title = 'Extraction: plain SVD against calibrated';
  const rows = r.ranks.filter((x) => x.calibrated);
  if (rows.length === 0 || !r.calibration)
    return {
      id,
      title,
      html: '<p class="dr-note">This comparison has no calibrated extraction (run compare again with this version).</p>',
    };
  const ranks = rows.map((x) => x.rank);
  const span = [Math.min(...ranks), Math.max(...ranks)];
  const kinds = [
    { key: 'extracted', name: 'plain SVD', color: COLORS.extracted, symbol: 'diamond' },
    { key: 'calibrated', name: 'calibrated', color: COLORS.calibrated, symbol: 'circle' },
  ] as const;
  const flat = (name: string, y: number, color: string, dash: string) => ({
    type: 'scatter',
    mode: 'lines',
    name,
    x: span,
    y: [y, y],
    line: { color, dash, width: 1.5 },
  });
  const metricTraces = kinds.flatMap((k) =>
    (['target', 'source'] as const).map((split) => ({
      type: 'scatter',
      mode: 'lines+markers',
      name: `${k.name}, ${split}`,
      x: ranks,
      y: rows.map((x) => x[k.key][split]),
      marker: { color: k.color, symbol: k.symbol, size: 8 },
      line: { color: k.color, dash: split === 'target' ? 'solid' : 'dot' },
    })),
  );
  const klTraces = kinds.flatMap((k) =>
    (['target', 'source'] as const).map((split) => ({
      type: 'scatter',
      mode: 'lines+markers',
      name: `${k.name}, ${split}`,
      x: ranks,
      y: rows.map((x) => Math.max(x[k.key].fidelity[split].kl, 1e-12)),
      text: rows.map((x) => `top-1 = full: ${(100 * x[k.key].fidelity[split].top1).toFixed(1)} %`),
      marker: { color: k.color, symbol: k.symbol, size: 8 },
      line: { color: k.color, dash: split === 'target' ? 'solid' : 'dot' },
    })),
  );
  const legend = { orientation: 'h', y: -0.25 };
  const xaxis = { title: { text: 'rank r' }, type: 'log', tickvals: ranks, ticktext: ranks.map(String) };
  const margin = { l: 64, r: 16, t: 44, b: 40 };
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  // The better of two values, by more than rounding (a tie marks neither).
  const wins = (v: number, other: number, lowerIsBetter: boolean) =>
    Math.abs(v - other) > 1e-3 * Math.max(Math.abs(v), Math.abs(other)) + 1e-6 &&
    (lowerIsBetter ? v < other : v > other);
  const cell = (v: number, other: number, fmt: (v: number) => string, lowerIsBetter: boolean) =>
    `<td data-v="${v}">${wins(v, other, lowerIsBetter) ? `<b>${fmt(v)}</b>` : fmt(v)}</td>`;
  const pair = (a: number, b: number, fmt: (v: number) => string, lowerIsBetter: boolean) =>
    cell(a, b, fmt, lowerIsBetter) + cell(b, a, fmt, lowerIsBetter);
  const lower = !r.metric.higherIsBetter;
  const kl = (v: number) => formatNumber(v, 3);
  const err = (v: number) => formatNumber(v, 3);
  const metric = (v: number) => fmtMetric(r, v);
  const table = rows
    .flatMap((x) =>
      (['extracted', 'calibrated'] as const).map((k) => {
        const [e, o] = [x[k], x[k === 'extracted' ? 'calibrated' : 'extracted']];
        return `<tr><td data-v="${x.rank}">${x.rank}</td><td class="dr-text">${k === 'extracted' ? 'plain SVD' : 'calibrated'}</td><td data-v="${e.params}">${formatCount(e.params)}</td>${cell(e.target, o.target, metric, lower)}${cell(e.source, o.source, metric, lower)}${cell(e.fidelity.target.kl, o.fidelity.target.kl, kl, true)}${cell(e.fidelity.target.top1, o.fidelity.target.top1, pct, false)}${cell(e.fidelity.source.kl, o.fidelity.source.kl, kl, true)}${cell(e.fidelity.source.top1, o.fidelity.source.top1, pct, false)}${cell(e.outputError, o.outputError, err, true)}${cell(e.relativeError, o.relativeError, err, true)}</tr>`;
      }),
    )
    .join('');
  const layerRows = rows
    .flatMap((x) =>
      x.calibrated.layers.map(
        (l) =>
          `<tr><td data-v="${x.rank}">${x.rank}</td><td class="dr-text">${escapeHtml(shortName(l.module))}</td><td data-v="${l.rank}">${l.rank}</td>${pair(l.svdOutputError, l.outputError, err, true)}${pair(l.svdWeightError, l.weightError, err, true)}</tr>`,
      ),
    )
    .join('');
  const c = r.calibration;
  return {
    id,
    title,
    html: `<p class="dr-note">At every rank, two adapters extracted from the same full fine-tune: the <b>plain</b> truncated SVD of each ΔW, which minimises the weight error ‖ΔW − B·A‖<sub>F</sub> (Eckart–Young), and the <b>calibrated</b> factors of <code>extract --calibrate</code>, which minimise the output error ‖(ΔW − B·A)·X‖<sub>F</sub> on the inputs X each layer meets (G = XᵀX from ${c.examples.toLocaleString('en-US')} training examples of the target task, ${c.rows.toLocaleString('en-US')} input rows; ${c.inputs === 'extracted' ? 'each layer’s inputs computed through the layers already extracted' : 'inputs of the full fine-tune'}). Both are scored on the held-out test examples, never the calibration ones.
KL(full ‖ ·) is the mean KL divergence of the adapter model’s predicted distribution from the full fine-tune’s, per ${r.metric.name === 'accuracy' ? 'image' : 'character'}, in nats; the base model’s is ${kl(r.baseFidelity.target.kl)} on the target task and ${kl(r.baseFidelity.source.kl)} on the source task (the scale to read it against). Top-1 = full: the share of predictions agreeing with the full fine-tune’s. Output and weight errors are relative, model-level over the calibrated layers, on the calibration inputs; at each rank the better of the two, by more than rounding, is in bold.</p>
<div class="dr-grid2"><div class="dr-plot" id="dr-cal-metric"></div><div class="dr-plot" id="dr-cal-kl"></div></div>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-cal-table"><thead><tr><th>rank</th><th>extraction</th><th>params</th><th>target ${escapeHtml(metricLabel(r))}</th><th>source ${escapeHtml(metricLabel(r))}</th><th>KL target</th><th>top-1 = full, target</th><th>KL source</th><th>top-1 = full, source</th><th>output error</th><th>weight error</th></tr></thead><tbody>${table}</tbody></table></div>
<details${layerRows.length > 0 && rows.length * rows[0]!.calibrated.layers.length <= 24 ? ' open' : ''}><summary>Per layer: output and weight error of the plain and calibrated factors on the calibration inputs</summary>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-cal-layers"><thead><tr><th>rank</th><th>module</th><th>r</th><th>output error, plain</th><th>output error, calibrated</th><th>weight error, plain</th><th>weight error, calibrated</th></tr></thead><tbody>${layerRows}</tbody></table></div></details>`,
    plots: [
      {
        divId: 'dr-cal-metric',
        data: [
          ...metricTraces,
          flat('full fine-tune, target', r.full.target, COLORS.full, 'dash'),
          flat('base, target', r.base.target, COLORS.base, 'dash'),
        ],
        layout: {
          title: { text: `${metricLabel(r)} by rank: plain against calibrated extraction` },
          height: 400,
          xaxis,
          yaxis: { title: { text: metricLabel(r) }, tickformat: r.metric.name === 'accuracy' ? '.0%' : undefined },
          legend,
          margin,
        },
      },
      {
        divId: 'dr-cal-kl',
        data: [...klTraces, flat('base, target', r.baseFidelity.target.kl, COLORS.base, 'dash')],
        layout: {
          title: { text: 'KL(full fine-tune ‖ extracted) per prediction' },
          height: 400,
          xaxis,
          yaxis: { title: { text: 'KL, nats' }, type: 'log', exponentformat: 'power' },
          legend,
          margin,
        },
      },
    ],
  };
}

/** Full ΔW spectrum beside each trained LoRA product's, per module (menu). */
function spectraSection(r: ComparisonResult): ReportSection {
  if (r.spectra.length === 0)
    return {
      id: 'lora-spectra',
      title: 'Spectra: full ΔW and trained LoRA',
      html: '<p class="dr-note">No trained LoRA in this run.</p>',
    };
  const traces: unknown[] = [];
  const visible: boolean[][] = [];
  r.spectra.forEach((m, k) => {
    const own: number[] = [];
    traces.push({
      type: 'scatter',
      mode: 'lines',
      name: 'full fine-tune ΔW',
      x: m.full.map((_, i) => i + 1),
      y: m.full,
      line: { color: COLORS.full, width: 2.5 },
      visible: k === 0,
    });
    own.push(traces.length - 1);
    m.trained.forEach((t, j) => {
      traces.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: `trained LoRA r=${t.rank}`,
        x: t.s.map((_, i) => i + 1),
        y: t.s,
        marker: { size: 4 },
        line: { color: `hsl(${210 + 25 * j}, 60%, ${35 + 6 * j}%)` },
        visible: k === 0,
      });
      own.push(traces.length - 1);
    });
    visible.push(traces.map((_, i) => own.includes(i)));
  });
  const all = traces.length;
  const buttons = r.spectra.map((m, k) => ({
    label: shortName(m.module),
    method: 'restyle',
    args: [{ visible: Array.from({ length: all }, (_, i) => visible[k]![i] ?? false) }],
  }));
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
          updatemenus: [
            { buttons, direction: 'down', x: 0, xanchor: 'left', y: 1.15, yanchor: 'top', showactive: true },
          ],
          margin: { l: 64, r: 16, t: 56, b: 44 },
        },
      },
    ],
  };
}

/** φ(i, j) heatmaps (LoRA paper Fig. 3), one module at a time. */
function similaritySection(r: ComparisonResult): ReportSection {
  if (r.similarity.length === 0)
    return {
      id: 'subspace',
      title: 'Subspace similarity',
      html: '<p class="dr-note">No trained LoRA in this run.</p>',
    };
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
    const buttons = grids.map((g, k) => ({
      label: shortName(g.module),
      method: 'restyle',
      args: [{ visible: grids.map((_, i) => i === k) }],
    }));
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

/** The rank the magnitude/direction plot shows: the one with the most variants, the middle one on a tie. */
function viewRank(r: ComparisonResult): number | undefined {
  const ranks = [...new Set(r.direction.filter((d) => d.rank !== undefined).map((d) => d.rank!))].sort((a, b) => a - b);
  if (ranks.length === 0) return undefined;
  const count = (k: number) => r.direction.filter((d) => d.rank === k).length;
  const best = Math.max(...ranks.map(count));
  const tied = ranks.filter((k) => count(k) === best);
  return tied[Math.floor((tied.length - 1) / 2)];
}

/** DoRA paper Fig. 2: ΔD against ΔM per layer and checkpoint, full FT beside each variant at one rank; slopes for every run. */
function directionSection(r: ComparisonResult): ReportSection {
  const id = 'magnitude-direction';
  const title = 'Magnitude and direction of the updates (DoRA paper Fig. 2)';
  if (!r.direction || r.direction.length === 0)
    return {
      id,
      title,
      html: '<p class="dr-note">This run recorded no checkpoints of ΔM/ΔD (train it again with this version).</p>',
    };
  const rank = viewRank(r);
  const shown = r.direction.filter((d) => d.variant === 'full' || d.rank === rank);
  const traces = shown.map((d) => ({
    type: 'scatter',
    mode: 'markers',
    name: d.variant === 'full' ? 'full fine-tune' : `${variantLabel(d.variant)} r=${d.rank}`,
    x: d.points.map((p) => p.dD),
    y: d.points.map((p) => p.dM),
    text: d.points.map((p) => `${shortName(p.module)}, epoch ${p.epoch}`),
    marker: { color: variantColor(r, d.variant), size: d.points.map((p) => 5 + 2 * p.epoch), opacity: 0.8 },
    hovertemplate: '%{text}<br>ΔD=%{x:.4f}<br>ΔM=%{y:.4f}<extra>%{fullData.name}</extra>',
  }));
  const fmt = (v: number | null) => (v === null ? '—' : formatNumber(v, 3));
  const last = (d: (typeof r.direction)[number]) => {
    const e = Math.max(...d.points.map((p) => p.epoch));
    const pts = d.points.filter((p) => p.epoch === e);
    return { dM: pts.reduce((a, p) => a + p.dM, 0) / pts.length, dD: pts.reduce((a, p) => a + p.dD, 0) / pts.length };
  };
  const rows = r.direction
    .map((d) => {
      const l = last(d);
      return `<tr><td class="dr-text">${escapeHtml(d.variant === 'full' ? 'full fine-tune' : variantLabel(d.variant))}</td><td data-v="${d.rank ?? ''}">${d.rank ?? '—'}</td><td data-v="${l.dM}">${formatNumber(l.dM, 4)}</td><td data-v="${l.dD}">${formatNumber(l.dD, 4)}</td><td data-v="${d.slope ?? ''}">${fmt(d.slope)}</td><td data-v="${d.correlation ?? ''}">${fmt(d.correlation)}</td></tr>`;
    })
    .join('');
  return {
    id,
    title,
    html: `<p class="dr-note">Per adapted layer, after every epoch: ΔM = mean over output rows of |‖W′ᵢ‖ − ‖Wᵢ‖| and ΔD = mean over rows of 1 − cos(W′ᵢ, Wᵢ), W′ the tuned weight (the merged one for adapters), W the base's; rows are PEFT's DoRA norm axis. Liu et al. find LoRA's magnitude and direction moving together (positive slope) and full fine-tuning and DoRA trading one for the other (negative slope). The plot shows rank ${rank ?? '—'}; the table every run (slope and correlation of ΔM on ΔD over all layers and epochs; ΔM, ΔD averaged over layers at the last epoch).</p>
<div class="dr-grid2"><div class="dr-plot" id="dr-dora-fig2"></div>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-direction-table"><thead><tr><th>run</th><th>rank</th><th>ΔM (last)</th><th>ΔD (last)</th><th>slope ΔM/ΔD</th><th>correlation</th></tr></thead><tbody>${rows}</tbody></table></div></div>`,
    plots: [
      {
        divId: 'dr-dora-fig2',
        data: traces,
        layout: {
          height: 420,
          xaxis: { title: { text: 'ΔD (direction change)' } },
          yaxis: { title: { text: 'ΔM (magnitude change)' } },
          legend: { orientation: 'h', y: -0.2 },
          margin: { l: 64, r: 16, t: 24, b: 44 },
        },
      },
    ],
  };
}

/** Intruder dimensions per run and layer, and their total by rank per variant beside full fine-tuning. */
function intruderSection(r: ComparisonResult): ReportSection {
  const id = 'intruders';
  const title = 'Intruder dimensions (Shuttleworth et al. 2024)';
  if (!r.intruders || r.intruders.length === 0)
    return { id, title, html: '<p class="dr-note">No tuned models to examine.</p>' };
  const modules = r.intruders[0]!.layers.map((l) => l.module);
  const full = r.intruders.find((x) => x.variant === 'full');
  const byVariant = [...new Set(r.intruders.filter((x) => x.variant !== 'full').map((x) => x.variant))];
  const ranks = r.intruders.filter((x) => x.rank !== undefined).map((x) => x.rank!);
  const traces: unknown[] = byVariant.map((v) => {
    const rows = r.intruders.filter((x) => x.variant === v).sort((a, b) => a.rank! - b.rank!);
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: variantLabel(v),
      x: rows.map((x) => x.rank),
      y: rows.map((x) => x.total),
      marker: { color: variantColor(r, v) },
      line: { color: variantColor(r, v) },
    };
  });
  if (full && ranks.length > 0)
    traces.push({
      type: 'scatter',
      mode: 'lines',
      name: 'full fine-tune',
      x: [Math.min(...ranks), Math.max(...ranks)],
      y: [full.total, full.total],
      line: { color: COLORS.full, dash: 'dash' },
    });
  const rows = r.intruders
    .map(
      (x) =>
        `<tr><td class="dr-text">${escapeHtml(x.variant === 'full' ? 'full fine-tune' : variantLabel(x.variant))}</td><td data-v="${x.rank ?? ''}">${x.rank ?? '—'}</td>${x.layers.map((l) => `<td data-v="${l.count}" title="closest max |cos| to 0.5: ${formatNumber(l.margin, 3)} away">${l.count}</td>`).join('')}<td data-v="${x.total}"><b>${x.total}</b></td></tr>`,
    )
    .join('');
  return {
    id,
    title,
    html: `<p class="dr-note">As PEFT defines them (reduce_intruder_dimension): among the top 10 left singular vectors of a tuned weight, those whose largest |cosine| with any left singular vector of the base weight is below 0.5 — new directions the fine-tune brought in. Shuttleworth et al. find LoRA, at low rank especially, brings in such directions where full fine-tuning does not, and tie them to forgetting. Base vectors from an exact SVD; tuned top-10 from a randomized SVD whose residuals are checked (an exact SVD where the check fails). Hover a count for how close its nearest decision was to the threshold.</p>
<div class="dr-grid2"><div class="dr-plot" id="dr-intruders"></div>
<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-intruder-table"><thead><tr><th>run</th><th>rank</th>${modules.map((m) => `<th>${escapeHtml(shortName(m))}</th>`).join('')}<th>total</th></tr></thead><tbody>${rows}</tbody></table></div></div>`,
    plots: [
      {
        divId: 'dr-intruders',
        data: traces,
        layout: {
          height: 380,
          xaxis: { title: { text: 'rank r' }, type: 'log' },
          yaxis: { title: { text: `intruder dimensions, all ${modules.length} layers` }, rangemode: 'tozero' },
          legend: { orientation: 'h', y: -0.25 },
          margin: { l: 64, r: 16, t: 24, b: 40 },
        },
      },
    ],
  };
}

/** The comparison sections of a `compare` result. */
export function comparisonSections(result: ComparisonResult): ReportSection[] {
  return [
    scoresSection(result),
    calibratedSection(result),
    directionSection(result),
    intruderSection(result),
    spectraSection(result),
    similaritySection(result),
    projectionSection(result),
  ];
}

/** The whole story of a trained run in one page: comparison, extraction (largest rank) and the full ΔW's spectra. */
export function renderCompareReport(result: CompareOutput, opts: { title?: string } = {}): string {
  return renderPage({
    title: opts.title ?? `LoRA against full fine-tuning · ${result.task}`,
    subtitle: `${result.dir} · ${result.tool.name} ${result.tool.version}`,
    sections: [
      ...comparisonSections(result),
      ...extractionSections(result.extraction),
      ...spectrumSections(result.analysis),
    ],
  });
}
