/**
 * ΔW = tuned − base with ‖base‖_F² and ‖ΔW‖_F², in one SIMD pass of WebAssembly over a memory
 * the tensors are read into. It replaces three passes of plain JS over a tensor (widen each side
 * from bf16, then subtract and sum): on a TinyLlama-sized pair those took ≈ 11 s of the 30 s of
 * an extraction. The module is a few hundred bytes written here by hand, like the ONNX models of
 * the GEMM engine, so there is no build step and no dependency. Its source in WebAssembly's text
 * format is delta-kernel.wat beside this file; a test assembles it and compares the bytes.
 *
 * Sums are accumulated in f64 from the exact f64 squares of f32 values, as the plain loop does.
 */

/** Bytes at the start of the memory: the two sums written by the kernels (f64 each). */
const HEADER = 64;
const PAGE = 65536;
/** wasm32 addresses: 4 GiB of memory at most. */
const MAX_BYTES = 2 ** 32;

// Opcodes (WebAssembly core and fixed-width SIMD).
const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;
const BLOCK = 0x02;
const LOOP = 0x03;
const VOID = 0x40;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const GET = 0x20;
const SET = 0x21;
const TEE = 0x22;
const I32_LOAD16_U = 0x2f;
const F32_LOAD = 0x2a;
const F32_STORE = 0x38;
const F64_STORE = 0x39;
const I32_CONST = 0x41;
const I32_GE_U = 0x4f;
const I32_ADD = 0x6a;
const I32_AND = 0x71;
const I32_SHL = 0x74;
const F32_SUB = 0x93;
const F64_ADD = 0xa0;
const F64_MUL = 0xa2;
const F64_PROMOTE = 0xbb;
const F32_REINTERPRET = 0xbe;
const SIMD = 0xfd;

function leb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** Signed LEB128 of a small i32 constant. */
function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const simd = (op: number, ...imm: number[]) => [SIMD, ...leb(op), ...imm];
const v128Load = (offset: number) => simd(0x00, 0, ...leb(offset));
const v128Store = (offset: number) => simd(0x0b, 0, ...leb(offset));
const shuffleHighToLow = simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
const EXTEND_LOW_U16 = simd(0xa9);
const EXTEND_HIGH_U16 = simd(0xaa);
const I32X4_SHL = simd(0xab);
const F32X4_SUB = simd(0xe5);
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);
const F64X2_PROMOTE_LOW = simd(0x5f);
const F64X2_EXTRACT = (lane: number) => simd(0x21, lane);

/** addr + index·size (i32, wrapping as wasm addresses do). */
const address = (addr: number, index: number, size: number) => [
  GET,
  addr,
  GET,
  index,
  I32_CONST,
  ...sleb(size === 2 ? 1 : 2),
  I32_SHL,
  I32_ADD,
];

/** acc += promote(x)² over the four f32 lanes of local x: two f64x2 accumulators, low and high lanes. */
function accumulate(x: number, accLow: number, accHigh: number): number[] {
  return [
    GET,
    accLow,
    GET,
    x,
    ...F64X2_PROMOTE_LOW,
    TEE,
    TMP_F64X2,
    GET,
    TMP_F64X2,
    ...F64X2_MUL,
    ...F64X2_ADD,
    SET,
    accLow,
    GET,
    accHigh,
    GET,
    x,
    GET,
    x,
    ...shuffleHighToLow,
    ...F64X2_PROMOTE_LOW,
    TEE,
    TMP_F64X2,
    GET,
    TMP_F64X2,
    ...F64X2_MUL,
    ...F64X2_ADD,
    SET,
    accHigh,
  ];
}

/** sum += promote(x)² for the f32 local x. */
const scalarAccumulate = (x: number, sum: number) => [
  GET,
  sum,
  GET,
  x,
  F64_PROMOTE,
  GET,
  x,
  F64_PROMOTE,
  F64_MUL,
  F64_ADD,
  SET,
  sum,
];

/** Store (lane 0 + lane 1 of both accumulators) + scalar sum at memory offset `at`. */
const storeSum = (at: number, accLow: number, accHigh: number, sum: number) => [
  I32_CONST,
  ...sleb(at),
  GET,
  accLow,
  ...F64X2_EXTRACT(0),
  GET,
  accLow,
  ...F64X2_EXTRACT(1),
  F64_ADD,
  GET,
  accHigh,
  ...F64X2_EXTRACT(0),
  GET,
  accHigh,
  ...F64X2_EXTRACT(1),
  F64_ADD,
  F64_ADD,
  GET,
  sum,
  F64_ADD,
  F64_STORE,
  3,
  0,
];

