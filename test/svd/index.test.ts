import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as svd from '../../src/svd/index.js';

it('the front door exports the agreed API', () => {
  const names = [
    'matmul',
    'matmulPlain',
    'gemmEngine',
    'releaseGemm',
    'truncatedSvd',
    'adaptiveSvd',
    'singularValues',
    'exactSvd',
    'smallSvd',
    'energyCurve',
    'rankAt',
    'stableRank',
    'effectiveRank',
    'nuclearNorm',
    'subspaceSimilarity',
    'projectionNorm',
    'relativeUpdate',
    'amplificationFactor',
    'randomOrthonormal',
    'randomOrthonormal64',
    'createRng',
    'gaussianMatrix',
    'orthonormalizeRows',
    'householderQr',
    'smallSvdLeft',
    'rightVectors',
    'frobeniusSquared',
    'transpose',
    'zeros',
    'matrix',
  ];
  for (const name of names) assert.equal(typeof (svd as Record<string, unknown>)[name], 'function', name);
});
