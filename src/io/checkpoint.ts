/**
 * A checkpoint: one safetensors file, a sharded `*.safetensors.index.json`, or a folder
 * holding either. Opening reads only headers; each tensor is then read on demand with a
 * positioned read of its byte range, so peak memory is the tensors in hand, never the model.
 */
import { type FileHandle, open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DeltarankError, FormatError } from '../errors.js';
import { DTYPE_SIZE, type DType, decodeBf16, decodeF16, toFloat32 } from './dtypes.js';
import { readExactly, readSafetensorsHeader } from './safetensors-reader.js';

export interface TensorInfo {
  name: string;
  dtype: DType;
  /** Dimensions as stored, PyTorch layout (a Linear weight is [out, in]). */
  shape: number[];
  byteLength: number;
  /** Path of the shard holding the tensor. */
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
}

export interface Checkpoint {
  /** The path as opened. */
  path: string;
  /** Shard files, in order. */
  files: string[];
  /** `__metadata__` of the first shard ({} if none). */
  metadata: Record<string, string>;
  /** Every tensor, shard by shard, in file order. */
  tensors: TensorInfo[];
  has(name: string): boolean;
  /** FormatError if absent. */
  info(name: string): TensorInfo;
  /**
   * Exactly the tensor's bytes (one positioned read, looped over short reads): a fresh buffer, or
   * the first byteLength bytes of `into` when given.
   */
  readRaw(name: string, into?: Uint8Array): Promise<Uint8Array>;
  /**
   * The tensor widened to f32: a fresh array, or a view of the first numel values of `out`
   * when given (reusing one buffer across tensors spares the page faults of fresh memory,
   * which dominate reading from the page cache). BF16/F16 widen in place in the read
   * buffer, so peak memory is the f32 size.
   */
  readFloat32(name: string, out?: Float32Array): Promise<Float32Array>;
  /** Close every shard's file handle. */
  close(): Promise<void>;
}

/** The name Hugging Face gives a sharded checkpoint's index. */
export const INDEX_SUFFIX = '.safetensors.index.json';

