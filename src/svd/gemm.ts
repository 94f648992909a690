/**
 * Matrix products C = op(A)·op(B) on row-major f32 matrices.
 *
 * The engine is chosen once, on the first product: onnxruntime-node (one-node MatMul/Gemm
 * sessions built by `onnx-model.ts` with symbolic sizes, so one session per operator and
 * transpose flags serves every shape; inputs are wrapped, not copied), or the plain loop below
 * when that package cannot load. `DELTARANK_GEMM=plain` forces the plain loop.
 *
 * Per call: MatMul when neither operand is transposed (≈ 220–240 GFLOP/s at 4096³ on 2 cores),
 * Gemm with its transA/transB attributes otherwise. Gemm transposing the big operand of a
 * thin product is the slow case (Aᵀ·Q, A 4096², Q 4096×74: 16 ms against 12 ms for MatMul
 * Qᵀ·A), so the SVD code keeps thin blocks transposed and only ever asks for Qᵀ·A (MatMul)
 * and Pᵀ·Aᵀ (Gemm transB, as fast as MatMul or faster there). Products with outputs over 8 MB
 * run in row blocks (`runProduct`: the binding returns each output as a copy in fresh memory).
 */
import { availableParallelism } from 'node:os';
import { ShapeError } from '../errors.js';
import type { Matrix, Matrix64 } from './matrix.js';
import { type ProductKind, productModel, residualModel, updateModel } from './onnx-model.js';

export interface MatmulOptions {
  /** Use Aᵀ in place of A (no copy is made). */
  transA?: boolean;
  /** Use Bᵀ in place of B (no copy is made). */
  transB?: boolean;
}

/** The engine in use, for `--version` and `inspect --json`. */
export interface GemmEngineInfo {
  /** 'onnxruntime-node' or 'plain'. */
  name: string;
  /** Version and threads, or why the fast engine is not in use. */
  detail: string;
}

/**
 * Products with m·n·k below this run in the plain loop. A session call costs ≈ 15 µs; measured
 * on 2 cores, the two tie at 16³ (14 vs 16 µs) and onnxruntime wins from there on (32³: 20 vs
 * 86 µs; 10×1000×10: 24 vs 265 µs).
 */
const SMALL_PRODUCT = 4096;

type OrtModule = typeof import('onnxruntime-node');
type Session = Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;

interface OrtEngine {
  ort: OrtModule;
  threads: number;
  sessions: Map<string, Promise<Session>>;
}

let engine: Promise<{ info: GemmEngineInfo; ort: OrtEngine | null }> | null = null;

function loadEngine(): Promise<{ info: GemmEngineInfo; ort: OrtEngine | null }> {
  engine ??= (async () => {
    if (process.env['DELTARANK_GEMM'] === 'plain') {
      return { info: { name: 'plain', detail: 'plain TypeScript loop (DELTARANK_GEMM=plain)' }, ort: null };
    }
    try {
      const ort = await import('onnxruntime-node');
      raiseTrimThreshold();
      const threads = availableParallelism();
      const ortEngine: OrtEngine = { ort, threads, sessions: new Map() };
      // Fail here, not on the first big product, if the native binding cannot run a model.
      await productSession(ortEngine, { op: 'MatMul', transA: false, transB: false });
      const version = ort.env.versions?.node ?? 'unknown version';
      return { info: { name: 'onnxruntime-node', detail: `${version}, ${threads} threads` }, ort: ortEngine };
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      return {
        info: { name: 'plain', detail: `plain TypeScript loop (onnxruntime-node unavailable: ${why})` },
        ort: null,
      };
    }
  })();
  return engine;
}

