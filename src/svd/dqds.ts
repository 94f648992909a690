/**
 * The dqds algorithm (Fernando & Parlett 1994; Parlett & Marques 2000) on a qd array, ported
 * from LAPACK's dlasq2–dlasq6 with their shift strategy, flipping, splitting and deflation: the
 * eigenvalues, to high relative accuracy, of the positive definite tridiagonal LU, L unit lower
 * bidiagonal with sub-diagonal e and U upper bidiagonal with diagonal q and unit
 * super-diagonal. For an upper bidiagonal B, q = diag(B)² and e = superdiag(B)² make LU similar
 * to BᵀB. A dqds transform maps the array to that of UL − τI in one pass, τ just short of the
 * smallest eigenvalue; the last e of a block then soon becomes negligible, which deflates one
 * eigenvalue (plus the shifts so far).
 *
 * The array keeps LAPACK's layout and 1-based indices, so that each line can be checked against
 * the reference: for entry i, z[4i − 3] = qᵢ, z[4i − 1] = eᵢ (the "ping" side) and z[4i − 2],
 * z[4i] the same on the "pong" side; each transform reads one side and writes the other, as
 * pp = 0 or 1 says. z[0] is unused.
 */
import { DeltarankError } from '../errors.js';
import { turnDue } from '../yield.js';

/** LAPACK's dlamch('Precision') and dlamch('Safe minimum') in f64. */
const EPS = 2 ** -52;
const SAFE_MIN = 2 ** -1022;
/** Negligibility thresholds of dlasq2/dlasq3: an e below TOL2 times its neighbouring q splits or deflates. */
const TOL = 100 * EPS;
const TOL2 = TOL * TOL;
/** Reverse a block when its first q is this much smaller than its last: dqds converges at the bottom end. */
const CBIAS = 1.5;
/** Constants of dlasq4's shift estimates. */
const CNST1 = 0.563;
const CNST2 = 1.01;
const CNST3 = 1.05;
const THIRD = 0.333;

/**
 * dlasq2: the eigenvalues of the qd array z (n ≥ 3, layout above, every entry ≥ 0, z[4n − 1] = 0)
 * into z[4i − 3], i = 1 … n, in no particular order. The blocks that splits leave are solved from
 * the bottom up (top index i0, bottom n0), each by shifted dqds transforms until it is used up.
 * A generator kernel: it yields when a turn of the event loop is due (src/yield.ts), at most
 * once per transform.
 */
