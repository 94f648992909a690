/**
 * Small ONNX models (a MatMul or Gemm; a residual's Gemm and ReduceSumSquare) written as
 * protobuf bytes by hand, so the GEMM engine needs no protobuf or onnx dependency. Only the
 * fields such float graphs use are encoded; field numbers are those of onnx.proto
 * (ModelProto, GraphProto, NodeProto, AttributeProto, …).
 */

/** Protobuf wire types used here. */
const VARINT = 0;
const LEN = 2;
const FIXED32 = 5;

/** ONNX TensorProto.DataType FLOAT and DOUBLE. */
const ELEM_FLOAT = 1;
const ELEM_DOUBLE = 11;
/** ONNX AttributeProto.AttributeType FLOAT, INT and INTS. */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;
/** IR version 8 and opset 13: both accepted by every onnxruntime since 1.13, and Gemm/MatMul are unchanged since. */
const IR_VERSION = 8;
const OPSET = 13;

const utf8 = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function intField(field: number, value: number): Uint8Array {
  return Uint8Array.from([...varint((field << 3) | VARINT), ...varint(value)]);
}

function bytesField(field: number, payload: Uint8Array): Uint8Array {
  return concat([Uint8Array.from([...varint((field << 3) | LEN), ...varint(payload.length)]), payload]);
}

function stringField(field: number, value: string): Uint8Array {
  return bytesField(field, utf8.encode(value));
}

function floatField(field: number, value: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = (field << 3) | FIXED32;
  new DataView(out.buffer).setFloat32(1, value, true);
  return out;
}

/** AttributeProto fields of a NodeProto (field 5): an INT, a FLOAT or an INTS. */
function intAttr(name: string, value: number): Uint8Array {
  return bytesField(5, concat([stringField(1, name), intField(3, value), intField(20, ATTR_INT)]));
}

function floatAttr(name: string, value: number): Uint8Array {
  return bytesField(5, concat([stringField(1, name), floatField(2, value), intField(20, ATTR_FLOAT)]));
}

function intsAttr(name: string, values: number[]): Uint8Array {
  return bytesField(5, concat([stringField(1, name), ...values.map((v) => intField(8, v)), intField(20, ATTR_INTS)]));
}

/** NodeProto: inputs, outputs, operator and attributes. */
function node(inputs: string[], outputs: string[], op: string, attrs: Uint8Array[] = []): Uint8Array {
  return concat([
    ...inputs.map((i) => stringField(1, i)),
    ...outputs.map((o) => stringField(2, o)),
    stringField(4, op),
    ...attrs,
  ]);
}

/** ModelProto of one graph: its nodes, then inputs and outputs as ValueInfoProtos. */
function model(name: string, nodes: Uint8Array[], inputs: Uint8Array[], outputs: Uint8Array[]): Uint8Array {
  const graph = concat([
    ...nodes.map((n) => bytesField(1, n)),
    stringField(2, name),
    ...inputs.map((i) => bytesField(11, i)),
    ...outputs.map((o) => bytesField(12, o)),
  ]);
  const opset = concat([stringField(1, ''), intField(2, OPSET)]);
  return concat([intField(1, IR_VERSION), bytesField(8, opset), bytesField(7, graph)]);
}

/** ValueInfoProto of a float tensor whose sizes are symbolic (dim_param), so one session serves every shape. */
function floatTensorInfo(name: string, dims: string[], elem = ELEM_FLOAT): Uint8Array {
  const shape = concat(dims.map((d) => bytesField(1, stringField(2, d))));
  const tensorType = concat([intField(1, elem), bytesField(2, shape)]);
  return concat([stringField(1, name), bytesField(2, bytesField(1, tensorType))]);
}

/** The operator a GEMM session runs and its transpose flags. */
export interface ProductKind {
  op: 'MatMul' | 'Gemm';
  transA: boolean;
  transB: boolean;
  /** f64 tensors (default f32). */
  double?: boolean;
}

