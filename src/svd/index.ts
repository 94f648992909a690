/** The SVD engine: matrices, GEMM, QR, randomized / adaptive / small SVD, spectrum metrics. */

export { type AdaptiveSvd, type AdaptiveSvdOptions, adaptiveSvd } from './adaptive-svd.js';
export {
  completeCostSeconds,
  exactIsCheaper,
  exactSvd,
  randomizedCostSeconds,
  type SingularValues,
  singularValues,
} from './exact-svd.js';
export { type FactoredSvd, factoredSvd } from './factored-svd.js';
export {
  type GemmEngineInfo,
  gemmEngine,
  type MatmulOptions,
  matmul,
  matmulPlain,
  releaseGemm,
  residualSquares,
} from './gemm.js';
export {
  frobeniusSquared,
  leadingColumns,
  type Matrix,
  type Matrix64,
  matrix,
  transpose,
  zeros,
  zeros64,
} from './matrix.js';
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
export { householderQr, orthonormalizeRows, type ThinQr } from './qr.js';
export { createRng, fillNormal, gaussianMatrix, type Rng, randomOrthonormal, randomOrthonormal64 } from './random.js';
export { type Svd, type TruncatedSvdOptions, truncatedSvd } from './randomized-svd.js';
export { rightVectors, type Svd64, smallSvd, smallSvdLeft } from './small-svd.js';
export {
  boundsWithin,
  type EnergyEvidence,
  EPS32,
  EPS64,
  headEnergyBounds,
  type RankInterval,
  rankInterval,
  ritzBounds,
  roundingAllowance,
  type ValueBounds,
} from './spectrum-bounds.js';
