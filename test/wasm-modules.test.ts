/**
 * Every WebAssembly module ships as its source assembles: each `*-bytes.ts` is, to the byte, the
 * module `npm run wasm` would write from its `.wat` now, so a change to one without the other fails.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { assemble, bytesModuleText, WASM_MODULES } from './wasm-modules.js';

describe('WebAssembly modules', () => {
  for (const module of WASM_MODULES) {
    it(`${module.bytes} is what ${module.wat} assembles to (else: npm run wasm)`, async () => {
      const shipped = readFileSync(new URL(`../${module.bytes}`, import.meta.url), 'utf8');
      assert.equal(shipped, bytesModuleText(module, await assemble(module)));
    });
  }
});
