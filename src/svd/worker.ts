/**
 * Worker threads that run a module of this library: started the same way whether the library
 * runs compiled (`.js`) or from its TypeScript sources (tests under tsx).
 */
import { Worker } from 'node:worker_threads';

/**
 * A worker running the module `stem` (`./name`, without extension) beside `from` (the caller's
 * `import.meta.url`): a real module, so that coverage tools and bundlers see its code. From
 * TypeScript sources the module is `.ts`: Node 20 does not carry tsx's hooks into worker threads,
 * so there the worker registers them first. Without tsx the `.ts` worker is started as it is
 * (Node ≥ 22.6 strips types itself).
 * @example const w = startWorker(import.meta.url, './band-chase-worker', job);
 */
export function startWorker(from: string, stem: string, workerData: unknown): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`${stem}.js`, from), { workerData });
  const entry = new URL(`${stem}.ts`, from);
  let tsx: string;
  try {
    tsx = import.meta.resolve('tsx/esm/api');
  } catch {
    return new Worker(entry, { workerData });
  }
  const bootstrap = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}
