import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { idleScratchValues, returnScratch64, takeScratch64 } from '../../src/svd/scratch.js';

describe('f64 scratch pool', () => {
  it('hands a returned array to the next request it fits, as a view of the requested length', () => {
    const a = takeScratch64(1000);
    assert.equal(a.length, 1000);
    a.fill(3);
    returnScratch64(a.subarray(10, 20));
    assert.equal(idleScratchValues(), 1000);
    const b = takeScratch64(600);
    assert.equal(b.length, 600);
    assert.equal(b.buffer, a.buffer);
    assert.equal(idleScratchValues(), 0);
    returnScratch64(b);
  });

  it('takes the smallest idle array that fits and drops those too small for a request', () => {
    const [small, mid, big] = [takeScratch64(100), takeScratch64(500), takeScratch64(2000)];
    returnScratch64(big, small, mid);
    assert.equal(takeScratch64(400).buffer, mid.buffer);
    const fresh = takeScratch64(3000);
    assert.ok(fresh.buffer !== big.buffer && fresh.buffer !== small.buffer);
    // Nothing idle was large enough: keeping the smaller ones would only add to the peak.
    assert.equal(idleScratchValues(), 0);
  });

  it('lists an array returned twice once, so two callers never share it', () => {
    const a = takeScratch64(50);
    returnScratch64(a, a);
    returnScratch64(a);
    assert.equal(idleScratchValues(), 50);
    const first = takeScratch64(50);
    assert.notEqual(takeScratch64(50).buffer, first.buffer);
  });

  it('drops idle arrays two seconds after the last return', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      returnScratch64(takeScratch64(70));
      mock.timers.tick(1999);
      assert.equal(idleScratchValues(), 70);
      returnScratch64(takeScratch64(10));
      mock.timers.tick(1999);
      assert.equal(idleScratchValues(), 70);
      mock.timers.tick(1);
      assert.equal(idleScratchValues(), 0);
    } finally {
      mock.timers.reset();
    }
  });
});
