/**
 * Streaming safetensors writer: the header is known from the specs up front, then each
 * tensor is asked of its source, written, and dropped, so memory holds one tensor at a time.
 */
import { type FileHandle, mkdir, open, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ShapeError, UsageError } from '../errors.js';
import { discardTemporary, registerTemporary, releaseTemporary } from './atomic.js';
import { INDEX_SUFFIX } from './checkpoint.js';
import { DTYPE_SIZE, type DType, fromFloat32, isDType, isFloatDType } from './dtypes.js';
import { formatInteger } from './safetensors-reader.js';

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

/**
 * Produces tensor `index` of the specs. A Float32Array (numel values) is narrowed to
 * spec.dtype by the writer; a Uint8Array holds raw little-endian bytes already in spec.dtype
 * (its length is checked).
 */
export type TensorSource = (
  spec: TensorSpec,
  index: number,
) => Promise<Float32Array | Uint8Array> | Float32Array | Uint8Array;

/** Bytes a spec occupies in the data section. */
export function specByteLength(spec: TensorSpec): number {
  return spec.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[spec.dtype];
}

function checkSpecs(specs: TensorSpec[]): void {
  const seen = new Set<string>();
  for (const s of specs) {
    if (s.name === '' || s.name === '__metadata__')
      throw new UsageError(`tensor name ${JSON.stringify(s.name)} is not allowed`);
    if (seen.has(s.name)) throw new UsageError(`tensor "${s.name}" is listed twice`);
    seen.add(s.name);
    if (!isDType(s.dtype)) throw new UsageError(`tensor "${s.name}": unknown dtype ${JSON.stringify(s.dtype)}`);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new UsageError(`tensor "${s.name}": shape [${s.shape.join(', ')}] is not a list of non-negative integers`);
  }
}

/**
 * The header bytes: `__metadata__` first, then the tensors in the order given with
 * contiguous data_offsets, padded with spaces so that data starts on an 8-byte boundary.
 */
export function encodeHeader(specs: TensorSpec[], metadata: Record<string, string> | undefined): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const s of specs) {
    const end = offset + specByteLength(s);
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function tensorBytes(spec: TensorSpec, index: number, data: Float32Array | Uint8Array): Uint8Array {
  const expected = specByteLength(spec);
  if (data instanceof Float32Array) {
    const numel = expected / DTYPE_SIZE[spec.dtype];
    if (data.length !== numel)
      throw new ShapeError(
        `tensor "${spec.name}": source gave ${formatInteger(data.length)} values but shape [${spec.shape.join(', ')}] holds ${formatInteger(numel)}`,
      );
    if (!isFloatDType(spec.dtype))
      throw new UsageError(`tensor "${spec.name}": f32 values cannot be written as ${spec.dtype}; give raw bytes`);
    return fromFloat32(spec.dtype, data);
  }
  if (data instanceof Uint8Array) {
    if (data.byteLength !== expected)
      throw new ShapeError(
        `tensor "${spec.name}": source gave ${formatInteger(data.byteLength)} bytes but ${spec.dtype} [${spec.shape.join(', ')}] takes ${formatInteger(expected)}`,
      );
    return data;
  }
  throw new UsageError(`tensor "${spec.name}" (#${index}): source must give a Float32Array or a Uint8Array`);
}

/**
 * Write one safetensors file: header, then each tensor as `source` produces it, in order.
 * Streams to a hidden temporary in the destination folder and renames it over `file` only
 * after every byte is written and synced; on any error (or SIGINT/SIGTERM) the temporary is
 * removed and nothing appears under `file`. Cost: one pass over the data, one tensor in memory.
 * @example await writeSafetensors('w.safetensors', [{ name: 'w', dtype: 'BF16', shape: [2, 2] }], () => new Float32Array([1, 2, 3, 4]));
 */
export async function writeSafetensors(
  file: string,
  specs: TensorSpec[],
  source: TensorSource,
  opts: { metadata?: Record<string, string> } = {},
): Promise<void> {
  checkSpecs(specs);
  const header = encodeHeader(specs, opts.metadata);
  const tmp = registerTemporary(file);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await writeAll(handle, header);
      for (let i = 0; i < specs.length; i++) {
        const spec = specs[i]!;
        await writeAll(handle, tensorBytes(spec, i, await source(spec, i)));
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    releaseTemporary(tmp);
  } catch (err) {
    await discardTemporary(tmp);
    throw err;
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done);
    done += bytesWritten;
  }
}