export function* qdEigenvaluesSteps(z: Float64Array, n: number): Generator<void, void, undefined> {
  let sumE = 0;
  for (let i = 1; i < n; i++) sumE += z[4 * i - 1]!;
  // Every e is 0 (B's underflowed when squared): the q's are the eigenvalues.
  if (sumE === 0) return;
  const qd = new Dqds(z);
  if (CBIAS * z[1]! < z[4 * n - 3]!) qd.flip(1, n);
  // Twice (ping to pong and back), Li's test from the bottom up, then an unshifted dqd transform:
  // an e negligible beside the d before it becomes −0, a split with σ = 0.
  qd.pp = 0;
  for (let pass = 0; pass < 2; pass++) {
    const pp = qd.pp;
    let d = z[4 * n + pp - 3]!;
    for (let i4 = 4 * (n - 1) + pp; i4 >= 4 + pp; i4 -= 4) {
      if (z[i4 - 1]! <= TOL2 * d) {
        z[i4 - 1] = -0;
        d = z[i4 - 3]!;
      } else d = z[i4 - 3]! * (d / (d + z[i4 - 1]!));
    }
    d = z[pp + 1]!;
    for (let i4 = 4 + pp; i4 <= 4 * (n - 1) + pp; i4 += 4) {
      z[i4 - 2 * pp - 2] = d + z[i4 - 1]!;
      if (z[i4 - 1]! <= TOL2 * d) {
        z[i4 - 1] = -0;
        z[i4 - 2 * pp - 2] = d;
        z[i4 - 2 * pp] = 0;
        d = z[i4 + 1]!;
      } else if (SAFE_MIN * z[i4 + 1]! < z[i4 - 2 * pp - 2]! && SAFE_MIN * z[i4 - 2 * pp - 2]! < z[i4 + 1]!) {
        const t = z[i4 + 1]! / z[i4 - 2 * pp - 2]!;
        z[i4 - 2 * pp] = z[i4 - 1]! * t;
        d *= t;
      } else {
        z[i4 - 2 * pp] = z[i4 + 1]! * (z[i4 - 1]! / z[i4 - 2 * pp - 2]!);
        d = z[i4 + 1]! * (d / z[i4 - 2 * pp - 2]!);
      }
    }
    z[4 * n - pp - 2] = d;
    qd.pp = 1 - pp;
  }
  qd.n0 = n;
  for (let block = 0; qd.n0 >= 1; block++) {
    // Each pass of this loop finishes a block: more than n of them means a split went wrong.
    if (block > n) throw new DeltarankError(`bidiagonalSingularValues: dqds made more than ${n} blocks`);
    let n0 = qd.n0;
    // A block split off from the rest holds −σ (the shift it had then) in its last e.
    qd.desig = 0;
    qd.sigma = n0 === n ? 0 : -z[4 * n0 - 1]!;
    if (qd.sigma < 0) throw new DeltarankError('bidiagonalSingularValues: dqds marked a split with a positive value');
    // The block's top i0 (below the nearest e ≤ 0 above n0), its largest q + e, and a
    // Gershgorin-type lower bound of its eigenvalues while the q's dominate the e's.
    let emax = 0;
    let qmin = z[4 * n0 - 3]!;
    qd.qmax = qmin;
    let i4 = 4 * n0;
    for (; i4 >= 8; i4 -= 4) {
      if (z[i4 - 5]! <= 0) break;
      if (qmin >= 4 * emax) {
        qmin = Math.min(qmin, z[i4 - 3]!);
        emax = Math.max(emax, z[i4 - 5]!);
      }
      qd.qmax = Math.max(qd.qmax, z[i4 - 7]! + z[i4 - 5]!);
    }
    let i0 = i4 / 4;
    qd.pp = 0;
    if (n0 - i0 > 1) {
      // Reverse the block when its smallest d (of an unshifted dqd) lies in its top third and
      // below half its last q: dqds finds the smallest value fastest at the bottom.
      let dee = z[4 * i0 - 3]!;
      let deemin = dee;
      let kmin = i0;
      for (let j4 = 4 * i0 + 1; j4 <= 4 * n0 - 3; j4 += 4) {
        dee = z[j4]! * (dee / (dee + z[j4 - 2]!));
        if (dee <= deemin) {
          deemin = dee;
          kmin = (j4 + 3) / 4;
        }
      }
      if ((kmin - i0) * 2 < n0 - kmin && deemin <= 0.5 * z[4 * n0 - 3]!) {
        qd.flip(i0, n0);
        // LAPACK's mark of a block just flipped, read by the step (which goes on with pp = 0).
        qd.pp = 2;
      }
    }
    // −(the initial shift): the Gershgorin bound, or 0.
    qd.dmin = -Math.max(0, qmin - 2 * Math.sqrt(qmin) * Math.sqrt(emax));
    const maxSteps = 100 * (n0 - i0 + 1);
    let steps = 0;
    for (; i0 <= qd.n0; steps++) {
      if (steps >= maxSteps)
        throw new DeltarankError(`bidiagonalSingularValues: dqds did not converge (${n}×${n}, block ${i0}…${qd.n0})`);
      if (turnDue()) yield;
      qd.step(i0);
      qd.pp = 1 - qd.pp;
      n0 = qd.n0;
      // When the block's smallest e is negligible, split it at every negligible e: the block
      // below the last split goes on, the ones above come back to the outer loop with −σ.
      if (qd.pp === 0 && n0 - i0 >= 3 && (z[4 * n0]! <= TOL2 * qd.qmax || z[4 * n0 - 1]! <= TOL2 * qd.sigma)) {
        let split = i0 - 1;
        qd.qmax = z[4 * i0 - 3]!;
        let emin = z[4 * i0 - 1]!;
        let oldEmin = z[4 * i0]!;
        for (let j4 = 4 * i0; j4 <= 4 * (n0 - 3); j4 += 4) {
          if (z[j4]! <= TOL2 * z[j4 - 3]! || z[j4 - 1]! <= TOL2 * qd.sigma) {
            z[j4 - 1] = -qd.sigma;
            split = j4 / 4;
            qd.qmax = 0;
            emin = z[j4 + 3]!;
            oldEmin = z[j4 + 4]!;
          } else {
            qd.qmax = Math.max(qd.qmax, z[j4 + 1]!);
            emin = Math.min(emin, z[j4 - 1]!);
            oldEmin = Math.min(oldEmin, z[j4]!);
          }
        }
        z[4 * n0 - 1] = emin;
        z[4 * n0] = oldEmin;
        i0 = split + 1;
      }
    }
  }
}

