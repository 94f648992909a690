/**
 * The ONNX models of the GEMM engine are protobuf bytes written by hand (src/svd/onnx-model.ts).
 * Here a protobuf reader written from onnx.proto, sharing no code with it, decodes each model and
 * checks its graph: operators, attributes (Gemm's alpha = −1 in the residual), symbolic shapes,
 * opset. onnxruntime itself then loads each model, reports the same inputs and outputs, and
 * computes what the graph says on a small case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { productModel, residualModel } from '../../src/svd/onnx-model.js';

type Field = { field: number; wire: number; value: bigint | Uint8Array | number };

/** Protobuf wire format: (field << 3 | wire type) varint keys; varint, 64-bit, length-delimited and 32-bit values. */
function decode(bytes: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      assert.ok(p < bytes.length, 'varint runs past the end');
      const b = bytes[p++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (p < bytes.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 2) {
      const n = Number(varint());
      assert.ok(p + n <= bytes.length, `field ${field}: ${n} bytes past the end`);
      out.push({ field, wire, value: bytes.subarray(p, p + n) });
      p += n;
    } else if (wire === 5) {
      out.push({ field, wire, value: new DataView(bytes.buffer, bytes.byteOffset + p, 4).getFloat32(0, true) });
      p += 4;
    } else if (wire === 1) {
      p += 8;
      out.push({ field, wire, value: 0 });
    } else assert.fail(`wire type ${wire} of field ${field}`);
  }
  return out;
}

const text = new TextDecoder('utf-8', { fatal: true });
const all = (fs: Field[], n: number) => fs.filter((f) => f.field === n);
const one = (fs: Field[], n: number) => {
  const got = all(fs, n);
  assert.equal(got.length, 1, `field ${n} appears ${got.length} times`);
  return got[0]!;
};
const str = (f: Field) => text.decode(f.value as Uint8Array);
const msg = (f: Field) => decode(f.value as Uint8Array);
const int = (f: Field) => Number(f.value as bigint);

interface Graph {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  name: string;
  nodes: { op: string; inputs: string[]; outputs: string[]; attrs: Record<string, number | number[]> }[];
  inputs: { name: string; elem: number; dims: string[] }[];
  outputs: { name: string; elem: number; dims: string[] }[];
}

// onnx.proto field numbers: ModelProto ir_version 1, graph 7, opset_import 8; OperatorSetIdProto domain 1,
// version 2; GraphProto node 1, name 2, input 11, output 12; NodeProto input 1, output 2, op_type 4,
// attribute 5; AttributeProto name 1, f 2, i 3, ints 8, type 20 (FLOAT 1, INT 2, INTS 7);
// ValueInfoProto name 1, type 2; TypeProto tensor_type 1; Tensor elem_type 1, shape 2;
// TensorShapeProto dim 1; Dimension dim_value 1, dim_param 2.
function readModel(bytes: Uint8Array): Graph {
  const m = decode(bytes);
  const g = msg(one(m, 7));
  const valueInfo = (f: Field) => {
    const v = msg(f);
    const tensor = msg(one(msg(one(v, 2)), 1));
    const dims = all(msg(one(tensor, 2)), 1).map((d) => str(one(msg(d), 2)));
    return { name: str(one(v, 1)), elem: int(one(tensor, 1)), dims };
  };
  return {
    irVersion: int(one(m, 1)),
    opsets: all(m, 8).map((f) => {
      const o = msg(f);
      return { domain: all(o, 1).length ? str(one(o, 1)) : '', version: int(one(o, 2)) };
    }),
    name: str(one(g, 2)),
    nodes: all(g, 1).map((f) => {
      const n = msg(f);
      const attrs: Record<string, number | number[]> = {};
      for (const a of all(n, 5).map(msg)) {
        const type = int(one(a, 20));
        const name = str(one(a, 1));
        if (type === 1) attrs[name] = one(a, 2).value as number;
        else if (type === 2) attrs[name] = int(one(a, 3));
        else if (type === 7) attrs[name] = all(a, 8).map(int);
        else assert.fail(`attribute ${name}: type ${type}`);
      }
      return { op: str(one(n, 4)), inputs: all(n, 1).map(str), outputs: all(n, 2).map(str), attrs };
    }),
    inputs: all(g, 11).map(valueInfo),
    outputs: all(g, 12).map(valueInfo),
  };
}

const FLOAT = 1;
const FLAGS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;
const dimsA = (t: boolean) => (t ? ['k', 'm'] : ['m', 'k']);
const dimsB = (t: boolean) => (t ? ['n', 'k'] : ['k', 'n']);

