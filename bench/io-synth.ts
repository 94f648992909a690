/**
 * Child of bench/io.ts: write the tinyllama pair with synth, print one JSON line
 * { seconds, bytes, maxRssBytes }.
 */
import { writeSynthPair } from '../src/synth/index.js';
import { TINYLLAMA_PAIR, tinyllamaPairDir } from './fixtures.js';

const start = performance.now();
const manifest = await writeSynthPair(tinyllamaPairDir(), { ...TINYLLAMA_PAIR, force: true });
const seconds = (performance.now() - start) / 1000;
const params = [...manifest.modules, ...manifest.others].reduce((a, m) => a + m.shape.reduce((x, y) => x * y, 1), 0);
process.stdout.write(
  JSON.stringify({ seconds, bytes: 2 * params * 2, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n',
);
