/**
 * Second stage of the two-stage symmetric reduction: a band matrix to tridiagonal form by
 * bulge chasing with Householder reflectors (Haidar, Ltaief & Dongarra 2011; the kernels
 * of LAPACK's dsytrd_sb2st). Sweep j annihilates column j below the sub-diagonal; the
 * bulge each reflector creates below the band is chased down in blocks of b rows. Only
 * the first column of each bulge is annihilated at once: the rest is left for sweep j + 1,
 * whose blocks cover it exactly, which halves the work of a full bulge annihilation.
 *
 * Sweeps pipeline: step s of sweep j (one b-row block) touches only rows and columns that
 * steps s − 1 … s + 2 of sweep j − 1 touch, so once sweep j − 1 has finished step s + 2,
 * sweep j may take step s (Haidar et al. 2011, §4). Worker threads take sweeps round-robin
 * over a shared band and wait on each other's step counters.
 */
import { availableParallelism } from 'node:os';
import { DeltarankError } from '../errors.js';
import { finishCooperatively, finishNow, turnDue } from '../yield.js';
import { startWorker } from './worker.js';

/**
 * Storage of a symmetric matrix with lower bandwidth up to `width`: entry (i, c), for
 * i − width ≤ c ≤ i, sits at `data[i·width + width + c]` (row i occupies width + 1
 * consecutive slots, columns ascending). A band of bandwidth b is chased in a storage
 * of width 2b, room for the bulges.
 */
export interface LowerBand {
  n: number;
  width: number;
  data: Float64Array;
}

/** Steps sweep j − 1 must be ahead before sweep j takes a step (see the module comment). */
const PIPELINE_LAG = 3;
/** A sweep's step counter once the sweep is complete. */
const SWEEP_DONE = 0x3fffffff;
/** Below this order the worker start-up (tens of ms) costs more than the other cores save (measured on 2 cores: 1024 slower, 2048 ≈ 15 % faster). */
export const PARALLEL_MIN_N = 1536;
/** Threads beyond this add little: each sweep trails the previous one. */
const MAX_THREADS = 4;
/**
 * Fewest cores on which the chase is spread by default. On 2 cores shared with other work
 * the pipeline stalls whenever either thread is descheduled: the chase of a 4096² band took
 * 3.5 s on 2 threads against 1.8 s on one (load average 4).
 */
const PARALLEL_MIN_CORES = 4;

function defaultThreads(): number {
  const cores = availableParallelism();
  return cores >= PARALLEL_MIN_CORES ? Math.min(cores, MAX_THREADS) : 1;
}

/** An empty (zero) lower-band storage for an n×n matrix; `shared` puts it in a SharedArrayBuffer, which the parallel chase needs. */
export function lowerBand(n: number, width: number, { shared = false }: { shared?: boolean } = {}): LowerBand {
  const count = n * (width + 1);
  return { n, width, data: shared ? new Float64Array(new SharedArrayBuffer(count * 8)) : new Float64Array(count) };
}

/**
 * Reduce the symmetric matrix of bandwidth b held in `band` (width ≥ 2b; overwritten) to
 * tridiagonal T with the same eigenvalues, on this thread: returns T's diagonal [n] and
 * sub-diagonal [n − 1]. Cost ≈ 6·n²·b flops, in cache-sized b×b blocks.
 * @example const { d, e } = bandToTridiagonal(band, 32);
 */
export function bandToTridiagonal(band: LowerBand, b: number): { d: Float64Array; e: Float64Array } {
  checkWidth(band, b);
  chaseSweeps(band.data, band.n, band.width, b, 0, 1, new Int32Array(band.n));
  return tridiagonalOf(band);
}

/**
 * `bandToTridiagonal` on `threads` worker threads, the sweeps pipelined; the same arithmetic,
 * so the same result to the last bit. Default: one thread below PARALLEL_MIN_CORES cores,
 * else the cores up to 4. `band.data` must live in a SharedArrayBuffer
 * (`lowerBand(n, w, { shared: true })`). Runs on this thread below PARALLEL_MIN_N or with one thread.
 * @example const { d, e } = await bandToTridiagonalParallel(band, 32);
 */
