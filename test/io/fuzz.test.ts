/**
 * Seeded mutation fuzz of safetensors headers and sharded index files, through the CLI as
 * users run it (in-process, for speed; one mutant of each kind also through the binary).
 * Every mutant must end in exit 0 or 3 with one line on stderr: never an internal error
 * (exit 1), a stack trace, or a hang.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeError, exitCodeFor } from '../../src/cli/exit.js';
import { runCli } from '../helpers/run-cli.js';
import { buildFile, scratch } from './helpers.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
/** Mutants per kind; three kinds, so a few hundred in all. */
const MUTANTS = 100;
/** A mutant that takes longer than this hangs. */
const HANG_MS = 5000;

/** Deterministic generator (mulberry32), so a failing mutant reproduces from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** A valid two-tensor header and its data: the seed every mutant starts from. */
function validHeader(): Record<string, unknown> {
  return {
    __metadata__: { format: 'pt' },
    'model.layers.0.self_attn.q_proj.weight': { dtype: 'F32', shape: [4, 4], data_offsets: [0, 64] },
    'model.norm.weight': { dtype: 'BF16', shape: [4], data_offsets: [64, 72] },
  };
}

/** Odd values a field may be set to: wrong types, out of range, huge, negative, fractional. */
const ODD = [
  null,
  true,
  -1,
  0,
  1.5,
  2 ** 53,
  1e308,
  -0,
  '',
  'F32',
  'I64',
  'BOOL',
  'F8_E4M3',
  'X',
  [],
  [1],
  [0, 0],
  [-1, 8],
  [8, 0],
  [0, 1e20],
  [[1]],
  {},
  { a: 1 },
  '\u0000',
  'ü',
];

/** A structural mutation of a header object: a field changed, dropped, added or retyped. */
function mutateHeader(r: () => number): Record<string, unknown> {
  const h = validHeader();
  const names = Object.keys(h);
  const steps = 1 + Math.floor(r() * 3);
  for (let s = 0; s < steps; s++) {
    const name = pick(r, names);
    const entry = h[name] as Record<string, unknown> | undefined;
    switch (Math.floor(r() * 6)) {
      case 0:
        h[name] = pick(r, ODD);
        break;
      case 1:
        if (entry && typeof entry === 'object')
          entry[pick(r, ['dtype', 'shape', 'data_offsets', 'extra'])] = pick(r, ODD);
        break;
      case 2:
        if (entry && typeof entry === 'object') delete entry[pick(r, ['dtype', 'shape', 'data_offsets'])];
        break;
      case 3:
        h[`t${Math.floor(r() * 100)}`] = {
          dtype: pick(r, ['F32', 'F16', 'BF16', 'I8', 'U8']),
          shape: [Math.floor(r() * 5), Math.floor(r() * 5)],
          data_offsets: [Math.floor(r() * 80), Math.floor(r() * 80)],
        };
        break;
      case 4:
        if (entry && typeof entry === 'object' && Array.isArray(entry['shape']))
          (entry['shape'] as unknown[]).push(pick(r, [0, 1, 2, -3, 1e9]));
        break;
      default:
        h['__metadata__'] = pick(r, [{ format: 1 }, { format: 'pt', n: { a: 1 } }, [], 'x', null]);
    }
  }
  return h;
}

/** A byte-level mutation of a whole file: flips, insertions, truncation, a new length prefix. */
function mutateBytes(r: () => number, file: Uint8Array): Uint8Array {
  let out = new Uint8Array(file);
  switch (Math.floor(r() * 4)) {
    case 0:
      for (let k = 0; k < 1 + r() * 4; k++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
      break;
    case 1:
      out = out.subarray(0, Math.floor(r() * out.length));
      break;
    case 2: {
      const at = 8 + Math.floor(r() * (out.length - 8));
      const ins = new TextEncoder().encode(pick(r, ['{', '}', '"', ',', '[', '\\', '9e99', ':', ' ']));
      const grown = new Uint8Array(out.length + ins.length);
      grown.set(out.subarray(0, at));
      grown.set(ins, at);
      grown.set(out.subarray(at), at + ins.length);
      out = grown;
      break;
    }
    default:
      new DataView(out.buffer, out.byteOffset).setBigUint64(
        0,
        BigInt(Math.floor(r() * 2 ** 40)) * pick(r, [0n, 1n, 1n << 20n]),
        true,
      );
  }
  return out;
}

/** A mutated `model.safetensors.index.json` over two valid shards. */
function mutateIndex(r: () => number): string {
  const doc: Record<string, unknown> = {
    metadata: { total_size: 72 },
    weight_map: {
      'model.layers.0.self_attn.q_proj.weight': 'model-00001-of-00002.safetensors',
      'model.norm.weight': 'model-00002-of-00002.safetensors',
    },
  };
  const map = doc['weight_map'] as Record<string, unknown>;
  switch (Math.floor(r() * 7)) {
    case 0:
      doc['weight_map'] = pick(r, ODD);
      break;
    case 1:
      map[pick(r, Object.keys(map))] = pick(r, [
        ...ODD,
        'missing.safetensors',
        '../model-00001-of-00002.safetensors',
        '/etc/passwd',
        'model-00001-of-00002.safetensors',
      ]);
      break;
    case 2:
      map['model.extra.weight'] = 'model-00001-of-00002.safetensors';
      break;
    case 3:
      delete map['model.norm.weight'];
      break;
    case 4:
      doc['metadata'] = pick(r, ODD);
      break;
    case 5:
      return JSON.stringify(doc).slice(0, Math.floor(r() * 60));
    default:
      return pick(r, ['', 'null', '[]', '{', '{"weight_map": {}}', '\u0000']);
  }
  return JSON.stringify(doc);
}

/** Run one mutant's command in-process: its exit code and what it would print on stderr. */
async function outcome(argv: string[]): Promise<{ code: number; line: string }> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: no answer within ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    await Promise.race([runCli(argv), hang]);
    return { code: 0, line: '' };
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('hang:')) throw err;
    return { code: exitCodeFor(err), line: describeError(err) };
  } finally {
    clearTimeout(timer);
  }
}

