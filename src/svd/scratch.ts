/**
 * Reused f64 work arrays for the exact routes. A complete spectrum of a 4096² matrix works in
 * ≈ 430 MB of arrays; memory the process has not touched yet costs a page fault per 4 KiB on first
 * write, and on virtual machines that hand freed memory back to their host a fault costs ≈ 10 µs
 * (≈ 0.4 GB/s: 0.3 s for each 134 MB array). An `analyze --exact` of a model runs the route once
 * per tensor, so arrays returned here are handed to the next call that fits them, and dropped
 * once no route has run for IDLE_MS, so that an idle process keeps no memory for them.
 */

/** How long returned arrays wait for their next use before they are dropped. */
const IDLE_MS = 2000;

const idle: Float64Array[] = [];
let dropTimer: ReturnType<typeof setTimeout> | null = null;

/**
 * An f64 array of exactly `length` values whose contents are undefined: a view of the smallest
 * idle array that holds it, else a new one. Idle arrays too small for it are dropped, so that
 * the route's peak memory stays what it would be without reuse.
 * @example const w = takeScratch64(m * n); … returnScratch64(w);
 */
export function takeScratch64(length: number): Float64Array {
  let best = -1;
  for (let i = 0; i < idle.length; i++)
    if (idle[i]!.length >= length && (best < 0 || idle[i]!.length < idle[best]!.length)) best = i;
  if (best >= 0) return idle.splice(best, 1)[0]!.subarray(0, length);
  for (let i = idle.length - 1; i >= 0; i--) if (idle[i]!.length < length) idle.splice(i, 1);
  return new Float64Array(length);
}

/**
 * Hand arrays from `takeScratch64` back (their whole storage: a view is enough). The caller
 * must hold no other view of them afterwards.
 */
export function returnScratch64(...arrays: Float64Array[]): void {
  for (const a of arrays) if (!idle.some((x) => x.buffer === a.buffer)) idle.push(new Float64Array(a.buffer));
  if (dropTimer !== null) clearTimeout(dropTimer);
  dropTimer = setTimeout(() => {
    idle.length = 0;
    dropTimer = null;
  }, IDLE_MS);
  // The pool never keeps a process alive.
  dropTimer.unref();
}

/** Values held by idle arrays (what the tests watch). */
export function idleScratchValues(): number {
  return idle.reduce((sum, a) => sum + a.length, 0);
}