export async function bandToTridiagonalParallel(
  band: LowerBand,
  b: number,
  { threads = defaultThreads() }: { threads?: number } = {},
): Promise<{ d: Float64Array; e: Float64Array }> {
  checkWidth(band, b);
  const { n, width, data } = band;
  if (threads < 2 || n < PARALLEL_MIN_N || b < 2) {
    // On this thread: the chase lets the event loop turn (src/yield.ts), it runs seconds at n in the thousands.
    await finishCooperatively(chaseSweepsSteps(data, n, width, b, 0, 1, new Int32Array(n)));
    return tridiagonalOf(band);
  }
  if (!(data.buffer instanceof SharedArrayBuffer))
    throw new RangeError('bandToTridiagonalParallel: the band must live in a SharedArrayBuffer');
  const done = new Int32Array(new SharedArrayBuffer(4 * n));
  const workers = Array.from({ length: threads }, (_, first) =>
    startWorker(import.meta.url, './band-chase-worker', {
      data,
      done,
      n,
      width,
      b,
      first,
      stride: threads,
    } satisfies ChaseJob),
  );
  try {
    await Promise.all(
      workers.map(
        (worker, t) =>
          new Promise<void>((resolve, reject) => {
            worker.once('message', (msg: unknown) =>
              msg === 'ok' ? resolve() : reject(new DeltarankError(`band to tridiagonal, thread ${t}: ${String(msg)}`)),
            );
            worker.once('error', reject);
            worker.once('exit', (code) =>
              reject(new DeltarankError(`band to tridiagonal, thread ${t}: exited with code ${code}`)),
            );
          }),
      ),
    );
  } finally {
    // A failed thread leaves the others waiting on its counters: stop them all.
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return tridiagonalOf(band);
}

function checkWidth(band: LowerBand, b: number): void {
  if (band.width < 2 * b)
    throw new RangeError(`bandToTridiagonal: bandwidth ${b} needs storage width ≥ ${2 * b}, got ${band.width}`);
}

function tridiagonalOf({ n, width: W, data: a }: LowerBand): { d: Float64Array; e: Float64Array } {
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) d[i] = a[i * W + W + i]!;
  for (let i = 0; i < n - 1; i++) e[i] = a[(i + 1) * W + W + i]!;
  return { d, e };
}

/** What one worker thread of the parallel chase is given: the shared band and step counters, and its sweeps. */
export interface ChaseJob {
  data: Float64Array;
  done: Int32Array;
  n: number;
  width: number;
  b: number;
  first: number;
  stride: number;
}

/** Wait until sweep j has finished `steps` steps (j < 0: nothing to wait for). Spins briefly, then sleeps in 0.1 ms naps. */
function waitForStep(done: Int32Array, j: number, steps: number): void {
  if (j < 0) return;
  let spins = 0;
  for (;;) {
    const got = Atomics.load(done, j);
    if (got >= steps) return;
    if (++spins > 4096) Atomics.wait(done, j, got, 0.1);
  }
}

/**
 * Sweeps first, first + stride, … of the chase, in place on the lower-band array `a`
 * (width W, bandwidth b). done[j] counts the finished steps of sweep j (SWEEP_DONE when
 * complete); sweep j waits on done[j − 1]. Worker threads run it from band-chase-worker.ts.
 */
export function chaseSweeps(
  a: Float64Array,
  n: number,
  W: number,
  b: number,
  first: number,
  stride: number,
  done: Int32Array,
): void {
  finishNow(chaseSweepsSteps(a, n, W, b, first, stride, done));
}

