/**
 * Spectra computed side by side, each on a worker thread. A complete route alternates products
 * (onnxruntime, every core) with stretches of plain TypeScript on one core (panel factorizations,
 * the bulge chase, the bidiagonal values), so one spectrum at a time leaves cores idle for much of
 * its run; two at a time on 2 cores, each product on one thread, keep both busy (eight 2048²
 * complete spectra: 11.2 s one at a time, 6.2 s two at a time; four of 5632×2048: 12.6 s and 9.0 s).
 * Products take ⌊cores / threads computing a spectrum⌋ threads each (`shareCores`; this thread
 * counts itself in through `computeSpectrumHere`), so a spectrum alone still has every core. The
 * workers live as long as the process, unreferenced while idle (they never keep it alive); each
 * keeps its input buffer (here while it is idle) and its route's work arrays (scratch.ts drops
 * those after 2 s idle).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { DeltarankError, type ErrorSubject, FormatError, ShapeError, UsageError } from '../errors.js';
import { type Matrix, shareCores, startWorker } from '../svd/index.js';
import { computeSpectrum, type SpectrumOptions, type SpectrumSummary } from './spectrum.js';

/**
 * Most spectra at once by default: each holds its own workspace (the bidiagonal route's up to
 * 600 MB), so memory grows with the count while the gain stops at the cores.
 */
const MAX_DEFAULT_JOBS = 4;

/** Spectra computed at once by default: the cores, at most MAX_DEFAULT_JOBS. */
export function defaultJobs(): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_DEFAULT_JOBS));
}

/**
 * What the pool posts to a worker: ΔW in `input` (the first rows·cols values), transferred, not
 * copied. A plain ArrayBuffer, not a shared one: onnxruntime-node refuses tensors on shared memory.
 */
export interface SpectrumRequest {
  input: ArrayBuffer;
  rows: number;
  cols: number;
  frobSquared: number;
  opts: SpectrumOptions;
}

/** What a worker computed: the spectrum, or the error it threw. */
export type SpectrumAnswer = { summary: SpectrumSummary } | { error: WorkerError };

/** A worker's answer, with `input` transferred back for the next request. */
export type SpectrumResponse = SpectrumAnswer & { input: ArrayBuffer };

/** An error thrown on a worker, as it crosses back. */
interface WorkerError {
  name: string;
  message: string;
  stack: string;
  subject: ErrorSubject;
}

interface Slot {
  worker: Worker;
  /** ΔW's buffer, the size of the largest ΔW so far: here while idle, on the worker while busy. */
  input: ArrayBuffer;
  /** The spectrum it computes now, or null while idle. */
  job: { resolve: (s: SpectrumSummary) => void; reject: (e: Error) => void } | null;
}

/**
 * Threads computing a spectrum now (busy workers and this one, in `computeSpectrumHere`), shared
 * with the workers: every product divides the cores by it. A worker counts itself out as it finishes.
 */
const busy = new Int32Array(new SharedArrayBuffer(4));
const slots: Slot[] = [];
/** Callers waiting for a worker to come free. */
const waiting: (() => void)[] = [];

/**
 * Start the spectrum of `delta` (`computeSpectrum`'s arguments) on a worker, waiting first until
 * fewer than `jobs` are busy. Resolves once ΔW is copied out, so the caller may reuse its memory
 * at once, to the spectrum's promise (which rejects with the worker's error, rebuilt as its class).
 * @example const { result } = await submitSpectrum(delta, frob, opts, 2); … await result;
 */
