/**
 * The tfjs backend: `@tensorflow/tfjs-node` (native TensorFlow) when it is installed,
 * else the WebAssembly backend with its .wasm files loaded from node_modules.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export interface BackendInfo {
  /** tfjs backend name: "tensorflow" (tfjs-node) or "wasm". */
  name: string;
  /** What loaded, for people: "wasm (SIMD, 1 thread)". */
  detail: string;
}

let ready: Promise<BackendInfo> | undefined;

/**
 * Select and initialise the backend once per process; later calls return the same answer.
 * tfjs-node is optional, so it is imported by a computed name and its absence is not an error.
 */
export function initBackend(): Promise<BackendInfo> {
  ready ??= selectBackend();
  return ready;
}

async function selectBackend(): Promise<BackendInfo> {
  const nodeBackend = '@tensorflow/tfjs-node';
  try {
    await import(nodeBackend);
    // A tfjs-node that bundles its own tfjs-core registers its backend elsewhere; use it only if ours sees it.
    if (tf.findBackendFactory('tensorflow') && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return { name: 'tensorflow', detail: `tfjs-node (TensorFlow C library), tfjs ${tf.version_core}` };
    }
  } catch {
    // Not installed: the wasm backend below.
  }
  const require = createRequire(import.meta.url);
  setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const threads = getThreadsCount();
  return {
    name: 'wasm',
    detail: `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}), tfjs ${tf.version_core}`,
  };
}