/** `chaseSweeps` as a generator kernel that yields when a turn of the event loop is due (src/yield.ts). */
function* chaseSweepsSteps(
  a: Float64Array,
  n: number,
  W: number,
  b: number,
  first: number,
  stride: number,
  done: Int32Array,
): Generator<void, void, undefined> {
  const v = new Float64Array(b);
  const u = new Float64Array(b);
  const w = new Float64Array(b);
  const y = new Float64Array(b);
  const x = new Float64Array(b);
  for (let j = first; j < n; j += stride) {
    if (turnDue()) yield;
    let r0 = j + 1;
    let len = Math.min(b, n - r0);
    if (len < 2 || b < 2) {
      waitForStep(done, j - 1, SWEEP_DONE);
      Atomics.store(done, j, SWEEP_DONE);
      continue;
    }
    let step = 0;
    waitForStep(done, j - 1, step + PIPELINE_LAG);
    // Reflector annihilating column j below row j + 1.
    for (let i = 0; i < len; i++) v[i] = a[(r0 + i) * W + W + j]!;
    let tau = makeReflector(v, len);
    a[r0 * W + W + j] = v[0]!;
    for (let i = 1; i < len; i++) a[(r0 + i) * W + W + j] = 0;
    v[0] = 1;
    if (tau !== 0) applyTwoSided(a, W, r0, len, v, tau, w);
    Atomics.store(done, j, ++step);
    for (;;) {
      const s0 = r0 + len;
      if (s0 >= n) break;
      const rows = Math.min(b, n - s0);
      waitForStep(done, j - 1, step + PIPELINE_LAG);
      // Block B = A[s0 : s0+rows, r0 : r0+len] ← H₂·B·H: H fills the bulge below the band, H₂
      // annihilates its first column. With x = τ·B·v and y = τ₂·B'ᵀ·u (B' = B·H),
      // H₂·B·H = B − x·vᵀ − u·yᵀ: three passes over B instead of four.
      // Rows four at a time here and below: each load of v, y serves four rows.
      let i = 0;
      for (; i + 3 < rows; i += 4) {
        const b1 = (s0 + i) * W + W + r0;
        const b2 = b1 + W;
        const b3 = b2 + W;
        const b4 = b3 + W;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let d4 = 0;
        for (let c = 0; c < len; c++) {
          const vc = v[c]!;
          d1 += a[b1 + c]! * vc;
          d2 += a[b2 + c]! * vc;
          d3 += a[b3 + c]! * vc;
          d4 += a[b4 + c]! * vc;
        }
        x[i] = tau * d1;
        x[i + 1] = tau * d2;
        x[i + 2] = tau * d3;
        x[i + 3] = tau * d4;
        u[i] = a[b1]! - x[i]!;
        u[i + 1] = a[b2]! - x[i + 1]!;
        u[i + 2] = a[b3]! - x[i + 2]!;
        u[i + 3] = a[b4]! - x[i + 3]!;
      }
      for (; i < rows; i++) {
        const base = (s0 + i) * W + W + r0;
        let dot = 0;
        for (let c = 0; c < len; c++) dot += a[base + c]! * v[c]!;
        x[i] = tau * dot;
        u[i] = a[base]! - x[i]!;
      }
      const tau2 = rows < 2 ? 0 : makeReflector(u, rows);
      if (tau2 !== 0) {
        const beta = u[0]!;
        u[0] = 1;
        let ux = 0;
        for (let i = 0; i < rows; i++) ux += u[i]! * x[i]!;
        y.fill(0, 0, len);
        for (i = 0; i + 3 < rows; i += 4) {
          const b1 = (s0 + i) * W + W + r0;
          const b2 = b1 + W;
          const b3 = b2 + W;
          const b4 = b3 + W;
          const u1 = u[i]!;
          const u2 = u[i + 1]!;
          const u3 = u[i + 2]!;
          const u4 = u[i + 3]!;
          for (let c = 0; c < len; c++) y[c]! += u1 * a[b1 + c]! + u2 * a[b2 + c]! + u3 * a[b3 + c]! + u4 * a[b4 + c]!;
        }
        for (; i < rows; i++) {
          const base = (s0 + i) * W + W + r0;
          const ui = u[i]!;
          for (let c = 0; c < len; c++) y[c]! += ui * a[base + c]!;
        }
        for (let c = 0; c < len; c++) y[c] = tau2 * (y[c]! - ux * v[c]!);
        for (i = 0; i + 3 < rows; i += 4) {
          const b1 = (s0 + i) * W + W + r0;
          const b2 = b1 + W;
          const b3 = b2 + W;
          const b4 = b3 + W;
          const x1 = x[i]!;
          const x2 = x[i + 1]!;
          const x3 = x[i + 2]!;
          const x4 = x[i + 3]!;
          const u1 = u[i]!;
          const u2 = u[i + 1]!;
          const u3 = u[i + 2]!;
          const u4 = u[i + 3]!;
          for (let c = 1; c < len; c++) {
            const vc = v[c]!;
            const yc = y[c]!;
            a[b1 + c]! -= x1 * vc + u1 * yc;
            a[b2 + c]! -= x2 * vc + u2 * yc;
            a[b3 + c]! -= x3 * vc + u3 * yc;
            a[b4 + c]! -= x4 * vc + u4 * yc;
          }
          a[b1] = 0;
          a[b2] = 0;
          a[b3] = 0;
          a[b4] = 0;
        }
        for (; i < rows; i++) {
          const base = (s0 + i) * W + W + r0;
          const xi = x[i]!;
          const ui = u[i]!;
          for (let c = 1; c < len; c++) a[base + c]! -= xi * v[c]! + ui * y[c]!;
          a[base] = 0;
        }
        a[s0 * W + W + r0] = beta;
        applyTwoSided(a, W, s0, rows, u, tau2, w);
      } else {
        for (let i = 0; i < rows; i++) {
          const base = (s0 + i) * W + W + r0;
          const xi = x[i]!;
          for (let c = 0; c < len; c++) a[base + c]! -= xi * v[c]!;
        }
      }
      Atomics.store(done, j, ++step);
      if (rows < 2) break;
      v.set(u.subarray(0, rows));
      tau = tau2;
      r0 = s0;
      len = rows;
    }
    Atomics.store(done, j, SWEEP_DONE);
  }
}

