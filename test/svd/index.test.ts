import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as svd from '../../src/svd/index.js';

// What other layers take from svd; helpers only svd itself and its tests use stay off the front door.
it('the front door exports the agreed API', () => {
  const names = [
    'matmul',
    'matmulPlain',
    'gemmEngine',
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
    'createRng',
    'gaussianMatrix',
    'householderQr',
    'frobeniusSquared',
  ];
  for (const name of names) assert.equal(typeof (svd as Record<string, unknown>)[name], 'function', name);
});