/**
 * The binding hands every output back as a copy in fresh memory (`OUTPUT_BLOCK_BYTES` blocks),
 * freed when V8 collects it, tens of MB at a time. glibc's malloc trims such a batch off its heap,
 * and the next copies fault their pages in again (≈ 10 µs a page on virtual machines: the first
 * all-σ of 11008×4096 in a process faulted 1.1–1.6 GB, about half of it these copies). glibc sets
 * its trim threshold to twice the largest mmap-served block freed so far, up to 2·32 MiB: this
 * buffer (never touched, so it costs no faults) is such a block once collected, and the copies are
 * reused from then on (480 MB of 8 MB outputs: 0–60 MB faulted against 330–450 MB). Elsewhere
 * than glibc it is a buffer allocated and dropped.
 */
function raiseTrimThreshold(): void {
  new ArrayBuffer(31 * 2 ** 20);
}

/**
 * When set by `shareCores`: how many product-running threads of this process are busy now (a
 * counter they share). Each product then takes cores / busy threads, so that spectra computed side
 * by side in worker threads do not oversubscribe the cores (2 cores, eight 2048² spectra two at a
 * time: 6.2 s at one thread each against 8.2 s at two).
 */
let busyThreads: Int32Array | null = null;

/**
 * Share the cores with the other threads counting themselves in `busy` (an Int32Array on a
 * SharedArrayBuffer, entry 0): from now on each product of this thread runs on
 * max(1, ⌊cores / busy⌋) threads, read when the product starts.
 * @example shareCores(new Int32Array(workerData.busy));
 */
export function shareCores(busy: Int32Array): void {
  busyThreads = busy;
}

/** Threads the next product runs on. */
function productThreads(e: OrtEngine): number {
  if (busyThreads === null) return e.threads;
  return Math.max(1, Math.floor(e.threads / Math.max(1, Atomics.load(busyThreads, 0))));
}

function productSession(e: OrtEngine, kind: ProductKind): Promise<Session> {
  return sessionFor(e, `${kind.op}:${kind.transA ? 1 : 0}${kind.transB ? 1 : 0}${kind.double ? ':f64' : ''}`, () =>
    productModel(kind),
  );
}

