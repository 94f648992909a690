/**
 * The extraction view: what `extract` chose per module (rank heatmap), the error it
 * measured from the factors as written beside the Eckart–Young optimum, and the totals.
 */
import { ANALYZE_SCHEMA_VERSION, type AnalyzeResult, type TensorSpectrum } from '../analyze/types.js';
import type { ExtractionResult } from '../extract/types.js';
import { formatCount, formatNumber, formatPercent, formatShape, maxOf, shortName } from './format.js';
import type { ReportSection } from './page.js';
import { escapeHtml, renderPage } from './page.js';
import { spectrumSections } from './spectrum-sections.js';
import { orderModuleTypes, tensorPlace } from './tensor-place.js';

const NO_LAYER = '—';

function tile(value: string, label: string): string {
  return `<div class="dr-tile"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`;
}

function policyText(p: ExtractionResult['policy']): string {
  const parts: string[] = [];
  if ('rank' in p) parts.push(`rank ${p.rank}`);
  if ('energy' in p) parts.push(`energy ≥ ${p.energy}`);
  if ('error' in p) parts.push(`error ≤ ${p.error}`);
  if ('budget' in p) parts.push(`${p.relative ? 'relative ' : ''}budget ${formatCount(p.budget)} parameters`);
  if (p.maxRank !== undefined) parts.push(`max rank ${p.maxRank}`);
  if (p.minRank !== undefined) parts.push(`min rank ${p.minRank}`);
  return parts.join(', ');
}

/** How many left-out tensors the coverage note names. */
const LEFT_OUT_LISTED = 12;

/**
 * The model-level line: the share of Σ‖ΔW‖² over every changed parameter the adapter reproduces,
 * what the truncation loses and what is not carried at all, and the layout the adapter was written for.
 */
export function coverageHtml(result: Pick<ExtractionResult, 'coverage' | 'layout'>): string {
  const c = result.coverage;
  if (!c) return '';
  const lo = c.leftOut
    .slice(0, LEFT_OUT_LISTED)
    .map((l) => `<li><code>${escapeHtml(l.name)}</code> ${formatPercent(l.share, 3)} — ${escapeHtml(l.reason)}</li>`)
    .join('');
  const more =
    c.leftOut.length > LEFT_OUT_LISTED
      ? `<li>… and ${c.leftOut.length - LEFT_OUT_LISTED} more (extraction.json lists them all)</li>`
      : '';
  const l = result.layout;
  const layout = l
    ? `<p class="dr-note">Layout: model type <code>${escapeHtml(l.modelType ?? 'none')}</code> (table entry ${escapeHtml(l.family)}), task_type ${escapeHtml(l.taskType ?? 'null')}${l.tiedEmbeddings ? ', tied embeddings' : ''}${l.fanInFanOut ? ', Conv1D weights (fan_in_fan_out)' : ''}, biases ${l.biases === 'lora_bias' ? 'as lora_B.bias (lora_bias)' : l.biases === 'whole' ? 'saved whole (bias: "lora_only")' : 'not carried'}${l.fusedExpertRank !== null ? `, MoE experts at one rank ${l.fusedExpertRank}` : ''}.</p>`
    : '';
  return `<p class="dr-note" id="dr-coverage"><b>The adapter reproduces ${formatPercent(c.reproduced, 3)} of Σ‖ΔW‖² over all ${formatCount(c.changedParams)} changed parameters</b> (${c.changedTensors} tensors):
the LoRA truncation loses ${formatPercent(c.truncated, 3)}, and ${formatPercent(c.leftOutShare, 3)} is in tensors the adapter does not carry${c.leftOut.length > 0 ? ':' : '.'}</p>
${lo || more ? `<ul class="dr-note">${lo}${more}</ul>` : ''}
${
  c.notComparable.length > 0
    ? `<p class="dr-note">Not comparable (one side only, or shapes differ): ${c.notComparable
        .slice(0, LEFT_OUT_LISTED)
        .map((n) => `<code>${escapeHtml(n.name)}</code> (${escapeHtml(n.reason)})`)
        .join(', ')}${c.notComparable.length > LEFT_OUT_LISTED ? ', …' : ''}.</p>`
    : ''
}
${layout}`;
}

