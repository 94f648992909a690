/**
 * No module declares a function of its own under a name another layer exports: a reader
 * seeing `readAdapter(…)` in train must not have to check which of two it is.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const SRC = new URL('../../src/', import.meta.url);
const LAYERS = ['io', 'svd', 'analyze', 'extract', 'report', 'synth', 'train', 'compare'];

function sources(): { file: string; text: string }[] {
  return (readdirSync(SRC, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: f, text: readFileSync(new URL(f, SRC), 'utf8') }));
}

describe('layer exports are not shadowed', () => {
  it('no function declared outside a layer takes the name of a function that layer exports', async () => {
    const files = sources();
    const clashes: string[] = [];
    for (const layer of LAYERS) {
      const api = (await import(new URL(`${layer}/index.js`, SRC).href)) as Record<string, unknown>;
      const functions = new Set(Object.keys(api).filter((k) => typeof api[k] === 'function'));
      for (const { file, text } of files) {
        if (file.startsWith(`${layer}/`)) continue;
        for (const m of text.matchAll(/^(?:export )?(?:async )?function\*? ?([A-Za-z_$][\w$]*)/gm)) {
          const name = m[1]!;
          if (!functions.has(name)) continue;
          // The layer re-exporting this very function (train's createRng is svd's) is no clash.
          const own = (await import(new URL(file.replace(/\.ts$/, '.js'), SRC).href)) as Record<string, unknown>;
          if (own[name] === api[name]) continue;
          clashes.push(`src/${file}: function ${name} shadows src/${layer}'s ${name}`);
        }
      }
    }
    assert.deepEqual(clashes, []);
  });
});
