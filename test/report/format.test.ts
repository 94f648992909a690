import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatCount,
  formatNumber,
  formatPercent,
  formatRank,
  formatShape,
  shortName,
} from '../../src/report/format.js';

test('numbers, percentages, counts and ranks read short', () => {
  assert.equal(formatNumber(0.7134), '0.713');
  assert.equal(formatNumber(1234.5), '1230');
  assert.equal(formatNumber(123456), '1.23e+5');
  assert.equal(formatNumber(0.000123), '1.23e-4');
  assert.equal(formatNumber(0), '0');
  assert.equal(formatNumber(null), '—');
  assert.equal(formatPercent(0.0115), '1.15 %');
  assert.equal(formatPercent(undefined), '—');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(131072), '131k');
  assert.equal(formatCount(4194304), '4.19M');
  assert.equal(formatCount(1.1e9), '1.1G');
  assert.equal(formatRank(41, 300), '41');
  assert.equal(formatRank(null, 300), '> 300');
  assert.equal(formatShape([4096, 11008]), '4096×11008');
  assert.equal(shortName('model.layers.0.self_attn.q_proj.weight'), 'layers.0.self_attn.q_proj');
  assert.equal(shortName('lm_head.weight'), 'lm_head');
});