/**
 * Serialized ModelProto computing Y = op(A)·op(B) with inputs "A", "B" and output "Y",
 * all float [symbolic, symbolic]. MatMul takes no transpose flags.
 * @example const bytes = productModel({ op: 'Gemm', transA: true, transB: false });
 */
export function productModel({ op, transA, transB, double = false }: ProductKind): Uint8Array {
  if (op === 'MatMul' && (transA || transB))
    throw new RangeError('productModel: MatMul has no transpose flags; use Gemm');
  const aDims = transA ? ['k', 'm'] : ['m', 'k'];
  const bDims = transB ? ['n', 'k'] : ['k', 'n'];
  const attrs = op === 'Gemm' ? [intAttr('transA', transA ? 1 : 0), intAttr('transB', transB ? 1 : 0)] : [];
  const elem = double ? ELEM_DOUBLE : ELEM_FLOAT;
  return model(
    'product',
    [node(['A', 'B'], ['Y'], op, attrs)],
    [floatTensorInfo('A', aDims, elem), floatTensorInfo('B', bDims, elem)],
    [floatTensorInfo('Y', ['m', 'n'], elem)],
  );
}

/**
 * Serialized ModelProto computing Y = C − op(A)·op(B) in f64: the trailing update of a blocked
 * Householder reduction, formed in one session call. Inputs "A", "B", "C" [m, n], output "Y"
 * [m, n], double. Without transposes a MatMul then a Sub, which run faster than a Gemm with
 * alpha = −1, beta = 1 (a 256×256 by 256×3840 block: 4.4–5.1 against 5.2–5.4 ms; 512×256 by
 * 256×2048: 5.0–5.2 against 5.1–5.8), which the transposed forms take.
 */
export function updateModel({ transA, transB }: { transA: boolean; transB: boolean }): Uint8Array {
  const aDims = transA ? ['k', 'm'] : ['m', 'k'];
  const bDims = transB ? ['n', 'k'] : ['k', 'n'];
  const nodes =
    transA || transB
      ? [
          node(['A', 'B', 'C'], ['Y'], 'Gemm', [
            intAttr('transA', transA ? 1 : 0),
            intAttr('transB', transB ? 1 : 0),
            floatAttr('alpha', -1),
            floatAttr('beta', 1),
          ]),
        ]
      : [node(['A', 'B'], ['P'], 'MatMul'), node(['C', 'P'], ['Y'], 'Sub')];
  const d = ELEM_DOUBLE;
  return model(
    'update',
    nodes,
    [floatTensorInfo('A', aDims, d), floatTensorInfo('B', bDims, d), floatTensorInfo('C', ['m', 'n'], d)],
    [floatTensorInfo('Y', ['m', 'n'], d)],
  );
}

/**
 * Serialized ModelProto computing the squared norm of each row of C − op(A)·op(B): a Gemm with
 * alpha = −1 and beta = 1 (the product is subtracted as it is formed, C is not changed), then
 * ReduceSumSquare over axis 1. Inputs "A", "B", "C" [m, n]; output "Y" [m], float.
 */
export function residualModel({ transA, transB }: { transA: boolean; transB: boolean }): Uint8Array {
  const aDims = transA ? ['k', 'm'] : ['m', 'k'];
  const bDims = transB ? ['n', 'k'] : ['k', 'n'];
  const gemm = node(['A', 'B', 'C'], ['E'], 'Gemm', [
    intAttr('transA', transA ? 1 : 0),
    intAttr('transB', transB ? 1 : 0),
    floatAttr('alpha', -1),
    floatAttr('beta', 1),
  ]);
  const reduce = node(['E'], ['Y'], 'ReduceSumSquare', [intsAttr('axes', [1]), intAttr('keepdims', 0)]);
  return model(
    'residual',
    [gemm, reduce],
    [floatTensorInfo('A', aDims), floatTensorInfo('B', bDims), floatTensorInfo('C', ['m', 'n'])],
    [floatTensorInfo('Y', ['m'])],
  );
}