/**
 * The state that LAPACK's dlasq3 passes between its calls: the block's bottom n0, the side pp,
 * the accumulated shift σ (with desig, its compensation), the last transform's d's and minima
 * (which choose the next shift), the shift τ and its kind (ttype, g).
 */
class Dqds {
  n0 = 0;
  pp = 0;
  sigma = 0;
  desig = 0;
  qmax = 0;
  tau = 0;
  ttype = 0;
  g = 0;
  dmin = 0;
  dmin1 = 0;
  dmin2 = 0;
  dn = 0;
  dn1 = 0;
  dn2 = 0;

  constructor(readonly z: Float64Array) {}

  /** Reverse the block i0 … n0, both sides (dlasq2, dlasq3). */
  flip(i0: number, n0: number): void {
    const z = this.z;
    const ipn4 = 4 * (i0 + n0);
    for (let j4 = 4 * i0; j4 <= 2 * (i0 + n0 - 1); j4 += 4) {
      swap(z, j4 - 3, ipn4 - j4 - 3);
      swap(z, j4 - 2, ipn4 - j4 - 2);
      swap(z, j4 - 1, ipn4 - j4 - 5);
      swap(z, j4, ipn4 - j4 - 4);
    }
  }

  /**
   * dlasq3: deflate what has converged at the bottom of the block i0 … n0 (one value, or a 2×2
   * solved directly), then take one dqds transform with a good shift, retried with a smaller
   * one, or none, when it fails (a negative d: the shift passed the smallest eigenvalue).
   */
  step(i0: number): void {
    const z = this.z;
    const n0in = this.n0;
    let n0 = n0in;
    for (;;) {
      if (n0 < i0) {
        this.n0 = n0;
        return;
      }
      const nn = 4 * n0 + this.pp;
      if (n0 !== i0 + 1) {
        const pp = this.pp;
        if (n0 === i0 || !(z[nn - 5]! > TOL2 * (this.sigma + z[nn - 3]!) && z[nn - 2 * pp - 4]! > TOL2 * z[nn - 7]!)) {
          // The last e is negligible: its q is an eigenvalue.
          z[4 * n0 - 3] = z[4 * n0 + pp - 3]! + this.sigma;
          n0--;
          continue;
        }
        if (z[nn - 9]! > TOL2 * this.sigma && z[nn - 2 * pp - 8]! > TOL2 * z[nn - 11]!) break;
      }
      // The last but one e is negligible: the trailing 2×2's eigenvalues, stably.
      if (z[nn - 3]! > z[nn - 7]!) {
        const s = z[nn - 3]!;
        z[nn - 3] = z[nn - 7]!;
        z[nn - 7] = s;
      }
      let t = 0.5 * (z[nn - 7]! - z[nn - 3]! + z[nn - 5]!);
      if (z[nn - 5]! > z[nn - 3]! * TOL2 && t !== 0) {
        let s = z[nn - 3]! * (z[nn - 5]! / t);
        if (s <= t) s = z[nn - 3]! * (z[nn - 5]! / (t * (1 + Math.sqrt(1 + s / t))));
        else s = z[nn - 3]! * (z[nn - 5]! / (t + Math.sqrt(t) * Math.sqrt(t + s)));
        t = z[nn - 7]! + (s + z[nn - 5]!);
        z[nn - 3] = z[nn - 3]! * (z[nn - 7]! / t);
        z[nn - 7] = t;
      }
      z[4 * n0 - 7] = z[nn - 7]! + this.sigma;
      z[4 * n0 - 3] = z[nn - 3]! + this.sigma;
      n0 -= 2;
    }
    this.n0 = n0;
    if (this.pp === 2) this.pp = 0;
    const pp = this.pp;
    // After a failed shift or a deflation, reverse the block if its top q is much the smaller.
    if ((this.dmin <= 0 || n0 < n0in) && CBIAS * z[4 * i0 + pp - 3]! < z[4 * n0 + pp - 3]!) {
      this.flip(i0, n0);
      if (n0 - i0 <= 4) {
        z[4 * n0 + pp - 1] = z[4 * i0 + pp - 1]!;
        z[4 * n0 - pp] = z[4 * i0 - pp]!;
      }
      this.dmin2 = Math.min(this.dmin2, z[4 * n0 + pp - 1]!);
      z[4 * n0 + pp - 1] = Math.min(z[4 * n0 + pp - 1]!, z[4 * i0 + pp - 1]!, z[4 * i0 + pp + 3]!);
      z[4 * n0 - pp] = Math.min(z[4 * n0 - pp]!, z[4 * i0 - pp]!, z[4 * i0 - pp + 4]!);
      this.qmax = Math.max(this.qmax, z[4 * i0 + pp - 3]!, z[4 * i0 + pp + 1]!);
      this.dmin = -0;
    }
    this.chooseShift(i0, n0in);
    let fallBack = false;
    for (;;) {
      this.dqds(i0);
      if (this.dmin >= 0 && this.dmin1 >= 0) break;
      if (
        this.dmin < 0 &&
        this.dmin1 > 0 &&
        z[4 * (n0 - 1) - pp]! < TOL * (this.sigma + this.dn1) &&
        Math.abs(this.dn) < TOL * this.sigma
      ) {
        // Only the last d went negative, and it and the e before it are negligible beside σ:
        // converged, the negative d is 0.
        z[4 * (n0 - 1) - pp + 2] = 0;
        this.dmin = 0;
        break;
      }
      if (this.dmin < 0) {
        // The shift passed the smallest eigenvalue: retry with τ lowered by the overshoot when
        // only the last d went negative, else with a quarter of τ; after many failures, with 0.
        if (this.ttype < -22) this.tau = 0;
        else if (this.dmin1 > 0) {
          this.tau = (this.tau + this.dmin) * (1 - 2 * EPS);
          this.ttype -= 11;
        } else {
          this.tau *= 0.25;
          this.ttype -= 12;
        }
        continue;
      }
      // A NaN (an overflow or 0/0 in the transform): retry unshifted, then with the guarded dqd.
      if (Number.isNaN(this.dmin) && this.tau !== 0) {
        this.tau = 0;
        continue;
      }
      fallBack = true;
      break;
    }
    if (fallBack) {
      this.dqd(i0);
      this.tau = 0;
    }
    // σ += τ, compensated.
    let t: number;
    if (this.tau < this.sigma) {
      this.desig += this.tau;
      t = this.sigma + this.desig;
      this.desig -= t - this.sigma;
    } else {
      t = this.sigma + this.tau;
      this.desig = this.sigma - (t - this.tau) + this.desig;
    }
    this.sigma = t;
  }

