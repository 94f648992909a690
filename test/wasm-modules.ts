/**
 * deltarank's WebAssembly modules: each is written in text form (a .wat file under src/) and
 * ships as the bytes wabt (a dev dependency) assembles it to, base64 in a TypeScript module beside
 * it, so that running deltarank needs neither an assembler nor a build step. Run as a script
 * (`npm run wasm`), this writes those modules anew; the tests require each shipped module to
 * match its source.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabt from 'wabt';

/** Each module: its source, the TypeScript module its bytes ship in, and the constant there. */
export const WASM_MODULES = [
  { wat: 'src/svd/wasm-kernels.wat', bytes: 'src/svd/wasm-kernels-bytes.ts', name: 'WASM_KERNELS' },
  { wat: 'src/analyze/delta-kernel.wat', bytes: 'src/analyze/delta-kernel-bytes.ts', name: 'DELTA_KERNEL_WASM' },
] as const;

type WasmModule = (typeof WASM_MODULES)[number];

const ROOT = new URL('../', import.meta.url);

/** The bytes `module.wat` assembles to (validated). */
export async function assemble(module: WasmModule): Promise<Uint8Array> {
  const file = module.wat.split('/').pop()!;
  const parsed = (await wabt()).parseWat(file, readFileSync(new URL(module.wat, ROOT), 'utf8'), { simd: true });
  try {
    parsed.validate();
    return parsed.toBinary({ canonicalize_lebs: true, write_debug_names: false }).buffer;
  } finally {
    parsed.destroy();
  }
}

/** The text of `module.bytes` for these bytes, as the formatter leaves it. */
export function bytesModuleText(module: WasmModule, bytes: Uint8Array): string {
  const wat = module.wat.split('/').pop()!;
  return `/**
 * The bytes of the WebAssembly module ${wat} assembles to, written by \`npm run wasm\`
 * (test/wasm-modules.ts); test/wasm-modules.test.ts checks that they match.
 */
export const ${module.name} =
  '${Buffer.from(bytes).toString('base64')}';
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const module of WASM_MODULES) {
    writeFileSync(new URL(module.bytes, ROOT), bytesModuleText(module, await assemble(module)));
    console.log(`wrote ${module.bytes}`);
  }
}
