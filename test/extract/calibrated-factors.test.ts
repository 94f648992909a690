/**
 * Calibrated factors against an independent route: in f64 (ml-matrix), the Cholesky factor S of
 * G + δI, the SVD of ΔW·S truncated and mapped back with S⁻¹ — the textbook minimiser of
 * ‖(ΔW − B·A)·S‖_F — which ours must equal without ever forming S.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CholeskyDecomposition, inverse, Matrix as MlMatrix, SingularValueDecomposition } from 'ml-matrix';
import {
  calibratedFactors,
  correctingUpdate,
  outputErrorSquares,
  outputSpectrum,
} from '../../src/extract/calibrated-factors.js';
import { createRng, fillNormal, type Matrix, matmulPlain } from '../../src/svd/index.js';

function problem(m: number, n: number, tokens: number, seed: number) {
  const rng = createRng(seed);
  const delta = new Float32Array(m * n);
  fillNormal(delta, rng);
  // Inputs with a few loud directions, as activations have: column j scaled by 10^(−2j/n).
  const x = new Float32Array(tokens * n);
  fillNormal(x, rng);
  for (let t = 0; t < tokens; t++)
    for (let j = 0; j < n; j++) x[t * n + j]! *= 10 ** ((-2 * j) / n) * (j % 7 === 0 ? 8 : 1);
  const X: Matrix = { rows: tokens, cols: n, data: x };
  const gram = matmulPlain(X, X, { transA: true });
  return { delta: { rows: m, cols: n, data: delta } as Matrix, gram, X };
}

function frob(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

for (const [m, n, r] of [
  [24, 40, 5],
  [48, 20, 6],
]) {
  test(`${m}×${n} rank ${r}: B·A equals [ΔW·S]_r·S⁻¹ computed in f64, and beats the plain SVD on the output`, async () => {
    const { delta, gram, X } = problem(m!, n!, 200, m! + n!);
    const spectrum = await outputSpectrum(delta, { gram, tokens: 200 }, { rank: r! });
    const { a, b } = await calibratedFactors(delta, spectrum, r!);
    const ours = matmulPlain({ rows: m!, cols: r!, data: b }, { rows: r!, cols: n!, data: a }).data;

    const G = new MlMatrix(n!, n!);
    for (let i = 0; i < n!; i++)
      for (let j = 0; j < n!; j++) G.set(i, j, gram.data[i * n! + j]! + (i === j ? spectrum.damping : 0));
    const S = new CholeskyDecomposition(G).lowerTriangularMatrix;
    const D = new MlMatrix(m!, n!);
    for (let i = 0; i < m!; i++) for (let j = 0; j < n!; j++) D.set(i, j, delta.data[i * n! + j]!);
    const svd = new SingularValueDecomposition(D.mmul(S), { autoTranspose: true });
    const U = svd.leftSingularVectors.subMatrix(0, m! - 1, 0, r! - 1);
    const V = svd.rightSingularVectors.subMatrix(0, n! - 1, 0, r! - 1);
    const sig = MlMatrix.diag(svd.diagonal.slice(0, r!));
    const want = U.mmul(sig).mmul(V.transpose()).mmul(inverse(S)).to1DArray();
    const diff = frob(ours.map((v, i) => v - want[i]!)) / frob(want);
    assert.ok(diff < 1e-4, `B·A differs from the f64 minimiser by ${diff}`);
    // σ_i² of ΔW·S are the energies.
    for (let i = 0; i < r!; i++)
      assert.ok(Math.abs(spectrum.energies[i]! - svd.diagonal[i]! ** 2) < 1e-4 * svd.diagonal[0]! ** 2);

    // Output error by the token-space residual equals ‖(ΔW − B·A)·Xᵀ‖ formed directly.
    const y = matmulPlain(X, delta, { transB: true });
    const { errSq, normSq } = await outputErrorSquares(X, y, a, b, r!);
    const e = new Float32Array(m! * n!).map((_, i) => delta.data[i]! - ours[i]!);
    const direct = frob(matmulPlain({ rows: m!, cols: n!, data: e }, X, { transB: true }).data);
    assert.ok(Math.abs(Math.sqrt(errSq) - direct) < 1e-4 * direct, `${Math.sqrt(errSq)} vs ${direct}`);
    assert.ok(
      Math.abs(Math.sqrt(normSq) - frob(matmulPlain(delta, X, { transB: true }).data)) < 1e-4 * Math.sqrt(normSq),
    );

    // The plain truncated SVD of ΔW at the same rank: lower weight error, higher output error.
    const plain = new SingularValueDecomposition(D, { autoTranspose: true });
    const pu = plain.leftSingularVectors
      .subMatrix(0, m! - 1, 0, r! - 1)
      .mmul(MlMatrix.diag(plain.diagonal.slice(0, r!)));
    const pa = new Float32Array(
      plain.rightSingularVectors
        .subMatrix(0, n! - 1, 0, r! - 1)
        .transpose()
        .to1DArray(),
    );
    const pb = new Float32Array(pu.to1DArray());
    const plainOut = await outputErrorSquares(X, y, pa, pb, r!);
    assert.ok(errSq < 0.9 * plainOut.errSq, `calibrated ${errSq} vs plain ${plainOut.errSq}`);
    const pw = frob(
      delta.data.map(
        (v, i) => v - matmulPlain({ rows: m!, cols: r!, data: pb }, { rows: r!, cols: n!, data: pa }).data[i]!,
      ),
    );
    assert.ok(frob(e) > pw, 'the plain SVD is the weight-error optimum');
  });
}

// The error-correcting target: inputs X_a of the extracted model, the fine-tune's own X_t. Reference in
// f64 (ml-matrix): M* = (C + δ·ΔW)(G + δI)⁻¹ solved directly, then the rank-r minimiser of
// ‖Y − M·X_a‖² + δ‖M − ΔW‖² as [M*·S]_r·S⁻¹ with S the Cholesky factor of G + δI.
test('error correction: M* and its rank-r factors equal the f64 reduced-rank regression, and fit W_t·X_t better', async () => {
  const [m, n, r, tokens] = [30, 36, 4, 300];
  const { delta, gram, X: xa } = problem(m, n, tokens, 5);
  const rng = createRng(6);
  const wb = new Float32Array(m * n);
  fillNormal(wb, rng);
  const wt = wb.map((v, i) => v + delta.data[i]!);
  // X_t = X_a plus what the earlier layers' adapters missed: a rank-2 map of X_a (as a linear earlier
  // layer's residual would leave) and a little noise no map can correct.
  const p = new Float32Array(2 * n);
  fillNormal(p, rng);
  const q = new Float32Array(2 * n);
  fillNormal(q, rng);
  const map = matmulPlain({ rows: n, cols: 2, data: p }, { rows: 2, cols: n, data: q });
  const noise = new Float32Array(tokens * n);
  fillNormal(noise, rng);
  const moved = matmulPlain(xa, map).data;
  const xt = { rows: tokens, cols: n, data: xa.data.map((v, i) => v + (0.3 / n) * moved[i]! + 0.01 * noise[i]!) };
  const y = matmulPlain(xt, { rows: m, cols: n, data: wt }, { transB: true });
  const yb = matmulPlain(xa, { rows: m, cols: n, data: wb }, { transB: true }).data;
  for (let i = 0; i < y.data.length; i++) y.data[i]! -= yb[i]!;
  const cross = matmulPlain(y, xa, { transA: true });
  const normSq = frob(y.data) ** 2;
  const stats = { gram, tokens };
  const spPlain = await outputSpectrum(delta, stats, { rank: r });
  const damping = spPlain.damping;
  const mStar = await correctingUpdate(delta, cross, stats, damping);

  const G = new MlMatrix(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) G.set(i, j, gram.data[i * n + j]! + (i === j ? damping : 0));
  const R = new MlMatrix(m, n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) R.set(i, j, cross.data[i * n + j]! + damping * delta.data[i * n + j]!);
  const want = R.mmul(inverse(G));
  const wantFlat = want.to1DArray();
  const dm = frob(mStar.data.map((v, i) => v - wantFlat[i]!)) / frob(wantFlat);
  assert.ok(dm < 1e-4, `M* differs from the f64 solve by ${dm}`);

  const sp = await outputSpectrum(mStar, stats, { rank: r });
  const { a, b } = await calibratedFactors(mStar, sp, r);
  const ours = matmulPlain({ rows: m, cols: r, data: b }, { rows: r, cols: n, data: a }).data;
  const S = new CholeskyDecomposition(G).lowerTriangularMatrix;
  const svd = new SingularValueDecomposition(want.mmul(S), { autoTranspose: true });
  const U = svd.leftSingularVectors.subMatrix(0, m - 1, 0, r - 1);
  const V = svd.rightSingularVectors.subMatrix(0, n - 1, 0, r - 1);
  const best = U.mmul(MlMatrix.diag(svd.diagonal.slice(0, r)))
    .mmul(V.transpose())
    .mmul(inverse(S))
    .to1DArray();
  const diff = frob(ours.map((v, i) => v - best[i]!)) / frob(best);
  assert.ok(diff < 1e-3, `B·A differs from the f64 reduced-rank regression by ${diff}`);

  // The error ‖Y − B·A·X_a‖ by the trace formula equals the direct one, and is below that of the
  // factors fitted to ΔW alone (which ignore what the earlier layers left).
  const err = await outputErrorSquares(xa, y, a, b, r);
  assert.ok(Math.abs(err.normSq - normSq) < 1e-5 * normSq);
  const res = y.data.slice();
  const fit = matmulPlain(xa, { rows: m, cols: n, data: Float32Array.from(ours) }, { transB: true }).data;
  for (let i = 0; i < res.length; i++) res[i]! -= fit[i]!;
  assert.ok(
    Math.abs(Math.sqrt(err.errSq) - frob(res)) < 1e-4 * frob(y.data),
    `${Math.sqrt(err.errSq)} vs ${frob(res)}`,
  );
  const plainFit = await calibratedFactors(delta, spPlain, r);
  const plainErr = await outputErrorSquares(xa, y, plainFit.a, plainFit.b, r);
  assert.ok(err.errSq < 0.9 * plainErr.errSq, `corrected ${err.errSq} vs uncorrected ${plainErr.errSq}`);
});

// Factors that reproduce ΔW exactly (B = ΔW, A = I) leave no output error, and none is reported:
// expanding ‖Y‖² − 2⟨C, B·A⟩ + ⟨B·A·G, B·A⟩ in f32 would report ≈ √ε_f32 of ‖Y‖ here.
test('the output error of exact factors is zero to f32 rounding, not a cancellation floor', async () => {
  const [m, n] = [40, 24];
  const { delta, X } = problem(m, n, 300, 9);
  const eye = new Float32Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const { errSq, normSq } = await outputErrorSquares(X, matmulPlain(X, delta, { transB: true }), eye, delta.data, n);
  assert.ok(Math.sqrt(errSq / normSq) < 1e-6, `relative output error ${Math.sqrt(errSq / normSq)}`);
});