  /**
   * dlasq4's estimate of the norm squared's contribution from higher up the block: a2 plus the
   * terms b2·∏ z[i4]/z[i4 − 2] for i4 = from, from − 4, … down to the block's top, until they are
   * negligible, times CNST3; null where a ratio passes 1 (then there is no estimate).
   */
  ratioSum(from: number, i0: number, a2: number, b2: number): number | null {
    const { z, pp } = this;
    for (let i4 = from; i4 >= 4 * i0 - 1 + pp && b2 !== 0; i4 -= 4) {
      const b1 = b2;
      if (z[i4]! > z[i4 - 2]!) return null;
      b2 *= z[i4]! / z[i4 - 2]!;
      a2 += b2;
      if (100 * Math.max(b2, b1) < a2 || CNST1 < a2) break;
    }
    return a2 * CNST3;
  }

  /**
   * dlasq4: the shift τ for the next transform, from the last one's d's and minima: estimates of
   * the smallest eigenvalue from the bottom of the block (Parlett & Marques 2000), each kind
   * numbered by ttype as in LAPACK. Some estimates give up early and keep the last τ.
   */
  chooseShift(i0: number, n0in: number): void {
    const { z, pp, n0, dmin, dmin1, dmin2, dn, dn1, dn2 } = this;
    if (dmin <= 0) {
      this.tau = -dmin;
      this.ttype = -1;
      return;
    }
    const nn = 4 * n0 + pp;
    let s: number;
    if (n0in === n0) {
      // No deflation last time.
      if (dmin === dn || dmin === dn1) {
        const b1 = Math.sqrt(z[nn - 3]!) * Math.sqrt(z[nn - 5]!);
        let b2 = Math.sqrt(z[nn - 7]!) * Math.sqrt(z[nn - 9]!);
        let a2 = z[nn - 7]! + z[nn - 5]!;
        if (dmin === dn && dmin1 === dn1) {
          // Cases 2 and 3.
          const gap2 = dmin2 - a2 - dmin2 * 0.25;
          const gap1 = gap2 > 0 && gap2 > b2 ? a2 - dn - (b2 / gap2) * b2 : a2 - dn - (b1 + b2);
          if (gap1 > 0 && gap1 > b1) {
            s = Math.max(dn - (b1 / gap1) * b1, 0.5 * dmin);
            this.ttype = -2;
          } else {
            s = 0;
            if (dn > b1) s = dn - b1;
            if (a2 > b1 + b2) s = Math.min(s, a2 - (b1 + b2));
            s = Math.max(s, THIRD * dmin);
            this.ttype = -3;
          }
        } else {
          // Case 4.
          this.ttype = -4;
          s = 0.25 * dmin;
          let gam: number;
          let np: number;
          if (dmin === dn) {
            gam = dn;
            a2 = 0;
            if (z[nn - 5]! > z[nn - 7]!) return;
            b2 = z[nn - 5]! / z[nn - 7]!;
            np = nn - 9;
          } else {
            np = nn - 2 * pp;
            gam = dn1;
            if (z[np - 4]! > z[np - 2]!) return;
            a2 = z[np - 4]! / z[np - 2]!;
            if (z[nn - 9]! > z[nn - 11]!) return;
            b2 = z[nn - 9]! / z[nn - 11]!;
            np = nn - 13;
          }
          // Approximate the contribution to the norm squared from i < nn − 1.
          const sum = this.ratioSum(np, i0, a2 + b2, b2);
          if (sum === null) return;
          a2 = sum;
          // Rayleigh quotient residual bound.
          if (a2 < CNST1) s = (gam * (1 - Math.sqrt(a2))) / (1 + a2);
        }
      } else if (dmin === dn2) {
        // Case 5.
        this.ttype = -5;
        s = 0.25 * dmin;
        const np = nn - 2 * pp;
        const b1 = z[np - 2]!;
        let b2 = z[np - 6]!;
        if (z[np - 8]! > b2 || z[np - 4]! > b1) return;
        let a2 = (z[np - 8]! / b2) * (1 + z[np - 4]! / b1);
        if (n0 - i0 > 2) {
          b2 = z[nn - 13]! / z[nn - 15]!;
          const sum = this.ratioSum(nn - 17, i0, a2 + b2, b2);
          if (sum === null) return;
          a2 = sum;
        }
        if (a2 < CNST1) s = (dn2 * (1 - Math.sqrt(a2))) / (1 + a2);
      } else {
        // Case 6: no information to guide us; repeated, the fraction of dmin grows.
        if (this.ttype === -6) this.g += THIRD * (1 - this.g);
        else if (this.ttype === -18) this.g = 0.25 * THIRD;
        else this.g = 0.25;
        s = this.g * dmin;
        this.ttype = -6;
      }
    } else if (n0in === n0 + 1) {
      // One eigenvalue just deflated: use dmin1, dn1.
      if (dmin1 === dn1 && dmin2 === dn2) {
        // Cases 7 and 8.
        this.ttype = -7;
        s = THIRD * dmin1;
        if (z[nn - 5]! > z[nn - 7]!) return;
        let b1 = z[nn - 5]! / z[nn - 7]!;
        let b2 = b1;
        if (b2 !== 0) {
          for (let i4 = 4 * n0 - 9 + pp; i4 >= 4 * i0 - 1 + pp; i4 -= 4) {
            const a2 = b1;
            if (z[i4]! > z[i4 - 2]!) return;
            b1 *= z[i4]! / z[i4 - 2]!;
            b2 += b1;
            if (100 * Math.max(b1, a2) < b2) break;
          }
        }
        b2 = Math.sqrt(CNST3 * b2);
        const a2 = dmin1 / (1 + b2 ** 2);
        const gap2 = 0.5 * dmin2 - a2;
        if (gap2 > 0 && gap2 > b2 * a2) s = Math.max(s, a2 * (1 - CNST2 * a2 * (b2 / gap2) * b2));
        else {
          s = Math.max(s, a2 * (1 - CNST2 * b2));
          this.ttype = -8;
        }
      } else {
        // Case 9.
        s = dmin1 === dn1 ? 0.5 * dmin1 : 0.25 * dmin1;
        this.ttype = -9;
      }
    } else if (n0in === n0 + 2) {
      // Two eigenvalues deflated: use dmin2, dn2.
      if (dmin2 === dn2 && 2 * z[nn - 5]! < z[nn - 7]!) {
        // Case 10.
        this.ttype = -10;
        s = THIRD * dmin2;
        if (z[nn - 5]! > z[nn - 7]!) return;
        let b1 = z[nn - 5]! / z[nn - 7]!;
        let b2 = b1;
        if (b2 !== 0) {
          for (let i4 = 4 * n0 - 9 + pp; i4 >= 4 * i0 - 1 + pp; i4 -= 4) {
            if (z[i4]! > z[i4 - 2]!) return;
            b1 *= z[i4]! / z[i4 - 2]!;
            b2 += b1;
            if (100 * b1 < b2) break;
          }
        }
        b2 = Math.sqrt(CNST3 * b2);
        const a2 = dmin2 / (1 + b2 ** 2);
        const gap2 = z[nn - 7]! + z[nn - 9]! - Math.sqrt(z[nn - 11]!) * Math.sqrt(z[nn - 9]!) - a2;
        if (gap2 > 0 && gap2 > b2 * a2) s = Math.max(s, a2 * (1 - CNST2 * a2 * (b2 / gap2) * b2));
        else s = Math.max(s, a2 * (1 - CNST2 * b2));
      } else {
        // Case 11.
        s = 0.25 * dmin2;
        this.ttype = -11;
      }
    } else {
      // Case 12: more than two deflated; no shift.
      s = 0;
      this.ttype = -12;
    }
    this.tau = s;
  }