/**
 * Open a checkpoint: a `.safetensors` file, an index JSON (`{"weight_map": {tensor: shard}}`),
 * or a folder holding `model.safetensors.index.json`, another single `*.safetensors.index.json`,
 * `model.safetensors`, or a single `*.safetensors`. Validates every header (see
 * readSafetensorsHeader), that each shard the index names exists and holds the tensors mapped
 * to it, and that no tensor name appears twice. Keeps one file handle per shard until close().
 * @example
 * const ckpt = await openCheckpoint('models/base');
 * try { const w = await ckpt.readFloat32('model.layers.0.self_attn.q_proj.weight'); } finally { await ckpt.close(); }
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const target = await resolveTarget(path);
  const handles: FileHandle[] = [];
  try {
    if (target.kind === 'file') {
      const shard = await openShard(target.file);
      handles.push(shard.handle);
      return makeCheckpoint(path, [shard]);
    }
    const weightMap = await readIndex(target.file);
    const dir = dirname(target.file);
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    const shards: Shard[] = [];
    for (const name of shardNames) {
      const file = join(dir, name);
      let shard: Shard;
      try {
        shard = await openShard(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new FormatError(`${basename(target.file)}: names shard "${name}", which does not exist in ${dir}`, {
            cause: err,
          });
        }
        throw err;
      }
      handles.push(shard.handle);
      shards.push(shard);
    }
    const held = new Map(shards.map((s, k) => [shardNames[k]!, new Set(s.entries.map((e) => e.name))]));
    for (const [tensor, name] of Object.entries(weightMap)) {
      if (!held.get(name)!.has(tensor)) {
        throw new FormatError(
          `${basename(target.file)}: maps tensor "${tensor}" to shard "${name}", which does not hold it`,
        );
      }
    }
    return makeCheckpoint(path, shards);
  } catch (err) {
    await Promise.all(handles.map((h) => h.close()));
    throw err;
  }
}

interface Shard {
  file: string;
  handle: FileHandle;
  metadata: Record<string, string>;
  entries: TensorInfo[];
}

async function openShard(file: string): Promise<Shard> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const header = await readSafetensorsHeader(handle, file, size);
    return { file, handle, metadata: header.metadata, entries: header.entries.map((e) => ({ ...e, file })) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function resolveTarget(path: string): Promise<{ kind: 'file' | 'index'; file: string }> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new DeltarankError(`${path}: no such file or folder`, { cause: err }) : err;
  });
  if (st.isFile()) return { kind: path.endsWith('.json') ? 'index' : 'file', file: path };
  if (!st.isDirectory()) throw new FormatError(`${path}: neither a file nor a folder`);
  const names = (await readdir(path)).filter((n) => !n.startsWith('.'));
  const indexes = names.filter((n) => n.endsWith(INDEX_SUFFIX));
  if (names.includes('model' + INDEX_SUFFIX)) return { kind: 'index', file: join(path, 'model' + INDEX_SUFFIX) };
  if (indexes.length === 1) return { kind: 'index', file: join(path, indexes[0]!) };
  if (indexes.length > 1)
    throw new FormatError(`${path}: several index files (${indexes.join(', ')}); name the one to open`);
  if (names.includes('model.safetensors')) return { kind: 'file', file: join(path, 'model.safetensors') };
  const files = names.filter((n) => n.endsWith('.safetensors'));
  if (files.length === 1) return { kind: 'file', file: join(path, files[0]!) };
  if (files.length === 0) {
    // PyTorch pickles can run code when loaded: they are not read, only pointed out.
    const pickles = names.filter((n) => /\.(bin|pt|pth)$/.test(n));
    const hint =
      pickles.length > 0
        ? ` (found ${pickles.slice(0, 2).join(', ')}: PyTorch pickle files are not read; save the model with safe_serialization=True, or convert it to safetensors first)`
        : '';
    throw new FormatError(`${path}: no .safetensors file and no ${'model' + INDEX_SUFFIX} in this folder${hint}`);
  }
  throw new FormatError(
    `${path}: several .safetensors files (${files.join(', ')}) but no index; name the file to open`,
  );
}

async function readIndex(file: string): Promise<Record<string, string>> {
  const label = basename(file);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw err;
    throw new FormatError(`${label}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new FormatError(`${label}: no "weight_map" object (expected {"weight_map": {"tensor name": "shard file"}})`);
  }
  for (const [tensor, shard] of Object.entries(weightMap)) {
    // A NUL byte is no file name anywhere (the file system API would throw a TypeError on it).
    if (
      typeof shard !== 'string' ||
      shard === '' ||
      basename(shard) !== shard ||
      shard.includes('\0') ||
      shard === '.' ||
      shard === '..'
    ) {
      throw new FormatError(
        `${label}: tensor "${tensor}" maps to ${JSON.stringify(shard)}, not a file name in the index's folder`,
      );
    }
  }
  return weightMap as Record<string, string>;
}

function makeCheckpoint(path: string, shards: Shard[]): Checkpoint {
  const byName = new Map<string, TensorInfo>();
  const handleOf = new Map<string, FileHandle>();
  const tensors: TensorInfo[] = [];
  for (const shard of shards) {
    handleOf.set(shard.file, shard.handle);
    for (const e of shard.entries) {
      const seen = byName.get(e.name);
      if (seen)
        throw new FormatError(
          `tensor "${e.name}" is stored twice: in ${basename(seen.file)} and in ${basename(e.file)}`,
        );
      byName.set(e.name, e);
      tensors.push(e);
    }
  }
  const info = (name: string): TensorInfo => {
    const t = byName.get(name);
    if (!t) throw new FormatError(`${path}: no tensor "${name}"`);
    return t;
  };
  const readInto = (t: TensorInfo, into: Uint8Array) =>
    readExactly(handleOf.get(t.file)!, t.byteLength, t.offset, () => `${basename(t.file)}: tensor "${t.name}"`, into);
  let closed = false;
  return {
    path,
    files: shards.map((s) => s.file),
    metadata: shards[0]?.metadata ?? {},
    tensors,
    has: (name) => byName.has(name),
    info,
    async readRaw(name, into) {
      const t = info(name);
      if (into && into.byteLength < t.byteLength)
        throw new RangeError(
          `tensor "${name}" has ${t.byteLength} bytes but the output array holds ${into.byteLength}`,
        );
      return readInto(t, into ? into.subarray(0, t.byteLength) : new Uint8Array(t.byteLength));
    },
    async readFloat32(name, into) {
      const t = info(name);
      const n = t.byteLength / DTYPE_SIZE[t.dtype];
      if (into && into.length < n)
        throw new RangeError(`tensor "${name}" has ${n} values but the output array holds ${into.length}`);
      const out = into ? into.subarray(0, n) : new Float32Array(n);
      if (t.dtype === 'F32') {
        await readInto(t, new Uint8Array(out.buffer, out.byteOffset, 4 * n));
        return out;
      }
      if (t.dtype === 'BF16' || t.dtype === 'F16') {
        // The 2n bytes land in the upper half of the f32 buffer and widen front to back:
        // element i is written at bytes [4i, 4i+4), below every half-precision element not yet read.
        const half = new Uint16Array(out.buffer, out.byteOffset + 2 * n, n);
        await readInto(t, new Uint8Array(out.buffer, out.byteOffset + 2 * n, 2 * n));
        return t.dtype === 'BF16' ? decodeBf16(half, out) : decodeF16(half, out);
      }
      out.set(toFloat32(t.dtype, await readInto(t, new Uint8Array(t.byteLength))));
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(shards.map((s) => s.handle.close()));
    },
  };
}
