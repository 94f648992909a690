import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { DeltarankError } from '../../src/errors.js';
import { escapeHtml, escapeScript, renderPage, serializeBlob } from '../../src/report/page.js';
import { readBlob } from './read-blob.js';

const plotlyFile = createRequire(import.meta.url).resolve('plotly.js-dist-min');

test('a page holds a nav entry and a card per section, plotly inlined, the data in one blob', () => {
  const html = renderPage({
    title: 'Title <1>',
    subtitle: 'a & b',
    sections: [
      {
        id: 'one',
        title: 'First',
        html: '<div class="dr-plot" id="p1"></div>',
        plots: [{ divId: 'p1', data: [{ type: 'scatter', x: [1, 2], y: [3, 4] }], layout: { height: 300 } }],
      },
      {
        id: 'two',
        title: 'Second & last',
        html: '<p>text</p>',
        data: { hostile: '</script><script>alert(1)</script>', n: [1.23456789, Infinity] },
        script: 'return 1;',
      },
    ],
  });
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<title>Title &lt;1&gt;<\/title>/);
  assert.match(html, /<p>a &amp; b<\/p>/);
  assert.match(html, /<li><a href="#one">First<\/a><\/li><li><a href="#two">Second &amp; last<\/a><\/li>/);
  assert.match(html, /<section class="dr-card" id="one">\n<h2>First<\/h2>/);
  assert.match(html, /<section class="dr-card" id="two">\n<h2>Second &amp; last<\/h2>/);
  const blob = readBlob(html) as {
    plots: { divId: string; data: unknown[]; layout: unknown }[];
    sections: Record<string, unknown>;
  };
  assert.deepEqual(blob.plots, [
    { divId: 'p1', data: [{ type: 'scatter', x: [1, 2], y: [3, 4] }], layout: { height: 300 } },
  ]);
  assert.deepEqual(blob.sections, { two: { hostile: '</script><script>alert(1)</script>', n: [1.23457, null] } });
  // plotly is inlined whole: its size, no external reference of any kind
  const plotly = readFileSync(plotlyFile, 'utf8');
  const start = html.indexOf(plotly.slice(0, 2000));
  assert.ok(start > 0, 'plotly source inlined');
  assert.ok(html.indexOf(plotly.slice(-2000)) > start, 'plotly inlined to its end');
  const own = html.slice(0, start) + html.slice(html.indexOf(plotly.slice(-2000)) + 2000);
  const external = /<script[^>]+src=|<link[^>]+href=|@import|url\(|https?:/i.exec(own);
  assert.equal(external, null, 'no external reference outside plotly');
  // each script element closes exactly once: nothing inside one closes it early
  const opens = html.match(/<script\b/gi)!.length;
  const closes = html.match(/<\/script/gi)!.length;
  assert.equal(opens, 5, 'data, plotly, boot, one section script, ready');
  assert.equal(closes, opens);
  assert.ok(html.includes('window.deltarank.data["two"]'));
});

test('escaping for script and JSON elements keeps the meaning', () => {
  const js = `var a = '</ScRiPt><!-- x'; a`;
  const safe = escapeScript(js);
  assert.doesNotMatch(safe, /<\/script|<!--/i);
  assert.equal(eval(safe), '</ScRiPt><!-- x');
  const value = { s: '<b>\u2028', x: 1 / 3, big: 123456789.123, i: 42, neg: -Infinity, nan: NaN };
  const json = serializeBlob(value);
  assert.doesNotMatch(json, /</);
  assert.deepEqual(JSON.parse(json), { s: '<b>\u2028', x: 0.333333, big: 123457000, i: 42, neg: null, nan: null });
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('two sections with one id are refused', () => {
  assert.throws(
    () =>
      renderPage({
        title: 't',
        sections: [
          { id: 'a', title: 'A', html: '' },
          { id: 'a', title: 'B', html: '' },
        ],
      }),
    (e: unknown) => e instanceof DeltarankError && /two sections have the id "a"/.test(e.message),
  );
});