  /**
   * dlasq5: one dqds transform of the block i0 … n0 (≥ 3 entries) with shift τ, from side pp to
   * the other, keeping the d's and minima of its last three steps for the next shift. The loop
   * checks nothing: a failure (a negative d, or a NaN from 0/0 or ∞ − ∞ after a zero pivot)
   * shows in dmin afterwards.
   */
  dqds(i0: number): void {
    const { z, pp, n0, sigma } = this;
    const dthresh = EPS * (sigma + this.tau);
    // A shift below the rounding of σ changes nothing but the rounding.
    if (this.tau < dthresh * 0.5) this.tau = 0;
    const tau = this.tau;
    // Unshifted, a d below the rounding of σ is flushed to 0 (it is noise), which bounds the
    // transforms in all to a linear number.
    const floor = tau === 0 ? dthresh : Number.NEGATIVE_INFINITY;
    let emin = z[4 * i0 + pp + 1]!;
    let d = z[4 * i0 + pp - 3]! - tau;
    let dmin = d;
    // Step j reads e_j at src and q_{j+1} at src + 2, writes q̂_j at dst − 2 and ê_j at dst.
    for (let j4 = 4 * i0; j4 <= 4 * (n0 - 3); j4 += 4) {
      const src = j4 - 1 + pp;
      const dst = j4 - pp;
      const q = d + z[src]!;
      z[dst - 2] = q;
      const t = z[src + 2]! / q;
      d = d * t - tau;
      if (d < floor) d = 0;
      dmin = Math.min(dmin, d);
      const e = z[src]! * t;
      z[dst] = e;
      emin = Math.min(e, emin);
    }
    // The last two steps apart: their d's choose the next shift.
    this.dn2 = d;
    this.dmin2 = dmin;
    let dst = 4 * (n0 - 2) - pp;
    let src = dst + 2 * pp - 1;
    z[dst - 2] = d + z[src]!;
    z[dst] = z[src + 2]! * (z[src]! / z[dst - 2]!);
    this.dn1 = z[src + 2]! * (d / z[dst - 2]!) - tau;
    dmin = Math.min(dmin, this.dn1);
    this.dmin1 = dmin;
    dst += 4;
    src += 4;
    z[dst - 2] = this.dn1 + z[src]!;
    z[dst] = z[src + 2]! * (z[src]! / z[dst - 2]!);
    this.dn = z[src + 2]! * (this.dn1 / z[dst - 2]!) - tau;
    this.dmin = Math.min(dmin, this.dn);
    z[dst + 2] = this.dn;
    z[4 * n0 - pp] = emin;
  }

