/** The SVD engine: matrices, GEMM, QR, Cholesky, randomized / adaptive / small SVD, spectrum metrics. */

export { adaptiveSvd } from './adaptive-svd.js';
export { choleskyLower, solveCholesky } from './cholesky.js';
export { bidiagonalRouteBytes } from './exact-bidiagonal.js';
export { completeCostSeconds, exactIsCheaper, exactSvd, randomizedCostSeconds, singularValues } from './exact-svd.js';
export { type FactoredSvd, factoredSvd } from './factored-svd.js';
export { gemmEngine, matmul, matmulPlain, residualSquares, shareCores } from './gemm.js';
export { frobeniusSquared, leadingColumns, type Matrix, type Matrix64 } from './matrix.js';
export {
  amplificationFactor,
  effectiveRank,
  energyCurve,
  nuclearNorm,
  projectionNorm,
  rankAt,
  relativeUpdate,
  stableRank,
  subspaceSimilarity,
} from './metrics.js';
export { householderQr } from './qr.js';
export { createRng, fillNormal, gaussianMatrix, type Rng, randomOrthonormal } from './random.js';
export { type Svd, truncatedSvd } from './randomized-svd.js';
export { type Svd64, smallSvd } from './small-svd.js';
export {
  boundsWithin,
  type EnergyEvidence,
  EPS32,
  EPS64,
  rankInterval,
  ritzBounds,
  roundingAllowance,
  type ValueBounds,
} from './spectrum-bounds.js';
export { startWorker } from './worker.js';
