import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type { AnalyzeResult } from '../../src/analyze/types.js';
import { renderAnalyzeReport, spectrumSections } from '../../src/report/index.js';
import { KEEP_ALL } from '../../src/report/thin.js';
import { readBlob } from './read-blob.js';
import { llamaResult, plantedTensor, TINY, TINYLLAMA } from './synthetic.js';

interface Trace {
  type: string;
  name?: string;
  x?: unknown[];
  y?: unknown[];
  z?: (number | null)[][];
  text?: unknown;
  visible?: boolean;
}
interface Blob {
  plots: { divId: string; data: Trace[]; layout: Record<string, any> }[];
  sections: Record<string, any>;
}

const plotlyBytes = readFileSync(createRequire(import.meta.url).resolve('plotly.js-dist-min')).length;
const MB = 1e6;

function close(actual: number, expected: number, rel: number, what: string) {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: ${actual} vs ${expected}`);
}

/** Model-level error of the top r of every tensor, from the whole planted spectra. */
function trueError(full: Map<string, Float64Array>, r: number): number {
  let total = 0;
  let kept = 0;
  for (const s of full.values()) s.forEach((v, i) => ((total += v * v), i < r && (kept += v * v)));
  return Math.sqrt(1 - kept / total);
}

const tiny = llamaResult(TINY);
const big = llamaResult(TINYLLAMA);
const tinyHtml = renderAnalyzeReport(tiny.result);
const bigHtml = renderAnalyzeReport(big.result);

test('sections, nav and plot containers are all there', () => {
  for (const html of [tinyHtml, bigHtml]) {
    const ids = [...html.matchAll(/<section class="dr-card" id="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(ids, ['summary', 'heatmap', 'energy', 'scree', 'extraction', 'tensors']);
    for (const id of ids) assert.ok(html.includes(`<a href="#${id}">`), `nav links ${id}`);
    const blob = readBlob(html) as Blob;
    const divs = [...html.matchAll(/<div class="dr-plot" id="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(divs.sort(), [...blob.plots.map((p) => p.divId), 'dr-scree-plot'].sort());
  }
  assert.match(bigHtml, /<title>ΔW spectrum · tuned<\/title>/);
  assert.match(bigHtml, /models\/base → models\/tuned · 156 tensors · deltarank 0\.0\.0-test/);
  assert.match(renderAnalyzeReport(tiny.result, { title: 'My run' }), /<h1>My run<\/h1>/);
});

test('heatmap cells hold each tensor’s rank at 90 % (log colour), "> k" where unreached', () => {
  const blob = readBlob(bigHtml) as Blob;
  const heat = blob.plots.find((p) => p.divId === 'dr-heatmap-plot')!;
  const [main, unknown] = heat.data as [
    Trace & { x: string[]; y: string[]; z: (number | null)[][]; text: string[][] },
    Trace & { z: (number | null)[][]; text: string[][] },
  ];
  assert.deepEqual(main.x, ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'embeddings', 'lm_head']);
  assert.deepEqual(main.y, [...Array.from({ length: 22 }, (_, i) => String(i)), '—']);
  let nulls = 0;
  for (const t of big.result.tensors) {
    const m = /layers\.(\d+)\.\w+\.(\w+)_proj/.exec(t.name);
    const row = m ? Number(m[1]) : 22;
    const col = m ? main.x.indexOf(m[2]!) : main.x.indexOf(t.name.startsWith('lm_head') ? 'lm_head' : 'embeddings');
    // the planted spectrum's own rank at 90 %, from the whole spectrum
    const full = big.full.get(t.name)!;
    const total = full.reduce((a, v) => a + v * v, 0);
    let acc = 0;
    let r90 = 0;
    while (acc < 0.9 * total) acc += full[r90++]! ** 2;
    if (r90 <= 300) {
      close(main.z[row]![col]!, Math.log10(r90), 1e-5, t.name);
      assert.equal(main.text[row]![col], String(r90));
      assert.equal(unknown.z[row]![col], null);
    } else {
      nulls++;
      assert.equal(main.z[row]![col], null);
      assert.equal(unknown.z[row]![col], 1);
      assert.equal(unknown.text[row]![col], '> 300');
    }
  }
  // the planted τ grows with depth: late down_proj need more than the 300 values computed at 99 %
  const buttons = heat.layout.updatemenus[0].buttons as {
    label: string;
    args: [{ z: [(number | null)[][], (number | null)[][]] }];
  }[];
  assert.deepEqual(
    buttons.map((b) => b.label),
    ['rank at 90 %', 'rank at 95 %', 'rank at 99 %', 'relative update'],
  );
  const r99 = buttons[2]!.args[0].z[1].flat().filter((v) => v === 1).length;
  const expected99 = big.result.tensors.filter((t) => t.rankAt['0.99'] === null).length;
  assert.ok(expected99 > 0 && r99 === expected99, `${r99} grey cells at 99 %, ${expected99} tensors unreached`);
  assert.equal(nulls, big.result.tensors.filter((t) => t.rankAt['0.9'] === null).length);
  const rel = buttons[3]!.args[0].z[0];
  const q0 = big.result.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
  close(rel[0]![0]!, Math.log10(q0.deltaNorm / q0.baseNorm!), 1e-5, 'relative update cell');
});

test('energy curves: one trace per tensor, the planted E(r), one module type shown at a time', () => {
  const blob = readBlob(bigHtml) as Blob;
  const energy = blob.plots.find((p) => p.divId === 'dr-energy-plot')!;
  const lines = energy.data.filter((t) => t.type === 'scatter' && (t as any).mode === 'lines');
  assert.equal(lines.length, big.result.tensors.length);
  const line = lines.find((t) => t.name === 'layers.5.mlp.up_proj')!;
  const full = big.full.get('model.layers.5.mlp.up_proj.weight')!;
  const total = full.reduce((a, v) => a + v * v, 0);
  let acc = 0;
  (line.x as number[]).forEach((r, j) => {
    acc = 0;
    for (let i = 0; i < r; i++) acc += full[i]! ** 2;
    close((line.y as number[])[j]!, acc / total, 1e-5, `E(${r})`);
  });
  assert.equal(line.x!.length, 300);
  const buttons = energy.layout.updatemenus[0].buttons as { label: string; args: [{ visible: boolean[] }] }[];
  assert.equal(buttons.length, 9);
  assert.equal(buttons[0]!.label, 'q (22)');
  const visibleQ = buttons[0]!.args[0].visible;
  assert.equal(visibleQ.length, energy.data.length);
  assert.equal(energy.data.filter((t, i) => visibleQ[i] && (t as any).mode === 'lines').length, 22);
  assert.deepEqual(
    energy.data.map((t) => t.visible !== false),
    visibleQ,
  );
});

test('scree data: values thinned past KEEP_ALL, Marchenko–Pastur baseline per shape at unit norm', () => {
  const wide = plantedTensor('model.layers.0.mlp.down_proj.weight', [1024, 4096], { tau: 200 });
  const result: AnalyzeResult = { ...tiny.result, tensors: [wide.spectrum, ...tiny.result.tensors] };
  const blob = readBlob(renderAnalyzeReport(result)) as Blob;
  const scree = blob.sections.scree as {
    tensors: { b: string; f: number; x?: number[]; s: number[]; r: (number | null)[] }[];
    baselines: Record<string, { x: number[]; s: number[] }>;
  };
  assert.equal(scree.tensors.length, result.tensors.length);
  const t = scree.tensors.find((e) => e.b === '1024×4096')!;
  assert.ok(t.x, 'a 1024-value spectrum is thinned');
  assert.deepEqual(
    t.x!.slice(0, KEEP_ALL),
    Array.from({ length: KEEP_ALL }, (_, i) => i + 1),
  );
  assert.equal(t.x![t.x!.length - 1], 1024);
  assert.ok(t.x!.length < 1024 * 0.7);
  t.x!.forEach((i, j) => close(t.s[j]!, wide.full[i - 1]!, 1e-5, `σ_${i}`));
  close(t.f, wide.spectrum.deltaNorm, 1e-5, '‖ΔW‖');
  // tiny spectra are complete and short: stored whole, without indices
  const small = scree.tensors.find((e) => e.b === '64×64')!;
  assert.equal(small.x, undefined);
  assert.equal(small.s.length, 64);
  // a Gaussian matrix of unit Frobenius norm has σ₁ ≈ (√m + √n)/√(mn)
  const base = scree.baselines['1024×4096']!;
  close(base.s[0]!, (32 + 64) / Math.sqrt(1024 * 4096), 0.02, 'baseline σ₁');
  assert.equal(base.x[base.x.length - 1], 1024);
});

test('extraction frontier: fixed-rank errors equal the planted spectra’s, points labelled', () => {
  const blob = readBlob(bigHtml) as Blob;
  const frontier = blob.plots.find((p) => p.divId === 'dr-frontier-plot')!;
  const fixed = frontier.data.find((t) => (t as any).mode === 'lines+markers+text')!;
  assert.deepEqual(fixed.text, ['r=1', 'r=2', 'r=4', 'r=8', 'r=16', 'r=32', 'r=64', 'r=128', 'r=256', 'r=300']);
  const rank16 = 4;
  close((fixed.y as number[])[rank16]!, trueError(big.full, 16), 1e-5, 'model error at r=16');
  // r·(m+n) summed: per layer 2·4096 + 2·2304 + 3·7680 at r=16, embeddings and lm_head 34048 each
  const perLayer = 2 * 4096 + 2 * 2304 + 3 * 7680;
  assert.equal((fixed.x as number[])[rank16], 16 * (22 * perLayer + 2 * 34048));
  // k_proj/v_proj have only 256 values: at 300 they are whole, no bound from them
  close((fixed.y as number[])[9]!, trueError(big.full, 300), 1e-5, 'model error at r=300');
  const greedy = frontier.data.find((t) => (t.name ?? '').startsWith('best per-tensor'))!;
  const gy = greedy.y as number[];
  for (let i = 1; i < gy.length; i++) assert.ok(gy[i]! <= gy[i - 1]! + 1e-6);
  assert.ok(bigHtml.includes('id="dr-frontier-table"'));
});

test('tables list every tensor, other and skipped one; summary medians per module type', () => {
  const rows = /<table class="dr-table dr-sortable" id="dr-tensor-table">([\s\S]*?)<\/table>/.exec(bigHtml)![1]!;
  assert.equal((rows.match(/<tr>/g) ?? []).length, 156 + 1);
  for (const t of big.result.tensors)
    assert.ok(rows.includes(`>${t.name.replace(/^model\./, '').replace(/\.weight$/, '')}<`), t.name);
  assert.ok(rows.includes('>&gt; 300<'));
  assert.match(bigHtml, /<h3>Other tensors \(2\)<\/h3>/);
  assert.match(
    bigHtml,
    /<td class="dr-text">model\.extra_head\.weight<\/td><td class="dr-text">present in tuned only<\/td>/,
  );
  const typeTable = /id="dr-type-table">([\s\S]*?)<\/table>/.exec(bigHtml)![1]!;
  const qRow = /<tr><td>q<\/td><td data-v="22">22<\/td><td class="dr-text">2048×2048<\/td><td data-v="([\d.]+)">/.exec(
    typeTable,
  );
  assert.ok(qRow, 'q row');
  const qR90 = big.result.tensors
    .filter((t) => t.name.includes('q_proj'))
    .map((t) => t.rankAt['0.9'] as number)
    .sort((a, b) => a - b);
  assert.equal(Number(qRow[1]), (qR90[10]! + qR90[11]!) / 2);
});

test('size: tinyllama and 160 tensors × 512 values stay far under 15 MB', () => {
  const bytes = (html: string) => Buffer.byteLength(html, 'utf8');
  assert.ok(bytes(bigHtml) < 15 * MB, `${bytes(bigHtml)} bytes`);
  const many: AnalyzeResult = {
    ...tiny.result,
    tensors: Array.from(
      { length: 160 },
      (_, i) =>
        plantedTensor(`model.layers.${i >> 3}.mlp.m${i & 7}.weight`, [4096, 4096], { tau: 50 + i, k: 512 }).spectrum,
    ),
  };
  const html = renderAnalyzeReport(many);
  const data = bytes(html) - plotlyBytes;
  assert.ok(bytes(html) < 15 * MB, `${bytes(html)} bytes`);
  assert.ok(data < 4 * MB, `${data} bytes beside plotly`);
  // complete 4096-value spectra are thinned to about the same size
  const exact: AnalyzeResult = {
    ...tiny.result,
    tensors: Array.from(
      { length: 160 },
      (_, i) => plantedTensor(`model.layers.${i >> 3}.mlp.m${i & 7}.weight`, [4096, 4096], { tau: 50 + i }).spectrum,
    ),
  };
  const exactData = bytes(renderAnalyzeReport(exact)) - plotlyBytes;
  assert.ok(exactData < 1.6 * data, `${exactData} bytes beside plotly for complete spectra`);
});

test('any naming works: an MLP with fc layers, and a result with no tensor at all', () => {
  const mlp: AnalyzeResult = {
    ...tiny.result,
    tensors: [
      plantedTensor('model.layers.0.fc.weight', [256, 784], { tau: 8 }).spectrum,
      plantedTensor('model.layers.1.fc.weight', [128, 256], { tau: 6 }).spectrum,
      plantedTensor('model.head.weight', [10, 128], { tau: 2 }).spectrum,
      // unchanged: what analyze reports for ΔW = 0
      {
        ...plantedTensor('model.layers.2.fc.weight', [64, 128], { tau: 1 }).spectrum,
        deltaNorm: 0,
        relativeUpdate: 0,
        singularValues: [],
        energy: [],
        complete: true,
        rankAt: { '0.5': 0, '0.9': 0, '0.95': 0, '0.99': 0 },
        stableRank: 0,
      },
    ],
  };
  const blob = readBlob(renderAnalyzeReport(mlp)) as Blob;
  const heat = blob.plots.find((p) => p.divId === 'dr-heatmap-plot')!;
  assert.deepEqual(heat.data[0]!.x, ['fc', 'head']);
  assert.deepEqual(heat.data[0]!.y, ['0', '1', '2', '—']);
  const [main, off] = heat.data as { z: (number | null)[][]; text: string[][] }[];
  close(main!.z[1]![0]!, Math.log10(mlp.tensors[1]!.rankAt['0.9'] as number), 1e-6, 'layer 1 fc');
  assert.equal(main!.z[2]![0], null);
  assert.equal(off!.z[2]![0], 1);
  assert.equal(off!.text[2]![0], 'unchanged');
  const fixed = blob.plots
    .find((p) => p.divId === 'dr-frontier-plot')!
    .data.find((t) => (t as any).mode === 'lines+markers+text')!;
  // the unchanged tensor is left out of the adapter
  assert.equal((fixed.x as number[])[0], 256 + 784 + 128 + 256 + 10 + 128);
  const empty: AnalyzeResult = {
    ...tiny.result,
    tensors: [],
    others: [],
    skipped: [
      { name: 'a', reason: 'shape [2,3] vs [3,3]' },
      { name: 'b', reason: 'shape [4,3] vs [5,3]' },
    ],
  };
  const sections = spectrumSections(empty);
  assert.deepEqual(
    sections.map((s) => s.id),
    ['summary', 'tensors'],
  );
  assert.match(sections[0]!.html, /2 × like <code>a: shape \[2,3\] vs \[3,3\]<\/code>/);
});