/**
 * Split specs into shards, in order, never splitting a tensor. `shards`: that many, with
 * bytes as even as whole tensors allow (each tensor goes to the shard its byte midpoint
 * falls in; shards left empty by one huge tensor are dropped). `maxShardBytes`: a new shard
 * when the next tensor would pass the cap (a tensor larger than the cap gets a shard alone).
 */
export function planShards(specs: TensorSpec[], opts: { maxShardBytes?: number; shards?: number }): TensorSpec[][] {
  const { maxShardBytes, shards } = opts;
  if (shards !== undefined && maxShardBytes !== undefined)
    throw new UsageError('give either a shard count or a maximum shard size, not both');
  if (shards !== undefined) {
    if (!Number.isSafeInteger(shards) || shards < 1)
      throw new UsageError(`shard count must be a positive integer, got ${shards}`);
    if (shards > Math.max(1, specs.length))
      throw new UsageError(`cannot split ${specs.length} tensors into ${shards} shards`);
    const total = specs.reduce((a, s) => a + specByteLength(s), 0);
    const groups: TensorSpec[][] = Array.from({ length: shards }, () => []);
    let before = 0;
    specs.forEach((s, i) => {
      const size = specByteLength(s);
      const k =
        total > 0
          ? Math.min(shards - 1, Math.floor(((before + size / 2) * shards) / total))
          : Math.floor((i * shards) / specs.length);
      groups[k]!.push(s);
      before += size;
    });
    return groups.filter((g) => g.length > 0);
  }
  if (maxShardBytes !== undefined) {
    if (!(maxShardBytes > 0)) throw new UsageError(`maximum shard size must be positive, got ${maxShardBytes}`);
    const groups: TensorSpec[][] = [[]];
    let size = 0;
    for (const s of specs) {
      const b = specByteLength(s);
      if (groups.at(-1)!.length > 0 && size + b > maxShardBytes) {
        groups.push([]);
        size = 0;
      }
      groups.at(-1)!.push(s);
      size += b;
    }
    return groups;
  }
  return [specs];
}

/**
 * Write a checkpoint into `dir` (created if missing) in Hugging Face naming: one
 * `<baseName>.safetensors`, or shards `<baseName>-00001-of-00003.safetensors` … plus
 * `<baseName>.safetensors.index.json` (`{"metadata": {"total_size": bytes}, "weight_map": {...}}`),
 * written last. Every file is written atomically (see writeSafetensors); `source` is called
 * with the index into `specs`. Returns the paths of the shard files and of the index, if any.
 * @example await writeCheckpoint('out/base', specs, (spec, i) => weights[i], { shards: 3, metadata: { format: 'pt' } });
 */
export async function writeCheckpoint(
  dir: string,
  specs: TensorSpec[],
  source: TensorSource,
  opts: { maxShardBytes?: number; shards?: number; metadata?: Record<string, string>; baseName?: string } = {},
): Promise<{ files: string[]; index?: string }> {
  const { baseName = 'model', metadata } = opts;
  checkSpecs(specs);
  const groups = planShards(specs, opts);
  await mkdir(dir, { recursive: true });
  const position = new Map(specs.map((s, i) => [s.name, i]));
  const names =
    groups.length === 1
      ? [`${baseName}.safetensors`]
      : groups.map(
          (_, k) =>
            `${baseName}-${String(k + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`,
        );
  const files: string[] = [];
  for (let k = 0; k < groups.length; k++) {
    const file = join(dir, names[k]!);
    await writeSafetensors(file, groups[k]!, (spec) => source(spec, position.get(spec.name)!), { metadata });
    files.push(file);
  }
  if (groups.length === 1) return { files };
  const weightMap: Record<string, string> = {};
  groups.forEach((g, k) => g.forEach((s) => (weightMap[s.name] = names[k]!)));
  const totalSize = specs.reduce((a, s) => a + specByteLength(s), 0);
  const index = join(dir, baseName + INDEX_SUFFIX);
  await writeFileAtomically(
    index,
    JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n',
  );
  return { files, index };
}

/** Write a small text file through a temporary and a rename. */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = registerTemporary(file);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    await rename(tmp, file);
    releaseTemporary(tmp);
  } catch (err) {
    await discardTemporary(tmp);
    throw err;
  }
}