/** The extraction sections for an `extract` result. */
export function extractionSections(result: ExtractionResult): ReportSection[] {
  const s = result.summary;
  const placed = result.modules.map((m) => ({ m, ...tensorPlace(`${m.module}.weight`) }));
  const types = orderModuleTypes(placed.map((p) => p.moduleType));
  const layers = [...new Set(placed.map((p) => p.layer))].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  const rows = layers.map((l) => (l === null ? NO_LAYER : String(l)));
  const z = rows.map(() => types.map(() => null as number | null));
  const text = rows.map(() => types.map(() => ''));
  for (const p of placed) {
    const i = layers.indexOf(p.layer);
    const j = types.indexOf(p.moduleType);
    z[i]![j] = p.m.rank;
    text[i]![j] = `${shortName(p.m.module)}<br>rank ${p.m.rank}<br>error ${formatNumber(p.m.relativeError)}`;
  }

  const summary: ReportSection = {
    id: 'lora-extraction',
    title: 'Extraction',
    html: `<p class="dr-note">Policy: ${escapeHtml(policyText(result.policy))}; factors in ${escapeHtml(result.dtype)}, written to <code>${escapeHtml(result.out)}</code>.
Errors are measured from the factors as written, ‖ΔW − B·A‖<sub>F</sub> / ‖ΔW‖<sub>F</sub>, beside the best any factors of that rank can do, √(1 − E(r)).</p>
<div class="dr-tiles">${[
      tile(String(s.modules), 'LoRA modules'),
      tile(formatCount(s.loraParams), 'adapter parameters'),
      tile(formatPercent(s.loraParams / Math.max(1, s.denseParams)), 'of the dense ΔW'),
      tile(formatNumber(s.relativeError), 'model-level relative error'),
      tile(
        `${s.optimalIsBound ? '≤ ' : ''}${formatNumber(s.optimalError)}`,
        s.optimalIsBound
          ? 'optimum at these ranks (upper bound: randomized σ are lower bounds)'
          : 'optimum at these ranks',
      ),
      tile(formatCount(s.fullParams), 'parameters saved whole'),
    ].join('')}</div>
${coverageHtml(result)}
${
  result.warnings.length > 0
    ? `<ul class="dr-note">${result.warnings
        .slice(0, 20)
        .map((w) => `<li>${escapeHtml(w)}</li>`)
        .join('')}</ul>`
    : ''
}
<div class="dr-grid2"><div class="dr-plot" id="dr-extract-ranks"></div><div class="dr-plot" id="dr-extract-errors"></div></div>`,
    plots: [
      {
        divId: 'dr-extract-ranks',
        data: [
          {
            type: 'heatmap',
            x: types,
            y: rows,
            z,
            text: z.map((r) => r.map((v) => (v === null ? '' : String(v)))),
            customdata: text,
            texttemplate: '%{text}',
            hovertemplate: '%{customdata}<extra></extra>',
            colorscale: 'Viridis',
            colorbar: { title: { text: 'rank' } },
          },
        ],
        // automargin: room below for the module names ("embeddings", "lm_head") however they are tilted.
        layout: {
          title: { text: 'Rank chosen per module' },
          height: Math.max(340, 100 + 22 * rows.length),
          xaxis: { automargin: true, tickangle: -35 },
          yaxis: { autorange: 'reversed', title: { text: 'layer' }, type: 'category', automargin: true },
          margin: { l: 56, r: 16, t: 44, b: 40 },
        },
      },
      {
        divId: 'dr-extract-errors',
        data: [
          {
            type: 'scatter',
            mode: 'markers',
            name: 'module',
            x: result.modules.map((m) => m.optimalError),
            y: result.modules.map((m) => m.relativeError),
            text: result.modules.map((m) => `${shortName(m.module)} (rank ${m.rank})`),
            hovertemplate: '%{text}<br>optimum %{x:.4g}<br>measured %{y:.4g}<extra></extra>',
            // Colour is the module's rank, with its scale shown: a colour nobody can read explains nothing.
            marker: {
              size: 7,
              color: result.modules.map((m) => m.rank),
              colorscale: 'Viridis',
              showscale: true,
              colorbar: { title: { text: 'rank' }, thickness: 12 },
            },
          },
          {
            type: 'scatter',
            mode: 'lines',
            name: 'measured = optimum',
            x: [0, Math.max(1e-9, maxOf(result.modules.map((m) => Math.max(m.optimalError, m.relativeError))))],
            y: [0, Math.max(1e-9, maxOf(result.modules.map((m) => Math.max(m.optimalError, m.relativeError))))],
            line: { dash: 'dash', color: '#888' },
          },
        ],
        layout: {
          title: { text: 'Measured error against the optimum' },
          height: 420,
          xaxis: { title: { text: 'optimum √(1 − E(r))' } },
          yaxis: { title: { text: 'measured ‖ΔW − B·A‖ / ‖ΔW‖' } },
          legend: { orientation: 'h', y: -0.2 },
        },
      },
    ],
  };

  const body = result.modules
    .map(
      (m) =>
        `<tr><td class="dr-text">${escapeHtml(m.module)}</td><td data-v="${m.shape[0]! * m.shape[1]!}">${formatShape(m.shape)}</td><td data-v="${m.rank}">${m.rank}</td><td data-v="${m.energy}">${m.bound ? '≥ ' : ''}${formatPercent(m.energy, 4)}</td><td data-v="${m.relativeError}">${formatNumber(m.relativeError, 4)}</td><td data-v="${m.optimalError}">${m.bound ? '≤ ' : ''}${formatNumber(m.optimalError, 4)}</td><td data-v="${m.params}">${formatCount(m.params)}</td></tr>`,
    )
    .join('');
  const skipped = result.skipped
    .map(
      (k) => `<tr><td class="dr-text">${escapeHtml(k.name)}</td><td class="dr-text">${escapeHtml(k.reason)}</td></tr>`,
    )
    .join('');
  const tables: ReportSection = {
    id: 'extraction-modules',
    title: 'Extracted modules',
    html: `<div class="dr-scroll"><table class="dr-table dr-sortable" id="dr-extract-table"><thead><tr><th>module</th><th>shape</th><th>rank</th><th>energy</th><th>error</th><th>optimum</th><th>params</th></tr></thead><tbody>${body}</tbody></table></div>
${result.modulesToSave.length > 0 ? `<p class="dr-note">Saved whole (modules_to_save): ${result.modulesToSave.map((m) => `<code>${escapeHtml(m)}</code>`).join(', ')}</p>` : ''}
${skipped ? `<h3>Not extracted</h3><div class="dr-scroll"><table class="dr-table dr-sortable"><thead><tr><th>tensor</th><th class="dr-text">reason</th></tr></thead><tbody>${skipped}</tbody></table></div>` : ''}`,
  };
  return [summary, tables];
}

