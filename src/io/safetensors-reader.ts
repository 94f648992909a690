/**
 * The safetensors header: an 8-byte little-endian length N, N bytes of UTF-8 JSON
 * (`{"__metadata__": {...}, name: {dtype, shape, data_offsets: [begin, end]}, ...}`),
 * then the data section, offsets relative to its start. Parsing validates every entry so that
 * a later positioned read of a tensor's byte range can trust it.
 */
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { FormatError } from '../errors.js';
import { DTYPE_SIZE, type DType, isDType } from './dtypes.js';

/**
 * Largest header accepted. The reference implementation caps it at 100 MB; a real header
 * is about 100 bytes per tensor (a 70B model's shards have a few hundred kB), so anything
 * larger is a corrupt length, and trusting it would allocate whatever the file claims.
 */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as a file's header describes it, with its absolute position in that file. */
export interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** Absolute byte offset of the data in the file (8 + header length + data_offsets[0]). */
  offset: number;
}

export interface SafetensorsHeader {
  /** `__metadata__`, or {} when absent. */
  metadata: Record<string, string>;
  /** Entries ordered by their position in the data section. */
  entries: HeaderEntry[];
  /** Length of the JSON header in bytes (without the 8-byte prefix). */
  headerLength: number;
}

const nf = new Intl.NumberFormat('en-US');
/** 9012 → "9,012", as messages print byte positions. */
export function formatInteger(n: number | bigint): string {
  return nf.format(n);
}

/** Read exactly `length` bytes at `position` into a new array, looping over short reads. */
export async function readExactly(
  handle: FileHandle,
  length: number,
  position: number,
  what: () => string,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const buf = into ?? new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0)
      throw new FormatError(
        `${what()}: the file ended after ${formatInteger(position + done)} bytes (it shrank while open?)`,
      );
    done += bytesRead;
  }
  return buf;
}

/**
 * Read and validate the header of an open safetensors file of `fileSize` bytes.
 * `file` names the file in messages. Reads 8 + N bytes, nothing of the data section.
 * Rejects (FormatError): a file under 8 bytes; N above MAX_HEADER_BYTES or past the end of
 * the file; a header that is not UTF-8 JSON or not an object; a non-string-map `__metadata__`;
 * per tensor: an unknown dtype, a shape that is not a list of non-negative integers,
 * `data_offsets` that are not two integers in order, inside the data section, of length
 * shape × item size; tensors that overlap, and gaps or trailing bytes in the data section
 * (the format indexes the whole buffer; the reference implementation refuses holes too).
 */
export async function readSafetensorsHeader(
  handle: FileHandle,
  file: string,
  fileSize: number,
): Promise<SafetensorsHeader> {
  const label = basename(file);
  if (fileSize < 8)
    throw new FormatError(
      `${label}: the file has ${fileSize} bytes, shorter than the 8-byte header length of a safetensors file`,
    );
  const prefix = await readExactly(handle, 8, 0, () => label);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(
      `${label}: header length ${formatInteger(n)} bytes is above the cap of ${formatInteger(MAX_HEADER_BYTES)} (a corrupt or non-safetensors file)`,
    );
  }
  const headerLength = Number(n);
  if (8 + headerLength > fileSize) {
    throw new FormatError(
      `${label}: header length ${formatInteger(headerLength)} bytes runs past the end of the file (${formatInteger(fileSize)} bytes)`,
    );
  }
  const raw = await readExactly(handle, headerLength, 8, () => label);
  return parseSafetensorsHeader(raw, label, fileSize);
}

/** Validate header bytes (the JSON after the 8-byte length) of a file of `fileSize` bytes; see readSafetensorsHeader. */
export function parseSafetensorsHeader(raw: Uint8Array, label: string, fileSize: number): SafetensorsHeader {
  const headerLength = raw.byteLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new FormatError(`${label}: the header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`${label}: the header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError(
      `${label}: the header is JSON but not an object (got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json})`,
    );
  }
  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const entries: (HeaderEntry & { begin: number; end: number })[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, label);
      continue;
    }
    const where = `${label}: tensor "${name}"`;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new FormatError(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isDType(dtype))
      throw new FormatError(
        `${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZE).join(', ')})`,
      );
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(`${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new FormatError(`${where}: data_offsets [${begin}, ${end}] are reversed`);
    if (dataStart + end > fileSize) {
      throw new FormatError(
        `${where} ends at byte ${formatInteger(dataStart + end)} but the file has ${formatInteger(fileSize)}`,
      );
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_SIZE[dtype];
    if (end - begin !== expected) {
      throw new FormatError(
        `${where}: data_offsets span ${formatInteger(end - begin)} bytes but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${formatInteger(expected)}`,
      );
    }
    entries.push({
      name,
      dtype,
      shape: shape as number[],
      byteLength: expected,
      offset: dataStart + begin,
      begin,
      end,
    });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | undefined;
  for (const e of entries) {
    if (e.begin < cursor) {
      throw new FormatError(
        `${label}: tensor "${e.name}" (bytes ${formatInteger(e.begin)}–${formatInteger(e.end)} of the data section) overlaps tensor "${previous}", which ends at ${formatInteger(cursor)}`,
      );
    }
    if (e.begin > cursor) {
      throw new FormatError(
        `${label}: tensor "${e.name}" starts at byte ${formatInteger(e.begin)} of the data section, leaving a gap after byte ${formatInteger(cursor)}`,
      );
    }
    cursor = e.end;
    previous = e.name;
  }
  if (cursor !== dataSize) {
    throw new FormatError(
      `${label}: the tensors cover ${formatInteger(cursor)} bytes of the data section but it has ${formatInteger(dataSize)} (trailing bytes)`,
    );
  }
  return { metadata, entries: entries.map(({ begin: _b, end: _e, ...rest }) => rest), headerLength };
}

function parseMetadata(value: unknown, label: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FormatError(`${label}: __metadata__ is not an object`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      throw new FormatError(`${label}: __metadata__ key "${k}" is ${JSON.stringify(v)}, not a string`);
  }
  return { ...(value as Record<string, string>) };
}