// Locals shared by both functions: params first, then these (indices fixed below).
// delta_bf16(base, tuned, out, n); delta_f32(base, tuned, out, n) with out = tuned allowed.
const P_BASE = 0;
const P_TUNED = 1;
const P_OUT = 2;
const P_N = 3;
const L_I = 4;
const L_VECTOR_END = 5;
const L_XB = 6; // v128: base lanes
const L_XT = 7; // v128: tuned lanes, then ΔW lanes
const L_RAW_B = 8; // v128: 8 raw bf16 values of base
const L_RAW_T = 9;
const ACC_B_LOW = 10;
const ACC_B_HIGH = 11;
const ACC_D_LOW = 12;
const ACC_D_HIGH = 13;
const TMP_F64X2 = 14;
const S_B = 15; // f64 scalar sums of the tail
const S_D = 16;
const F_B = 17; // f32 scalars of the tail
const F_T = 18;
const LOCALS = [
  [2, I32],
  [9, V128],
  [2, F64],
  [2, F32],
] as const;

/** ΔW lanes = XT − XB, stored at out + 4·(i + lane0), both sums accumulated. */
function subtractStoreAccumulate(storeOffset: number): number[] {
  return [
    GET,
    L_XT,
    GET,
    L_XB,
    ...F32X4_SUB,
    SET,
    L_XT,
    ...address(P_OUT, L_I, 4),
    GET,
    L_XT,
    ...v128Store(storeOffset),
    ...accumulate(L_XB, ACC_B_LOW, ACC_B_HIGH),
    ...accumulate(L_XT, ACC_D_LOW, ACC_D_HIGH),
  ];
}

/** `while (i < end) { body; i += step }`, i continuing from where the last loop left it. */
function loop(end: number, step: number, body: number[]): number[] {
  return [
    BLOCK,
    VOID,
    LOOP,
    VOID,
    GET,
    L_I,
    GET,
    end,
    I32_GE_U,
    BR_IF,
    1,
    ...body,
    GET,
    L_I,
    I32_CONST,
    ...sleb(step),
    I32_ADD,
    SET,
    L_I,
    BR,
    0,
    END,
    END,
  ];
}

/** The scalar tail: i from the vector end to n, one element at a time. */
function tail(load: (ptr: number) => number[]): number[] {
  return loop(P_N, 1, [
    ...load(P_BASE),
    SET,
    F_B,
    ...load(P_TUNED),
    GET,
    F_B,
    F32_SUB,
    SET,
    F_T,
    ...address(P_OUT, L_I, 4),
    GET,
    F_T,
    F32_STORE,
    2,
    0,
    ...scalarAccumulate(F_B, S_B),
    ...scalarAccumulate(F_T, S_D),
  ]);
}

/** The vector loop's end: n rounded down to a multiple of the step (locals start at zero, sums too). */
const prologue = (step: number) => [GET, P_N, I32_CONST, ...sleb(-step), I32_AND, SET, L_VECTOR_END];

const epilogue = [...storeSum(0, ACC_B_LOW, ACC_B_HIGH, S_B), ...storeSum(8, ACC_D_LOW, ACC_D_HIGH, S_D)];

/**
 * delta_bf16: 8 values a step. Loads both sides' raw bf16 before storing, so `tuned` may sit in
 * the upper half of `out` (out + 2n): a step writes out[4i, 4i + 32) while the first value not yet
 * read is at out + 2n + 2i + 16, and i ≤ n − 8.
 */
function deltaBf16Body(): number[] {
  const widen = (raw: number, extend: number[], into: number) => [
    GET,
    raw,
    ...extend,
    I32_CONST,
    16,
    ...I32X4_SHL,
    SET,
    into,
  ];
  const loadBf16 = (ptr: number) => [
    ...address(ptr, L_I, 2),
    I32_LOAD16_U,
    1,
    0,
    I32_CONST,
    16,
    I32_SHL,
    F32_REINTERPRET,
  ];
  return [
    ...prologue(8),
    ...loop(L_VECTOR_END, 8, [
      ...address(P_BASE, L_I, 2),
      ...v128Load(0),
      SET,
      L_RAW_B,
      ...address(P_TUNED, L_I, 2),
      ...v128Load(0),
      SET,
      L_RAW_T,
      ...widen(L_RAW_B, EXTEND_LOW_U16, L_XB),
      ...widen(L_RAW_T, EXTEND_LOW_U16, L_XT),
      ...subtractStoreAccumulate(0),
      ...widen(L_RAW_B, EXTEND_HIGH_U16, L_XB),
      ...widen(L_RAW_T, EXTEND_HIGH_U16, L_XT),
      ...subtractStoreAccumulate(16),
    ]),
    ...tail(loadBf16),
    ...epilogue,
  ];
}