/** The session of a model, built once per key and thread count. */
function sessionFor(e: OrtEngine, model: string, bytes: () => Uint8Array): Promise<Session> {
  const threads = productThreads(e);
  const key = `${model}@${threads}`;
  let s = e.sessions.get(key);
  if (s === undefined) {
    // No spinning: idle pool threads otherwise busy-wait after each product and take the core
    // the JS between products runs on (a 4096² top-64 SVD: 145–225 ms without, 250–660 ms with,
    // alternating runs on 2 busy cores).
    s = e.ort.InferenceSession.create(bytes(), {
      intraOpNumThreads: threads,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    e.sessions.set(key, s);
  }
  return s;
}

/**
 * Which engine products run on. Chooses it on the first call (loading onnxruntime-node, ≈ 0.1 s).
 * @example const { name, detail } = await gemmEngine(); // 'onnxruntime-node', '1.30.0, 2 threads'
 */
export async function gemmEngine(): Promise<GemmEngineInfo> {
  return (await loadEngine()).info;
}

/**
 * Release the onnxruntime sessions; the next product builds them again. A process need not call
 * it to exit (the sessions hold no event-loop handles), it only returns their memory.
 */
export async function releaseGemm(): Promise<void> {
  const current = engine;
  engine = null;
  if (current === null) return;
  const { ort } = await current;
  if (ort === null) return;
  for (const s of ort.sessions.values()) await (await s).release();
}

/**
 * C = op(A)·op(B), f32, a new matrix [m, n]. Cost 2·m·n·k flops: ≈ 200 GFLOP/s through
 * onnxruntime-node on large products (MatMul without transposes, Gemm with its transA/transB
 * attributes otherwise, so a transposed operand is never copied).
 * @example const c = await matmul(a, b, { transA: true }); // Aᵀ·B
 */
export async function matmul(
  a: Matrix,
  b: Matrix,
  { transA = false, transB = false }: MatmulOptions = {},
): Promise<Matrix> {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const kb = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (k !== kb) throw new ShapeError(`matmul: inner sizes differ (${m}×${k} by ${kb}×${n})`);
  if (a.data.length !== a.rows * a.cols || b.data.length !== b.rows * b.cols) {
    throw new ShapeError(`matmul: data length does not match ${a.rows}×${a.cols} or ${b.rows}×${b.cols}`);
  }
  if (m * n * k < SMALL_PRODUCT) return matmulPlain(a, b, { transA, transB });
  const { ort } = await loadEngine();
  if (ort === null) return matmulPlain(a, b, { transA, transB });
  const session = await productSession(ort, { op: transA || transB ? 'Gemm' : 'MatMul', transA, transB });
  const data = await runProduct(ort, session, 'float32', a, b, { m, n, transA });
  return { rows: m, cols: n, data: data as Float32Array };
}

/**
 * The most output bytes one session call hands back. onnxruntime-node returns every output as a
 * copy in fresh memory, even one it wrote into a given buffer, and a copy of hundreds of MB costs
 * more in page faults than the product (f64 4096×512×4096: 453 ms in one call, 164 ms in 64-row
 * calls; all σ of 11008×4096 30.5 s against 17.3 s at 8 MB). Larger products run in row blocks of
 * A, each written into its place in the result, so the copies stay small and their memory is reused.
 */
export const OUTPUT_BLOCK_BYTES = 8 * 2 ** 20;

/**
 * op(A)·op(B) [m, n] through `session` (a product, or with `c` [m, n] the update C − op(A)·op(B)),
 * into `into` (at least m·n values) or a new array: in row blocks of A (and C) when the output
 * passes OUTPUT_BLOCK_BYTES and A is not transposed (rows of Aᵀ are not contiguous; those
 * products are thin), else in one call.
 */
async function runProduct(
  ort: OrtEngine,
  session: Session,
  type: 'float32' | 'float64',
  a: Matrix | Matrix64,
  b: Matrix | Matrix64,
  { m, n, transA, c, into }: { m: number; n: number; transA: boolean; c?: Matrix64; into?: Float64Array },
): Promise<Float32Array | Float64Array> {
  const T = ort.ort.Tensor;
  const B = new T(type, b.data, [b.rows, b.cols]);
  const width = type === 'float64' ? 8 : 4;
  const rowsPerCall = transA ? m : Math.max(1, Math.floor(OUTPUT_BLOCK_BYTES / (width * n)));
  const rowsOf = (x: Matrix | Matrix64, r0: number, r: number) =>
    new T(type, x.data.subarray(r0 * x.cols, (r0 + r) * x.cols), [r, x.cols]);
  const feeds = (r0: number, r: number) => ({
    A: transA ? new T(type, a.data, [a.rows, a.cols]) : rowsOf(a, r0, r),
    B,
    ...(c ? { C: rowsOf(c, r0, r) } : {}),
  });
  // One call and no output given: the binding's copy is the result.
  if (rowsPerCall >= m && into === undefined)
    return (await session.run(feeds(0, m)))['Y']!.data as Float32Array | Float64Array;
  const out = into?.subarray(0, m * n) ?? (type === 'float64' ? new Float64Array(m * n) : new Float32Array(m * n));
  for (let r0 = 0; r0 < m; r0 += rowsPerCall) {
    const r = Math.min(rowsPerCall, m - r0);
    await session.run(feeds(r0, r), { Y: new T(type, out.subarray(r0 * n, (r0 + r) * n), [r, n]) });
  }
  return out;
}

/**
 * ‖C − op(A)·op(B)‖_F² without handing the product back: onnxruntime subtracts it as the Gemm
 * forms it (alpha = −1, beta = 1 on C) and sums each row's squares, in f32 over one row; the rows
 * are summed here in f64. The plain engine forms the product and sums in f64 throughout.
 * @example const errSq = await residualSquares(delta, b, a); // ‖ΔW − B·A‖_F²
 */
export async function residualSquares(
  c: Matrix,
  a: Matrix,
  b: Matrix,
  { transA = false, transB = false }: MatmulOptions = {},
): Promise<number> {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const kb = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (k !== kb || c.rows !== m || c.cols !== n)
    throw new ShapeError(`residualSquares: ${c.rows}×${c.cols} minus a ${m}×${k} by ${kb}×${n} product`);
  const { ort } = await loadEngine();
  if (ort === null || m * n * k < SMALL_PRODUCT) {
    const p = matmulPlain(a, b, { transA, transB }).data;
    let sq = 0;
    for (let i = 0; i < p.length; i++) sq += (c.data[i]! - p[i]!) ** 2;
    return sq;
  }
  const session = await sessionFor(ort, `residual:${transA ? 1 : 0}${transB ? 1 : 0}`, () =>
    residualModel({ transA, transB }),
  );
  const T = ort.ort.Tensor;
  const out = await session.run({
    A: new T('float32', a.data, [a.rows, a.cols]),
    B: new T('float32', b.data, [b.rows, b.cols]),
    C: new T('float32', c.data, [m, n]),
  });
  const rows = out['Y']!.data as Float32Array;
  let sq = 0;
  for (let i = 0; i < rows.length; i++) sq += rows[i]!;
  return sq;
}

/** The plain-JS product: exact reference and fallback. Accumulates in f64 per output row. */
export function matmulPlain(a: Matrix, b: Matrix, { transA = false, transB = false }: MatmulOptions = {}): Matrix {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const kb = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (k !== kb) throw new ShapeError(`matmul: inner sizes differ (${m}×${k} by ${kb}×${n})`);
  const out = new Float32Array(m * n);
  const row = new Float64Array(n);
  const A = a.data;
  const Bd = b.data;
  for (let i = 0; i < m; i++) {
    if (transB) {
      // Row i of C: dot products of row i of op(A) with the rows of B, both contiguous when !transA.
      for (let j = 0; j < n; j++) {
        let s = 0;
        const boff = j * b.cols;
        if (transA) for (let p = 0; p < k; p++) s += A[p * a.cols + i]! * Bd[boff + p]!;
        else {
          const aoff = i * a.cols;
          for (let p = 0; p < k; p++) s += A[aoff + p]! * Bd[boff + p]!;
        }
        row[j] = s;
      }
    } else {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const aip = transA ? A[p * a.cols + i]! : A[i * a.cols + p]!;
        if (aip === 0) continue;
        const off = p * b.cols;
        for (let j = 0; j < n; j++) row[j]! += aip * Bd[off + j]!;
      }
    }
    out.set(row, i * n);
  }
  return { rows: m, cols: n, data: out };
}

/** Output sizes of op(A)·op(B), or a ShapeError. */
function productDims(
  a: { rows: number; cols: number; data: ArrayLike<number> },
  b: typeof a,
  transA: boolean,
  transB: boolean,
  what: string,
): { m: number; n: number; k: number } {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const kb = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (k !== kb) throw new ShapeError(`${what}: inner sizes differ (${m}×${k} by ${kb}×${n})`);
  if (a.data.length !== a.rows * a.cols || b.data.length !== b.rows * b.cols)
    throw new ShapeError(`${what}: data length does not match ${a.rows}×${a.cols} or ${b.rows}×${b.cols}`);
  return { m, n, k };
}

/**
 * C = op(A)·op(B) in f64, [m, n]: the products of the f64 reductions (complete spectra at full
 * accuracy). onnxruntime-node's double MatMul (≈ 100 GFLOP/s at 4096³ on 2 cores, less than half
 * the f32 rate; ≈ 100 at inner size 512 when run in row blocks) or Gemm with a transpose, or the
 * plain loop. With `into` (at least m·n values) C is written at its start instead of a new
 * array: a big product repeated on shrinking sizes then costs no fresh pages each time.
 * @example const c = await matmul64(v, s, { transA: true }); // Vᵀ·S
 */
export async function matmul64(
  a: Matrix64,
  b: Matrix64,
  { transA = false, transB = false, into }: MatmulOptions & { into?: Float64Array } = {},
): Promise<Matrix64> {
  const { m, n, k } = productDims(a, b, transA, transB, 'matmul64');
  if (into !== undefined && into.length < m * n)
    throw new ShapeError(`matmul64: an output of ${into.length} values for a ${m}×${n} product`);
  const { ort } = await loadEngine();
  if (ort === null || m * n * k < SMALL_PRODUCT) {
    const c = matmulPlain64(a, b, { transA, transB });
    if (into === undefined) return c;
    const data = into.subarray(0, m * n);
    data.set(c.data);
    return { rows: m, cols: n, data };
  }
  const op = transA || transB ? 'Gemm' : 'MatMul';
  const session = await productSession(ort, { op, transA, transB, double: true });
  const data = await runProduct(ort, session, 'float64', a, b, { m, n, transA, ...(into ? { into } : {}) });
  return { rows: m, cols: n, data: data as Float64Array };
}

/**
 * C − op(A)·op(B) in f64, [m, n] (C is not changed): one onnxruntime-node call (`updateModel`),
 * or the plain loop. A new matrix, or with `into` (at least m·n values,
 * not overlapping C, A or B) written at its start.
 * @example const s2 = await subtractProduct64(s, v, w); // S − V·W
 */
export async function subtractProduct64(
  c: Matrix64,
  a: Matrix64,
  b: Matrix64,
  { transA = false, transB = false, into }: MatmulOptions & { into?: Float64Array } = {},
): Promise<Matrix64> {
  const { m, n, k } = productDims(a, b, transA, transB, 'subtractProduct64');
  if (c.rows !== m || c.cols !== n || c.data.length !== m * n)
    throw new ShapeError(`subtractProduct64: ${c.rows}×${c.cols} minus a ${m}×${n} product`);
  if (into !== undefined && into.length < m * n)
    throw new ShapeError(`subtractProduct64: an output of ${into.length} values for a ${m}×${n} product`);
  const { ort } = await loadEngine();
  if (ort === null || m * n * k < SMALL_PRODUCT) {
    const p = matmulPlain64(a, b, { transA, transB }).data;
    const out = into?.subarray(0, m * n) ?? new Float64Array(m * n);
    for (let i = 0; i < out.length; i++) out[i] = c.data[i]! - p[i]!;
    return { rows: m, cols: n, data: out };
  }
  const session = await sessionFor(ort, `update:${transA ? 1 : 0}${transB ? 1 : 0}`, () =>
    updateModel({ transA, transB }),
  );
  const data = await runProduct(ort, session, 'float64', a, b, { m, n, transA, c, ...(into ? { into } : {}) });
  return { rows: m, cols: n, data: data as Float64Array };
}

/** The plain f64 product (fallback and reference). */
export function matmulPlain64(
  a: Matrix64,
  b: Matrix64,
  { transA = false, transB = false }: MatmulOptions = {},
): Matrix64 {
  const { m, n, k } = productDims(a, b, transA, transB, 'matmulPlain64');
  const out = new Float64Array(m * n);
  const A = a.data;
  const B = b.data;
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let p = 0; p < k; p++) {
      const aip = transA ? A[p * a.cols + i]! : A[i * a.cols + p]!;
      if (aip === 0) continue;
      if (transB) for (let j = 0; j < n; j++) out[o + j]! += aip * B[j * b.cols + p]!;
      else {
        const off = p * b.cols;
        for (let j = 0; j < n; j++) out[o + j]! += aip * B[off + j]!;
      }
    }
  }
  return { rows: m, cols: n, data: out };
}