export async function submitSpectrum(
  delta: Matrix,
  frobSquared: number,
  opts: SpectrumOptions,
  jobs: number,
): Promise<{ result: Promise<SpectrumSummary> }> {
  while (slots.filter((s) => s.job !== null).length >= jobs) await new Promise<void>((r) => waiting.push(r));
  const slot = slots.find((s) => s.job === null) ?? startSlot();
  const n = delta.rows * delta.cols;
  if (slot.input.byteLength < 4 * n) slot.input = new ArrayBuffer(4 * n);
  new Float32Array(slot.input, 0, n).set(delta.data.subarray(0, n));
  const result = new Promise<SpectrumSummary>((resolve, reject) => {
    slot.job = { resolve, reject };
  });
  Atomics.add(busy, 0, 1);
  slot.worker.ref();
  const request: SpectrumRequest = { input: slot.input, rows: delta.rows, cols: delta.cols, frobSquared, opts };
  slot.worker.postMessage(request, [slot.input]);
  return { result };
}

/**
 * `computeSpectrum` on this thread, its products sharing the cores with the busy workers.
 * @example const summary = await computeSpectrumHere(delta, frob, opts);
 */
export async function computeSpectrumHere(
  delta: Matrix,
  frobSquared: number,
  opts: SpectrumOptions,
): Promise<SpectrumSummary> {
  shareCores(busy);
  Atomics.add(busy, 0, 1);
  try {
    return await computeSpectrum(delta, frobSquared, opts);
  } finally {
    Atomics.sub(busy, 0, 1);
  }
}

function startSlot(): Slot {
  const worker = startWorker(import.meta.url, './spectrum-worker', { busy: busy.buffer });
  const slot: Slot = { worker, input: new ArrayBuffer(0), job: null };
  slots.push(slot);
  worker.unref();
  worker.on('message', (response: SpectrumResponse) => {
    slot.input = response.input;
    const job = release(slot, false);
    if ('summary' in response) job?.resolve(response.summary);
    else job?.reject(rebuild(response.error));
  });
  // A worker that dies (out of memory, a crash) fails its spectrum and leaves the pool.
  const fail = (err: Error) => {
    slots.splice(slots.indexOf(slot), 1);
    release(slot, true)?.reject(new DeltarankError(`spectrum worker failed: ${err.message}`, { cause: err }));
  };
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (slots.includes(slot)) fail(new Error(`exited with code ${code}`));
  });
  return slot;
}

/** How long `stopSpectrumWorkers` waits for a worker to reach the end of its product. */
const STOP_WAIT_MS = 500;

/**
 * Stop every worker before the process exits on a signal: a worker torn down by `process.exit`
 * while inside an onnxruntime product aborts the whole process (SIGABRT in place of the signal's
 * exit code). Each is asked to end itself between two products (at most one product's time,
 * STOP_WAIT_MS at most); their spectra are dropped.
 * @example process.on('SIGINT', () => void stopSpectrumWorkers().then(() => process.exit(130)));
 */
export async function stopSpectrumWorkers(): Promise<void> {
  const ending = slots.splice(0).map(
    (slot) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STOP_WAIT_MS);
        slot.worker.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        slot.worker.postMessage('stop');
      }),
  );
  await Promise.all(ending);
}

/** Mark `slot` idle (counting it out of `busy` when its worker could not) and wake one waiting caller; returns the job it had. */
function release(slot: Slot, countOut: boolean): Slot['job'] {
  const job = slot.job;
  if (job === null) return null;
  slot.job = null;
  if (countOut) Atomics.sub(busy, 0, 1);
  slot.worker.unref();
  waiting.shift()?.();
  return job;
}

/** The worker's error as its class (this library's, with its subject: the CLI maps both to its words and exit code; RangeError, TypeError), else a plain Error of that name. */
function rebuild({ name, message, stack, subject }: WorkerError): Error {
  const classes: Record<string, new (message: string, subject: ErrorSubject) => Error> = {
    DeltarankError,
    FormatError,
    ShapeError,
    UsageError,
    RangeError,
    TypeError,
  };
  const subjectGiven = Object.fromEntries(Object.entries(subject).filter(([, v]) => v !== undefined));
  const e = new (classes[name] ?? Error)(message, subjectGiven);
  e.name = name;
  e.stack = stack;
  return e;
}