/** delta_f32: 4 values a step; `out` may equal `tuned` (each step reads before it writes the same lanes). */
function deltaF32Body(): number[] {
  const loadF32 = (ptr: number) => [...address(ptr, L_I, 4), F32_LOAD, 2, 0];
  return [
    ...prologue(4),
    ...loop(L_VECTOR_END, 4, [
      ...address(P_BASE, L_I, 4),
      ...v128Load(0),
      SET,
      L_XB,
      ...address(P_TUNED, L_I, 4),
      ...v128Load(0),
      SET,
      L_XT,
      ...subtractStoreAccumulate(0),
    ]),
    ...tail(loadF32),
    ...epilogue,
  ];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...leb(payload.length), ...payload];
}

function vector(items: number[][]): number[] {
  return [...leb(items.length), ...items.flat()];
}

const name = (s: string) => [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

function functionBody(code: number[]): number[] {
  const body = [...vector(LOCALS.map(([count, type]) => [...leb(count), type])), ...code, END];
  return [...leb(body.length), ...body];
}

/** The module's bytes: imports memory "k"."memory", exports delta_bf16 and delta_f32. */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const signature = [0x60, ...vector([[I32], [I32], [I32], [I32]]), 0];
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector([signature])),
    ...section(2, vector([[...name('k'), ...name('memory'), 0x02, 0x00, ...leb(1)]])),
    ...section(3, vector([[0], [0]])),
    ...section(
      7,
      vector([
        [...name('delta_bf16'), 0x00, 0],
        [...name('delta_f32'), 0x00, 1],
      ]),
    ),
    ...section(10, vector([functionBody(deltaBf16Body()), functionBody(deltaF32Body())])),
  ]);
}

let compiled: WebAssembly.Module | undefined;

/**
 * A memory holding two regions of `capacity` f32 values each (base and tuned), with the kernels
 * bound to it. `base` and `tuned` view the regions; ΔW is written over `tuned`. The kernels trust
 * n ≤ base.length: a larger n would run one region into the other.
 */
export interface DeltaKernel {
  base: Float32Array;
  tuned: Float32Array;
  /** base bf16 in base[0, 2n) bytes, tuned bf16 in the upper half of tuned's first 4n bytes → ΔW in tuned. */
  subtractBf16(n: number): { baseSq: number; deltaSq: number };
  /** base f32 and tuned f32 in the regions' first n values → ΔW in tuned. */
  subtractF32(n: number): { baseSq: number; deltaSq: number };
}

/** A kernel for tensors of up to `capacity` values, or null where they do not fit wasm32's 4 GiB. */
export function deltaKernel(capacity: number): DeltaKernel | null {
  const region = Math.ceil((4 * capacity) / 16) * 16;
  const bytes = HEADER + 2 * region;
  if (bytes > MAX_BYTES) return null;
  compiled ??= new WebAssembly.Module(moduleBytes());
  const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
  const exports = new WebAssembly.Instance(compiled, { k: { memory } }).exports as {
    delta_bf16: (base: number, tuned: number, out: number, n: number) => void;
    delta_f32: (base: number, tuned: number, out: number, n: number) => void;
  };
  const baseAt = HEADER;
  const tunedAt = HEADER + region;
  const sums = new Float64Array(memory.buffer, 0, 2);
  const result = () => ({ baseSq: sums[0]!, deltaSq: sums[1]! });
  return {
    base: new Float32Array(memory.buffer, baseAt, capacity),
    tuned: new Float32Array(memory.buffer, tunedAt, capacity),
    subtractBf16(n) {
      exports.delta_bf16(baseAt, tunedAt + 2 * n, tunedAt, n);
      return result();
    },
    subtractF32(n) {
      exports.delta_f32(baseAt, tunedAt, tunedAt, n);
      return result();
    },
  };
}
