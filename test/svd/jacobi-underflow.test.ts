import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jacobiSvd } from '../../src/svd/exact-jacobi.js';

// A trained ReLU layer's ΔW has columns of dead units that Householder QR leaves near 1e-155,
// whose squares are subnormal: one-sided Jacobi must not spin on them (it once never converged
// on such a 256×256 ΔW). Built here directly in f64, where the Jacobi works.
it('one-sided Jacobi converges with columns whose squared norms are subnormal', async () => {
  const p = 24;
  const len = 24;
  const cols = new Float64Array(p * len);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  for (let j = 0; j < p; j++) for (let i = 0; i < len; i++) cols[j * len + i] = rand();
  const dead = [3, 11, 19];
  for (const j of dead) for (let i = 0; i < len; i++) cols[j * len + i] = rand() * 1e-156;
  const { s } = await jacobiSvd(cols, p, len, { vectors: false });
  for (let i = 0; i < p - dead.length; i++) assert.ok(s[i]! > 1e-3, `σ_${i + 1} = ${s[i]}`);
  for (let i = p - dead.length; i < p; i++) assert.ok(s[i]! < 1e-150, `σ_${i + 1} of a dead column: ${s[i]}`);
});
