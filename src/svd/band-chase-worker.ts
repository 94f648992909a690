/**
 * One worker thread of `bandToTridiagonalParallel`: it runs sweeps first, first + stride, … of
 * the bulge chase on the band the parent shares, then answers "ok" (or the error's stack).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ChaseJob, chaseSweeps } from './tridiagonal-from-band.js';

const job = workerData as ChaseJob;
try {
  chaseSweeps(job.data, job.n, job.width, job.b, job.first, job.stride, job.done);
  parentPort!.postMessage('ok');
} catch (err) {
  parentPort!.postMessage(String((err instanceof Error && err.stack) || err));
}