function check(what: string, o: { code: number; line: string }): void {
  assert.ok(o.code === 0 || o.code === 3, `${what}: exit ${o.code} (${o.line})`);
  assert.ok(!o.line.includes('\n') && !/\n\s+at /.test(o.line), `${what}: more than one line: ${o.line}`);
}

const data = (): Uint8Array => {
  const d = new Uint8Array(72);
  new Float32Array(d.buffer, 0, 16).fill(0.5);
  return d;
};

test(`${MUTANTS} mutated headers (fields changed, dropped, retyped): inspect and analyze exit 0 or 3 with one line`, async () => {
  const dir = await scratch();
  const good = join(dir, 'good.safetensors');
  await writeFile(good, buildFile(validHeader(), data()));
  const r = rng(1);
  const codes = { 0: 0, 3: 0 };
  for (let i = 0; i < MUTANTS; i++) {
    const file = join(dir, `m${i}.safetensors`);
    await writeFile(file, buildFile(mutateHeader(r), data()));
    const a = await outcome(['inspect', file]);
    check(`header mutant ${i} (seed 1), inspect`, a);
    // analyze reads the tensors too: a header that opens may still point at bad bytes.
    const b = await outcome(['analyze', good, file, '--json']);
    check(`header mutant ${i} (seed 1), analyze`, b);
    codes[a.code as 0 | 3]++;
  }
  assert.ok(codes[3] > MUTANTS / 4, `most header mutants are refused (${codes[3]} of ${MUTANTS})`);
});

test(`${MUTANTS} byte-level mutants (flips, truncation, insertions, length prefix): exit 0 or 3 with one line`, async () => {
  const dir = await scratch();
  const good = join(dir, 'good.safetensors');
  const valid = buildFile(validHeader(), data());
  await writeFile(good, valid);
  const r = rng(2);
  for (let i = 0; i < MUTANTS; i++) {
    const file = join(dir, `b${i}.safetensors`);
    await writeFile(file, mutateBytes(r, valid));
    check(`byte mutant ${i} (seed 2), inspect`, await outcome(['inspect', file]));
    check(`byte mutant ${i} (seed 2), analyze`, await outcome(['analyze', good, file, '--json']));
  }
});

test(`${MUTANTS} mutated index files: exit 0 or 3 with one line`, async () => {
  const dir = await scratch();
  const r = rng(3);
  const shards = async (folder: string) => {
    await mkdir(folder, { recursive: true });
    const h = validHeader();
    const first = { 'model.layers.0.self_attn.q_proj.weight': h['model.layers.0.self_attn.q_proj.weight'] };
    const second = { 'model.norm.weight': { dtype: 'BF16', shape: [4], data_offsets: [0, 8] } };
    await writeFile(join(folder, 'model-00001-of-00002.safetensors'), buildFile(first, data().subarray(0, 64)));
    await writeFile(join(folder, 'model-00002-of-00002.safetensors'), buildFile(second, data().subarray(64)));
  };
  const good = join(dir, 'good');
  await shards(good);
  await writeFile(
    join(good, 'model.safetensors.index.json'),
    JSON.stringify({
      weight_map: {
        'model.layers.0.self_attn.q_proj.weight': 'model-00001-of-00002.safetensors',
        'model.norm.weight': 'model-00002-of-00002.safetensors',
      },
    }),
  );
  assert.equal((await outcome(['inspect', good])).code, 0, 'the unmutated index opens');
  for (let i = 0; i < MUTANTS; i++) {
    const folder = join(dir, `i${i}`);
    await shards(folder);
    await writeFile(join(folder, 'model.safetensors.index.json'), mutateIndex(r));
    check(`index mutant ${i} (seed 3), inspect`, await outcome(['inspect', folder]));
    check(`index mutant ${i} (seed 3), analyze`, await outcome(['analyze', good, folder, '--json']));
  }
});

test('through the binary, a mutant header is one line on stderr and exit 3', async () => {
  const dir = await scratch();
  const file = join(dir, 'bad.safetensors');
  const h = validHeader();
  (h['model.norm.weight'] as Record<string, unknown>)['data_offsets'] = [64, 1e20];
  await writeFile(file, buildFile(h, data()));
  const run = spawnSync(process.execPath, ['--import', 'tsx', BIN, 'inspect', file], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(run.status, 3, run.stderr);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.match(run.stderr, /^deltarank: .*bad\.safetensors/);
});
