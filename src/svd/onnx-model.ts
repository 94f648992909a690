/**
 * One-node ONNX models (MatMul, Gemm) written as protobuf bytes by hand, so the GEMM
 * engine needs no protobuf or onnx dependency. Only the fields a one-node float graph
 * uses are encoded; field numbers are those of onnx.proto (ModelProto, GraphProto, …).
 */

/** Protobuf wire types used here. */
const VARINT = 0;
const LEN = 2;

/** ONNX TensorProto.DataType.FLOAT. */
const ELEM_FLOAT = 1;
/** ONNX AttributeProto.AttributeType.INT. */
const ATTR_INT = 2;
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

/** ValueInfoProto of a 2-D float tensor whose two sizes are symbolic (dim_param), so one session serves every shape. */
function floatMatrixInfo(name: string, dims: [string, string]): Uint8Array {
  const shape = concat(dims.map((d) => bytesField(1, stringField(2, d))));
  const tensorType = concat([intField(1, ELEM_FLOAT), bytesField(2, shape)]);
  return concat([stringField(1, name), bytesField(2, bytesField(1, tensorType))]);
}

/** The operator a GEMM session runs and its transpose flags. */
export interface ProductKind {
  op: 'MatMul' | 'Gemm';
  transA: boolean;
  transB: boolean;
}

/**
 * Serialized ModelProto computing Y = op(A)·op(B) with inputs "A", "B" and output "Y",
 * all float [symbolic, symbolic]. MatMul takes no transpose flags.
 * @example const bytes = productModel({ op: 'Gemm', transA: true, transB: false });
 */
export function productModel({ op, transA, transB }: ProductKind): Uint8Array {
  if (op === 'MatMul' && (transA || transB)) throw new RangeError('productModel: MatMul has no transpose flags; use Gemm');
  const aDims: [string, string] = transA ? ['k', 'm'] : ['m', 'k'];
  const bDims: [string, string] = transB ? ['n', 'k'] : ['k', 'n'];
  const attrs: Uint8Array[] = [];
  if (op === 'Gemm') {
    for (const [name, on] of [['transA', transA], ['transB', transB]] as const) {
      attrs.push(bytesField(5, concat([stringField(1, name), intField(3, on ? 1 : 0), intField(20, ATTR_INT)])));
    }
  }
  const node = concat([stringField(1, 'A'), stringField(1, 'B'), stringField(2, 'Y'), stringField(4, op), ...attrs]);
  const graph = concat([
    bytesField(1, node),
    stringField(2, 'product'),
    bytesField(11, floatMatrixInfo('A', aDims)),
    bytesField(11, floatMatrixInfo('B', bDims)),
    bytesField(12, floatMatrixInfo('Y', ['m', 'n'])),
  ]);
  const opset = concat([stringField(1, ''), intField(2, OPSET)]);
  return concat([intField(1, IR_VERSION), bytesField(8, opset), bytesField(7, graph)]);
}
