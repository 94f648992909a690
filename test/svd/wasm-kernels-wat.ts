/**
 * src/svd/wasm-kernels.wat assembled by wabt (a dev dependency), and the module
 * src/svd/wasm-kernels-bytes.ts that ships its bytes. Run as a script (`npm run wasm`), it writes
 * that module anew; test/svd/wasm-kernels.test.ts requires the shipped one to match.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabt from 'wabt';

const WAT = new URL('../../src/svd/wasm-kernels.wat', import.meta.url);
const BYTES_MODULE = new URL('../../src/svd/wasm-kernels-bytes.ts', import.meta.url);

/** The module wasm-kernels.wat assembles to (validated). */
export async function assembleWasmKernels(): Promise<Uint8Array> {
  const module = (await wabt()).parseWat('wasm-kernels.wat', readFileSync(WAT, 'utf8'), { simd: true });
  try {
    module.validate();
    return module.toBinary({ canonicalize_lebs: true, write_debug_names: false }).buffer;
  } finally {
    module.destroy();
  }
}

/** The text of wasm-kernels-bytes.ts for these bytes, as the formatter leaves it. */
export function bytesModuleText(bytes: Uint8Array): string {
  return `/**
 * The bytes of the WebAssembly module wasm-kernels.wat assembles to, written by \`npm run wasm\`
 * (test/svd/wasm-kernels-wat.ts); test/svd/wasm-kernels.test.ts checks that they match.
 */
export const WASM_KERNELS =
  '${Buffer.from(bytes).toString('base64')}';
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(BYTES_MODULE, bytesModuleText(await assembleWasmKernels()));
  console.log(`wrote ${fileURLToPath(BYTES_MODULE)}`);
}
