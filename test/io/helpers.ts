import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A fresh folder under the OS temp dir, removed after the test file. */
export async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'deltarank-io-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A safetensors file from its parts: an explicit header length (default: the JSON's), the header text, data bytes. */
export function buildFile(
  header: string | object,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

export async function put(dir: string, name: string, bytes: Uint8Array | string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, bytes);
  return file;
}

/** Entries of a folder, hidden ones included, sorted. */
export async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/**
 * A reader written straight from the public format description, sharing no code with
 * src/io: 8-byte little-endian header length N, N bytes of JSON, then the data, with
 * data_offsets relative to the end of the header.
 */
export function independentRead(file: Uint8Array): {
  header: Record<string, unknown>;
  headerLength: number;
  tensors: Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>;
} {
  let n = 0;
  for (let i = 7; i >= 0; i--) n = n * 256 + file[i]!;
  const header = JSON.parse(Buffer.from(file.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
  const tensors = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors.set(name, { dtype, shape, bytes: file.subarray(8 + n + data_offsets[0], 8 + n + data_offsets[1]) });
  }
  return { header, headerLength: n, tensors };
}

/** Deterministic pseudo-random bytes (LCG), so failures reproduce. */
export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