/** The spectra seen during extraction as an analyze result, so the spectrum view can show them. */
export function spectraAsAnalysis(result: ExtractionResult, spectra: TensorSpectrum[]): AnalyzeResult {
  return {
    schemaVersion: ANALYZE_SCHEMA_VERSION,
    tool: result.tool,
    base: result.base,
    tuned: result.tuned,
    thresholds: [0.5, 0.9, 0.95, 0.99],
    tensors: spectra,
    others: [],
    skipped: result.skipped,
    seconds: result.seconds,
  };
}

/** Spectrum and extraction views of an `extract` run, in one page. */
export function renderExtractReport(
  result: ExtractionResult & { spectra: TensorSpectrum[] },
  opts: { title?: string } = {},
): string {
  return renderPage({
    title: opts.title ?? `LoRA extraction · ${result.tuned}`,
    subtitle: `${result.base} → ${result.tuned} · ${result.tool.name} ${result.tool.version}`,
    sections: [
      ...extractionSections(result),
      ...spectrumSections(spectraAsAnalysis(result, result.spectra), {
        adapter: {
          params: result.summary.loraParams,
          error: result.summary.relativeError,
          policy: policyText(result.policy),
        },
        savedWhole: result.modulesToSave,
        moreValues: '(extract computes only the values its ranks need; deltarank analyze computes more)',
      }),
    ],
  });
}
