/**
 * One worker thread of the spectrum pool (spectrum-pool.ts): computes the spectrum of each ΔW the
 * parent posts and answers the summary or the error, sending ΔW's buffer back with it. Its
 * products share the cores with the pool's other busy threads (`shareCores`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DeltarankError } from '../errors.js';
import { shareCores } from '../svd/index.js';
import { computeSpectrum } from './spectrum.js';
import type { SpectrumAnswer, SpectrumRequest, SpectrumResponse } from './spectrum-pool.js';

const busy = new Int32Array((workerData as { busy: SharedArrayBuffer }).busy);
shareCores(busy);
parentPort!.on('message', async (message: SpectrumRequest | 'stop') => {
  // Ends this thread between two products: torn down inside one, onnxruntime would abort the process.
  if (message === 'stop') process.exit(0);
  const { input, rows, cols, frobSquared, opts } = message;
  let response: SpectrumAnswer;
  try {
    const delta = { rows, cols, data: new Float32Array(input, 0, rows * cols) };
    response = { summary: await computeSpectrum(delta, frobSquared, opts) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const { file, tensor, option } = e as DeltarankError;
    response = { error: { name: e.name, message: e.message, stack: e.stack ?? '', subject: { file, tensor, option } } };
  }
  // Counted out before the answer crosses: the parent may be busy and read it late.
  Atomics.sub(busy, 0, 1);
  const answer: SpectrumResponse = { ...response, input };
  parentPort!.postMessage(answer, [input]);
});