describe('ONNX models written by hand', () => {
  it('MatMul: one node A·B → Y, symbolic [m, k]·[k, n] → [m, n], IR 8, opset 13', () => {
    const g = readModel(productModel({ op: 'MatMul', transA: false, transB: false }));
    assert.equal(g.irVersion, 8);
    assert.deepEqual(g.opsets, [{ domain: '', version: 13 }]);
    assert.deepEqual(g.nodes, [{ op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'], attrs: {} }]);
    assert.deepEqual(g.inputs, [
      { name: 'A', elem: FLOAT, dims: ['m', 'k'] },
      { name: 'B', elem: FLOAT, dims: ['k', 'n'] },
    ]);
    assert.deepEqual(g.outputs, [{ name: 'Y', elem: FLOAT, dims: ['m', 'n'] }]);
    assert.throws(() => productModel({ op: 'MatMul', transA: true, transB: false }), RangeError);
  });

  for (const [transA, transB] of FLAGS) {
    it(`Gemm transA=${+transA} transB=${+transB}: the flags as INT attributes, input shapes transposed to match`, () => {
      const g = readModel(productModel({ op: 'Gemm', transA, transB }));
      assert.deepEqual(g.nodes, [
        { op: 'Gemm', inputs: ['A', 'B'], outputs: ['Y'], attrs: { transA: +transA, transB: +transB } },
      ]);
      assert.deepEqual(
        g.inputs.map((i) => i.dims),
        [dimsA(transA), dimsB(transB)],
      );
      assert.deepEqual(g.outputs, [{ name: 'Y', elem: FLOAT, dims: ['m', 'n'] }]);
    });

    it(`residual transA=${+transA} transB=${+transB}: Gemm alpha −1 beta 1 onto C, then ReduceSumSquare over axis 1`, () => {
      const g = readModel(residualModel({ transA, transB }));
      assert.equal(g.name, 'residual');
      assert.deepEqual(g.nodes, [
        {
          op: 'Gemm',
          inputs: ['A', 'B', 'C'],
          outputs: ['E'],
          attrs: { transA: +transA, transB: +transB, alpha: -1, beta: 1 },
        },
        { op: 'ReduceSumSquare', inputs: ['E'], outputs: ['Y'], attrs: { axes: [1], keepdims: 0 } },
      ]);
      assert.deepEqual(g.inputs, [
        { name: 'A', elem: FLOAT, dims: dimsA(transA) },
        { name: 'B', elem: FLOAT, dims: dimsB(transB) },
        { name: 'C', elem: FLOAT, dims: ['m', 'n'] },
      ]);
      assert.deepEqual(g.outputs, [{ name: 'Y', elem: FLOAT, dims: ['m'] }]);
    });
  }

  it('onnxruntime loads each model, reports the same inputs and outputs, and computes what the graph says', async (t) => {
    let ort: typeof import('onnxruntime-node');
    try {
      ort = await import('onnxruntime-node');
    } catch (err) {
      t.skip(`onnxruntime-node does not load here: ${(err as Error).message}`);
      return;
    }
    // A [3, 2], B [2, 4], C [3, 4]: small integers, so f32 arithmetic is exact.
    const a = [1, 2, -1, 0, 3, 1];
    const b = [2, 0, 1, -1, 1, 3, 0, 2];
    const c = [1, 1, 1, 1, 0, 2, 0, 2, 5, 5, 5, 5];
    const product = (i: number, j: number) => a[i * 2]! * b[j]! + a[i * 2 + 1]! * b[4 + j]!;
    const transpose = (x: number[], rows: number, cols: number) =>
      Array.from({ length: rows * cols }, (_, k) => x[(k % rows) * cols + Math.floor(k / rows)]!);
    for (const [transA, transB] of FLAGS) {
      const feeds = {
        A: new ort.Tensor('float32', Float32Array.from(transA ? transpose(a, 3, 2) : a), transA ? [2, 3] : [3, 2]),
        B: new ort.Tensor('float32', Float32Array.from(transB ? transpose(b, 2, 4) : b), transB ? [4, 2] : [2, 4]),
      };
      for (const [kind, bytes] of [
        ['Gemm', productModel({ op: 'Gemm', transA, transB })],
        ['residual', residualModel({ transA, transB })],
      ] as const) {
        const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
        const g = readModel(bytes);
        assert.deepEqual(
          session.inputNames,
          g.inputs.map((i) => i.name),
        );
        assert.deepEqual(
          session.outputNames,
          g.outputs.map((o) => o.name),
        );
        for (const [k, meta] of session.inputMetadata.entries()) {
          assert.ok(meta.isTensor);
          assert.equal(meta.type, 'float32');
          assert.deepEqual(meta.shape, g.inputs[k]!.dims);
        }
        const out = await session.run(
          kind === 'Gemm' ? feeds : { ...feeds, C: new ort.Tensor('float32', Float32Array.from(c), [3, 4]) },
        );
        const y = Array.from(out['Y']!.data as Float32Array);
        if (kind === 'Gemm')
          assert.deepEqual(
            y,
            Array.from({ length: 12 }, (_, k) => product(Math.floor(k / 4), k % 4)),
          );
        else {
          const want = [0, 1, 2].map((i) => [0, 1, 2, 3].reduce((s, j) => s + (c[i * 4 + j]! - product(i, j)) ** 2, 0));
          assert.deepEqual(y, want, `residual rows ‖C − op(A)·op(B)‖² (transA=${transA}, transB=${transB})`);
        }
        await session.release();
      }
    }
  });
});