  /**
   * dlasq6: one unshifted dqd transform of the block i0 … n0 (≥ 3 entries), guarded against
   * underflow and overflow (the fallback when the shifted transform gave NaN).
   */
  dqd(i0: number): void {
    const { z, pp, n0 } = this;
    let emin = z[4 * i0 + pp + 1]!;
    let d = z[4 * i0 + pp - 3]!;
    let dmin = d;
    for (let j4 = 4 * i0; j4 <= 4 * (n0 - 1); j4 += 4) {
      if (j4 === 4 * (n0 - 2)) {
        this.dn2 = d;
        this.dmin2 = dmin;
      } else if (j4 === 4 * (n0 - 1)) {
        this.dn1 = d;
        this.dmin1 = dmin;
      }
      const src = j4 - 1 + pp;
      const dst = j4 - pp;
      const q = d + z[src]!;
      z[dst - 2] = q;
      if (q === 0) {
        z[dst] = 0;
        d = z[src + 2]!;
        dmin = d;
        emin = 0;
      } else if (SAFE_MIN * z[src + 2]! < q && SAFE_MIN * q < z[src + 2]!) {
        const t = z[src + 2]! / q;
        z[dst] = z[src]! * t;
        d *= t;
      } else {
        z[dst] = z[src + 2]! * (z[src]! / q);
        d = z[src + 2]! * (d / q);
      }
      dmin = Math.min(dmin, d);
      // The last two ê's are left out of emin, as in dlasq5.
      if (j4 <= 4 * (n0 - 3)) emin = Math.min(emin, z[dst]!);
    }
    this.dn = d;
    this.dmin = dmin;
    z[4 * n0 - pp - 2] = d;
    z[4 * n0 - pp] = emin;
  }
}

function swap(z: Float64Array, a: number, b: number): void {
  const t = z[a]!;
  z[a] = z[b]!;
  z[b] = t;
}
