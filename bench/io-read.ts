/**
 * Child of bench/io.ts: read every tensor of both sides of a pair with readFloat32, one at a
 * time, and print one JSON line { seconds, bytes, tensors, largestF32Bytes, maxRssBytes }.
 * argv: <pair folder> <fresh|reuse>: a new array per tensor, or one array reused throughout.
 */
import { join } from 'node:path';
import { DTYPE_SIZE, openCheckpoint } from '../src/io/index.js';

const dir = process.argv[2]!;
const reuse = process.argv[3] === 'reuse';
let buffer: Float32Array | undefined;
let bytes = 0;
let tensors = 0;
let largestF32Bytes = 0;
let checksum = 0;
const start = performance.now();
for (const side of ['base', 'tuned']) {
  const ckpt = await openCheckpoint(join(dir, side));
  try {
    for (const t of ckpt.tensors) {
      const n = t.byteLength / DTYPE_SIZE[t.dtype];
      if (reuse && (!buffer || buffer.length < n)) buffer = new Float32Array(Math.max(n, 2 * (buffer?.length ?? 0)));
      const w = await ckpt.readFloat32(t.name, reuse ? buffer : undefined);
      // Touch the values so the read cannot be skipped.
      checksum += w[w.length - 1]!;
      bytes += t.byteLength;
      tensors++;
      largestF32Bytes = Math.max(largestF32Bytes, n * 4);
    }
  } finally {
    await ckpt.close();
  }
}
const seconds = (performance.now() - start) / 1000;
process.stdout.write(
  JSON.stringify({
    seconds,
    bytes,
    tensors,
    largestF32Bytes,
    checksum,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  }) + '\n',
);
