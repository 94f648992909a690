import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DeltarankError } from '../../src/errors.js';
import { choleskyLower, solveCholesky } from '../../src/svd/cholesky.js';
import { matmulPlain64 } from '../../src/svd/gemm.js';
import { createRng } from '../../src/svd/random.js';
import { expectAllClose } from '../helpers/close.js';

function gaussian(rows: number, cols: number, seed: number) {
  const rng = createRng(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => rng.normal()) };
}

// n = 203 takes the recursion three levels down with odd splits; G = XᵀX + δI from 150 tokens is
// rank-deficient but for δ, as a Gram matrix of few calibration tokens is.
it('L·Lᵀ equals the matrix, L is lower triangular, and X·(L·Lᵀ) = B', async () => {
  const n = 203;
  const x = gaussian(150, n, 1);
  const g = matmulPlain64(x, x, { transA: true });
  for (let i = 0; i < n; i++) g.data[i * n + i]! += 0.5;
  const l = await choleskyLower(g);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(l.data[i * n + j], 0);
  expectAllClose(matmulPlain64(l, l, { transB: true }).data, g.data, { rtol: 1e-10, atol: 1e-10 }, 'L·Lᵀ');
  const b = gaussian(37, n, 2);
  const sol = await solveCholesky(b, l);
  expectAllClose(matmulPlain64(sol, g).data, b.data, { rtol: 1e-8, atol: 1e-8 }, 'X·G');
});

it('refuses a matrix that is not positive definite', async () => {
  const g = { rows: 2, cols: 2, data: Float64Array.from([1, 2, 2, 1]) };
  await assert.rejects(
    choleskyLower(g),
    (e: Error) => e instanceof DeltarankError && /not positive definite/.test(e.message),
  );
});
