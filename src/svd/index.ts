/** The SVD engine: matrices, GEMM, QR, randomized / adaptive / small SVD, spectrum metrics. */
export { frobeniusSquared, leadingColumns, matrix, transpose, zeros, zeros64, type Matrix, type Matrix64 } from './matrix.js';
export { gemmEngine, matmul, matmulPlain, releaseGemm, residualSquares, type GemmEngineInfo, type MatmulOptions } from './gemm.js';
export { householderQr, orthonormalizeRows, type ThinQr } from './qr.js';
export { createRng, fillNormal, gaussianMatrix, randomOrthonormal, randomOrthonormal64, type Rng } from './random.js';
export { rightVectors, smallSvd, smallSvdLeft, type Svd64 } from './small-svd.js';
export { singularValues, exactSvd, exactIsCheaper, completeCostSeconds, randomizedCostSeconds, type SingularValues } from './exact-svd.js';
export {
  boundsWithin,
  EPS32,
  EPS64,
  headEnergyBounds,
  rankInterval,
  ritzBounds,
  roundingAllowance,
  type EnergyEvidence,
  type RankInterval,
  type ValueBounds,
} from './spectrum-bounds.js';
export { truncatedSvd, type Svd, type TruncatedSvdOptions } from './randomized-svd.js';
export { factoredSvd, type FactoredSvd } from './factored-svd.js';
export { adaptiveSvd, type AdaptiveSvd, type AdaptiveSvdOptions } from './adaptive-svd.js';
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