/**
 * Householder reflector H = I − τ·v·vᵀ with H·x = (β, 0, …, 0), LAPACK dlarfg's convention:
 * on return v[0] = β and v[1..len) the reflector's tail (its head is 1). Returns τ (0 when
 * x is already of that form).
 */
function makeReflector(v: Float64Array, len: number): number {
  let tail = 0;
  for (let i = 1; i < len; i++) tail = Math.max(tail, Math.abs(v[i]!));
  if (tail === 0) return 0;
  const alpha = v[0]!;
  const scale = Math.max(tail, Math.abs(alpha));
  let s = 0;
  for (let i = 0; i < len; i++) {
    const t = v[i]! / scale;
    s += t * t;
  }
  const beta = -(alpha >= 0 ? 1 : -1) * scale * Math.sqrt(s);
  const inv = 1 / (alpha - beta);
  for (let i = 1; i < len; i++) v[i]! *= inv;
  v[0] = beta;
  return (beta - alpha) / beta;
}

/** A[r0:r0+len, same] ← H·A·H on the symmetric diagonal block, lower triangle only (dsytd2's rank-2 form). Rows four at a time, as in the chase. */
function applyTwoSided(
  a: Float64Array,
  W: number,
  r0: number,
  len: number,
  v: Float64Array,
  tau: number,
  w: Float64Array,
): void {
  w.fill(0, 0, len);
  // w = A·v from the lower triangle: row i gives w[i] its part left of the diagonal and w[c < i] the mirrored part.
  let i = 0;
  for (; i + 3 < len; i += 4) {
    const b1 = (r0 + i) * W + W + r0;
    const b2 = b1 + W;
    const b3 = b2 + W;
    const b4 = b3 + W;
    const v1 = v[i]!;
    const v2 = v[i + 1]!;
    const v3 = v[i + 2]!;
    const v4 = v[i + 3]!;
    let acc1 = 0;
    let acc2 = 0;
    let acc3 = 0;
    let acc4 = 0;
    for (let c = 0; c < i; c++) {
      const t1 = a[b1 + c]!;
      const t2 = a[b2 + c]!;
      const t3 = a[b3 + c]!;
      const t4 = a[b4 + c]!;
      const vc = v[c]!;
      acc1 += t1 * vc;
      acc2 += t2 * vc;
      acc3 += t3 * vc;
      acc4 += t4 * vc;
      w[c]! += t1 * v1 + t2 * v2 + t3 * v3 + t4 * v4;
    }
    w[i]! += acc1;
    w[i + 1]! += acc2;
    w[i + 2]! += acc3;
    w[i + 3]! += acc4;
    symmetricCorner(a, W, b1, i, i + 4, v, w);
  }
  symmetricCorner(a, W, (r0 + i) * W + W + r0, i, len, v, w);
  for (let k = i; k < len; k++) {
    // Remaining rows: their parts left of column i.
    const base = (r0 + k) * W + W + r0;
    const vk = v[k]!;
    let acc = 0;
    for (let c = 0; c < i; c++) {
      const t = a[base + c]!;
      acc += t * v[c]!;
      w[c]! += t * vk;
    }
    w[k]! += acc;
  }
  let vw = 0;
  for (let k = 0; k < len; k++) {
    w[k]! *= tau;
    vw += w[k]! * v[k]!;
  }
  const alpha = -0.5 * tau * vw;
  for (let k = 0; k < len; k++) w[k]! += alpha * v[k]!;
  for (i = 0; i + 3 < len; i += 4) {
    const b1 = (r0 + i) * W + W + r0;
    const b2 = b1 + W;
    const b3 = b2 + W;
    const b4 = b3 + W;
    const v1 = v[i]!;
    const v2 = v[i + 1]!;
    const v3 = v[i + 2]!;
    const v4 = v[i + 3]!;
    const w1 = w[i]!;
    const w2 = w[i + 1]!;
    const w3 = w[i + 2]!;
    const w4 = w[i + 3]!;
    for (let c = 0; c <= i; c++) {
      const wc = w[c]!;
      const vc = v[c]!;
      a[b1 + c]! -= v1 * wc + w1 * vc;
      a[b2 + c]! -= v2 * wc + w2 * vc;
      a[b3 + c]! -= v3 * wc + w3 * vc;
      a[b4 + c]! -= v4 * wc + w4 * vc;
    }
    for (let r = 1; r < 4; r++) {
      const base = b1 + r * W;
      const vr = v[i + r]!;
      const wr = w[i + r]!;
      for (let c = i + 1; c <= i + r; c++) a[base + c]! -= vr * w[c]! + wr * v[c]!;
    }
  }
  for (; i < len; i++) {
    const base = (r0 + i) * W + W + r0;
    const vi = v[i]!;
    const wi = w[i]!;
    for (let c = 0; c <= i; c++) a[base + c]! -= vi * w[c]! + wi * v[c]!;
  }
}

/** w += A·v restricted to the lower-triangular block of rows and columns [from, to) (rows start at `base` for row `from`). */
function symmetricCorner(
  a: Float64Array,
  W: number,
  base: number,
  from: number,
  to: number,
  v: Float64Array,
  w: Float64Array,
): void {
  for (let r = from; r < to; r++) {
    const br = base + (r - from) * W;
    const vr = v[r]!;
    let acc = 0;
    for (let c = from; c < r; c++) {
      const t = a[br + c]!;
      acc += t * v[c]!;
      w[c]! += t * vr;
    }
    w[r]! += acc + a[br + r]! * vr;
  }
}
