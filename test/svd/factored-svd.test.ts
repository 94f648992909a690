import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Matrix as MlMatrix, SVD } from 'ml-matrix';
import { factoredSvd, gaussianMatrix } from '../../src/svd/index.js';

/** Exact σ of scale·B·A by ml-matrix on the formed product (the thing factoredSvd avoids forming). */
function productSigma(
  b: { rows: number; cols: number; data: Float32Array },
  a: { rows: number; cols: number; data: Float32Array },
  scale: number,
): number[] {
  const rows = Array.from({ length: b.rows }, (_, i) =>
    Array.from({ length: a.cols }, (_, j) => {
      let s = 0;
      for (let k = 0; k < b.cols; k++) s += b.data[i * b.cols + k]! * a.data[k * a.cols + j]!;
      return scale * s;
    }),
  );
  return new SVD(new MlMatrix(rows), {
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
    autoTranspose: true,
  }).diagonal;
}

function orthonormalityError(u: { rows: number; cols: number; data: Float32Array }): number {
  let worst = 0;
  for (let p = 0; p < u.cols; p++)
    for (let q = 0; q < u.cols; q++) {
      let d = 0;
      for (let i = 0; i < u.rows; i++) d += u.data[i * u.cols + p]! * u.data[i * u.cols + q]!;
      worst = Math.max(worst, Math.abs(d - (p === q ? 1 : 0)));
    }
  return worst;
}

it('gives the spectrum and orthonormal directions of s·B·A from the factors, with rank capped by min(r, out, in)', () => {
  for (const [out, r, inF] of [
    [40, 8, 30],
    [10, 64, 256],
    [300, 16, 5],
  ] as const) {
    const b = gaussianMatrix(out, r, out);
    const a = gaussianMatrix(r, inF, inF);
    const { u, s, v } = factoredSvd(b, a, 0.5);
    const k = Math.min(r, out, inF);
    assert.equal(s.length, k);
    assert.deepEqual([u.rows, u.cols, v.rows, v.cols], [out, k, inF, k]);
    const truth = productSigma(b, a, 0.5);
    for (let i = 0; i < k; i++)
      assert.ok(
        Math.abs(s[i]! - truth[i]!) <= 1e-5 * truth[0]!,
        `${out}×${r}×${inF}: σ_${i + 1} ${s[i]} vs ${truth[i]}`,
      );
    assert.ok(
      orthonormalityError(u) < 1e-5 && orthonormalityError(v) < 1e-5,
      `${out}×${r}×${inF}: directions orthonormal`,
    );
  }
});
