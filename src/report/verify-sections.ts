/**
 * The verify view: how far base+adapter sits from the fine-tune in its outputs (KL, top-1,
 * perplexity, recovered logit change) and where along the layers and positions the gap opens.
 */
import type { VerifyResult } from '../verify/types.js';
import { formatNumber, formatPercent } from './format.js';
import { escapeHtml, type ReportSection, renderPage } from './page.js';

function tile(value: string, label: string): string {
  return `<div class="dr-tile"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`;
}

/** The verify sections: summary tiles, per-layer hidden-state error, KL per position. */
export function verifySections(r: VerifyResult): ReportSection[] {
  const layers = r.layers.map((l) => l.layer);
  const hasLens = r.layers.some((l) => l.klAdapter !== undefined);
  const summary: ReportSection = {
    id: 'verify-summary',
    title: 'Fidelity in the outputs',
    html: `<p class="dr-note">${r.tokens.toLocaleString('en-US')} tokens in ${r.sequences} sequences, ${escapeHtml(r.modelType)}; adapter ${r.merged ? 'merged into W' : 'applied as factors'}.
KL(tuned‖·) is the mean over every position of the divergence of a model's next-token distribution from the fine-tune's, in nats (± one standard error of the mean).
“Recovered” is the share of the fine-tune's change of the (centred) logits that base+adapter reproduces: 1 is the fine-tune, 0 the base.</p>
<div class="dr-tiles">${[
      tile(`${formatNumber(r.kl.adapter)} ± ${formatNumber(r.kl.adapterStdErr, 2)}`, 'KL(tuned‖base+adapter), nats'),
      tile(`${formatNumber(r.kl.base)} ± ${formatNumber(r.kl.baseStdErr, 2)}`, 'KL(tuned‖base), nats'),
      tile(formatPercent(r.kl.adapter / Math.max(r.kl.base, 1e-300)), 'of the base KL left'),
      tile(formatPercent(r.recovered), 'logit change recovered'),
      tile(formatPercent(r.top1.adapter), 'top-1 agreement, adapter'),
      tile(formatPercent(r.top1.base), 'top-1 agreement, base'),
      tile(formatNumber(r.perplexity.tuned), 'perplexity, tuned'),
      tile(formatNumber(r.perplexity.adapter), 'perplexity, base+adapter'),
      tile(formatNumber(r.perplexity.base), 'perplexity, base'),
    ].join('')}</div>
<div class="dr-grid2"><div class="dr-plot" id="dr-verify-layers"></div><div class="dr-plot" id="dr-verify-positions"></div></div>
${hasLens ? '<p class="dr-note">KL by layer is the logit lens: the final norm and head applied to the residual stream after each layer, on a sample of tokens; its last point is the model\'s own KL on them.</p><div class="dr-plot" id="dr-verify-layer-kl"></div>' : ''}`,
    plots: [
      {
        divId: 'dr-verify-layers',
        data: [
          {
            type: 'scatter',
            mode: 'lines+markers',
            name: '‖h_adapter − h_tuned‖ / ‖h_tuned − h_base‖',
            x: layers,
            y: r.layers.map((l) => l.relativeError),
          },
          {
            type: 'scatter',
            mode: 'lines+markers',
            name: '‖h_tuned − h_base‖ / ‖h_tuned‖',
            x: layers,
            y: r.layers.map((l) => l.tunedChange),
            line: { dash: 'dot' },
          },
        ],
        layout: {
          height: 360,
          title: { text: 'Hidden states after each layer' },
          xaxis: { title: { text: 'layer' } },
          yaxis: { title: { text: 'relative error' }, rangemode: 'tozero' },
          legend: { orientation: 'h', y: -0.25 },
        },
      },
      {
        divId: 'dr-verify-positions',
        data: [
          {
            type: 'scatter',
            mode: 'lines',
            name: 'KL(tuned‖base+adapter)',
            x: r.perPosition.adapter.map((_, i) => i),
            y: r.perPosition.adapter,
          },
          {
            type: 'scatter',
            mode: 'lines',
            name: 'KL(tuned‖base)',
            x: r.perPosition.base.map((_, i) => i),
            y: r.perPosition.base,
            line: { dash: 'dot' },
          },
        ],
        layout: {
          height: 360,
          title: { text: 'KL by position in the sequence' },
          xaxis: { title: { text: 'position' } },
          yaxis: { title: { text: 'nats' }, rangemode: 'tozero' },
          legend: { orientation: 'h', y: -0.25 },
        },
      },
      ...(hasLens
        ? [
            {
              divId: 'dr-verify-layer-kl',
              data: [
                {
                  type: 'scatter',
                  mode: 'lines+markers',
                  name: 'KL(tuned‖base+adapter)',
                  x: layers,
                  y: r.layers.map((l) => l.klAdapter ?? null),
                },
                {
                  type: 'scatter',
                  mode: 'lines+markers',
                  name: 'KL(tuned‖base)',
                  x: layers,
                  y: r.layers.map((l) => l.klBase ?? null),
                  line: { dash: 'dot' },
                },
              ],
              layout: {
                height: 360,
                title: { text: 'KL by layer (logit lens)' },
                xaxis: { title: { text: 'layer' } },
                yaxis: { title: { text: 'nats' }, rangemode: 'tozero' },
                legend: { orientation: 'h', y: -0.25 },
              },
            },
          ]
        : []),
    ],
  };
  const recovered: ReportSection = {
    id: 'verify-recovered',
    title: 'Share of the fine-tune recovered',
    html: `<p class="dr-note">Each bar is 1 − (gap left by the adapter) / (gap of the base): by KL, by centred logits, and by the hidden states after the last layer.</p><div class="dr-plot" id="dr-verify-recovered"></div>`,
    plots: [
      {
        divId: 'dr-verify-recovered',
        data: [
          {
            type: 'bar',
            x: ['KL', 'logits', 'last hidden state'],
            y: [r.kl.recovered, r.recovered, 1 - (r.layers[r.layers.length - 1]?.relativeError ?? 1) ** 2],
            text: [r.kl.recovered, r.recovered, 1 - (r.layers[r.layers.length - 1]?.relativeError ?? 1) ** 2].map((v) =>
              formatPercent(v),
            ),
            textposition: 'auto',
          },
        ],
        layout: {
          height: 320,
          yaxis: { title: { text: 'share recovered' }, range: [Math.min(0, r.kl.recovered, r.recovered), 1] },
        },
      },
    ],
  };
  return [summary, recovered];
}

/** The whole verify page. */
export function renderVerifyReport(r: VerifyResult): string {
  return renderPage({
    title: 'Adapter vs fine-tune, in the outputs',
    subtitle: `${r.adapter ?? 'adapter'} on ${r.base}, against ${r.tuned}`,
    sections: verifySections(r),
  });
}
