/**
 * Cooperative yielding for long synchronous loops. Node runs signal handlers (Ctrl-C, kill, a
 * closed terminal) only when the event loop turns, so a loop that computes for seconds would keep
 * a SIGINT waiting that long. Every loop that can run longer than a few tens of milliseconds calls
 * `yieldIfDue()` at its head (or `if (turnDue()) yield;` inside a generator kernel that also has a
 * synchronous caller): at most every YIELD_INTERVAL_MS the loop awaits one turn of the event loop,
 * in which pending signals, timers and I/O are served.
 *
 * Cost: a check reads the clock (≈ 30–50 ns); a turn costs ≈ 10–50 µs, so yielding every 50 ms
 * adds ≈ 0.1 % or less. Like errors.ts, this file sits under every layer and imports nothing.
 */

/**
 * Longest stretch of computation between two turns of the event loop, in ms: a signal is then
 * served within about this long (plus the longest single step between two checks).
 */
export const YIELD_INTERVAL_MS = 50;

let lastTurn = performance.now();

/**
 * Whether YIELD_INTERVAL_MS have passed since the last turn taken through this module: one clock
 * read, cheap enough for the head of any loop whose body does a microsecond of work or more.
 * @example for (let sweep = 0; ; sweep++) { if (turnDue()) await turnEventLoop(); … }
 */
export function turnDue(): boolean {
  return performance.now() - lastTurn >= YIELD_INTERVAL_MS;
}

/**
 * Let the event loop turn once (`setImmediate`: the poll phase, where signals and I/O are
 * served, runs before it) and restart the interval.
 * @example await turnEventLoop();
 */
export function turnEventLoop(): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      lastTurn = performance.now();
      resolve();
    }),
  );
}

/**
 * `turnEventLoop()` when a turn is due, else nothing (no promise made): `await yieldIfDue()` at the
 * head of a long loop in an async function.
 * @example for (let k = 0; k < n; k += b) { await yieldIfDue(); panel(k); }
 */
export function yieldIfDue(): Promise<void> | undefined {
  return turnDue() ? turnEventLoop() : undefined;
}

/**
 * Run a generator kernel (one that does `if (turnDue()) yield;` at its loop heads) to its end at
 * once, ignoring its yields: the synchronous entry point of a kernel that also runs cooperatively.
 * @example export function smallSvd(a) { return finishNow(jacobiSteps(a)); }
 */
export function finishNow<T>(steps: Generator<unknown, T, undefined>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Run a generator kernel to its end, letting the event loop turn at each of its yields.
 * @example const svd = await finishCooperatively(jacobiSteps(a));
 */
export async function finishCooperatively<T>(steps: Generator<unknown, T, undefined>): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await turnEventLoop();
  }
}
