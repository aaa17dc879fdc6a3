// ONNX export of zoo models: a converted int8 model as ONNX QOperator form (QuantizeLinear,
// QLinearConv, com.microsoft QLinearAdd / QLinearGlobalAveragePool / QGemm, DequantizeLinear), or a
// float model as plain ONNX (Conv, Relu, Add, GlobalAveragePool, Flatten, Gemm). Opset 13 plus the
// com.microsoft domain; the graph takes 'input' float32 [N, 3, H, W] and gives 'logits' float32
// [N, classes]. Serialized with protobufjs from the subset of the official onnx.proto3 below.
import * as protobuf from 'protobufjs';
import { Architecture, ArchitectureSpec } from '../models';
import { InvertedResidual, MobileNetV2 } from '../models/mobilenet_v2';
import { BasicBlock, Bottleneck, ResNet } from '../models/resnet';
import { FloatFunctional } from '../nn/functional';
import { ConvReLU2d, LinearReLU } from '../nn/intrinsic';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers';
import { Module } from '../nn/module';
import { DeQuantize, QFunctional, QuantizedConv2d, QuantizedDropout, QuantizedLinear, Quantize } from '../nn/quantized';
import { DeQuantStub, QuantStub } from '../nn/stubs';
import { GraphModule } from '../nn/graph';
import { packageVersion } from '../version';

/**
 * The messages and fields of onnx/onnx.proto3 (ONNX IR 7) that the exporter writes and the importer
 * reads, with the official field numbers; other fields are left out (protobuf skips unknown fields, so the subset is
 * wire-compatible with the full schema).
 */
export const ONNX_PROTO_SUBSET = `
syntax = "proto3";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  string name = 1;
  string doc_string = 13;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}
message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
}
message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}
message StringStringEntryProto {
  string key = 1;
  string value = 2;
}
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}
message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7; STRING = 8; BOOL = 9; }
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    };
    string denotation = 3;
  };
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  string denotation = 6;
}
message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}
`;

/** TensorProto.DataType values used here. */
export const OnnxDataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** A TensorProto as written (data always in raw_data, little-endian). */
export interface OnnxTensorProto {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}
/** An AttributeProto (one of f, i, s, floats, ints set, as `type` says). */
export interface OnnxAttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}
/** A NodeProto. */
export interface OnnxNodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain?: string;
  attribute: OnnxAttributeProto[];
}
/** A TensorShapeProto.Dimension: a fixed size or a symbolic name. */
export interface OnnxDimension {
  dim_value?: number;
  dim_param?: string;
}
/** A ValueInfoProto of a tensor. */
export interface OnnxValueInfoProto {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: OnnxDimension[] } } };
}
/** A GraphProto. */
export interface OnnxGraphProto {
  name: string;
  node: OnnxNodeProto[];
  initializer: OnnxTensorProto[];
  input: OnnxValueInfoProto[];
  output: OnnxValueInfoProto[];
  doc_string?: string;
}
/** A ModelProto. */
export interface OnnxModelProto {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: OnnxGraphProto;
  metadata_props?: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelType;
}

/** Serializes a ModelProto. */
export function encodeOnnxModel(m: OnnxModelProto): Uint8Array {
  const T = onnxModelType();
  return T.encode(T.fromObject(m)).finish();
}

/** Parses ONNX bytes back into a ModelProto (int64 fields as numbers, bytes fields as Buffers). */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModelProto {
  const T = onnxModelType();
  return T.toObject(T.decode(bytes), { longs: Number, arrays: true }) as OnnxModelProto;
}

/** ONNX IR version 7 (ONNX 1.7), the IR of opset 13. */
export const ONNX_IR_VERSION = 7;
/** The default-domain opset the exporter targets. */
export const ONNX_OPSET = 13;
/** ONNX Runtime's contrib domain (QLinearAdd, QLinearGlobalAveragePool, QGemm). */
export const MS_DOMAIN = 'com.microsoft';

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const attrInt = (name: string, i: number): OnnxAttributeProto => ({ name, type: AttrType.INT, i });
const attrInts = (name: string, ints: number[]): OnnxAttributeProto => ({ name, type: AttrType.INTS, ints });
const attrFloat = (name: string, f: number): OnnxAttributeProto => ({ name, type: AttrType.FLOAT, f });

/** Nodes and initializers of one graph, with unique value names and shared scalar constants. */
class GraphBuilder {
  readonly nodes: OnnxNodeProto[] = [];
  readonly initializers: OnnxTensorProto[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();

  /** A value name not used yet, `base` itself when free. */
  unique(base: string): string {
    let name = base, k = 1;
    while (this.names.has(name)) name = `${base}_${k++}`;
    this.names.add(name);
    return name;
  }

  reserve(name: string): void {
    this.names.add(name);
  }

  /** Adds an initializer; returns its name. */
  init(base: string, dataType: number, dims: number[], data: ArrayBufferView): string {
    const name = this.unique(base);
    this.initializers.push({ name, dims, data_type: dataType, raw_data: bytesOf(data) });
    return name;
  }

  /** A scalar constant shared by every node that needs the same value. */
  scalar(dataType: number, value: number): string {
    const key = `${dataType}:${Object.is(value, -0) ? '-0' : value}`;
    let name = this.consts.get(key);
    if (!name) {
      const data = dataType === OnnxDataType.FLOAT ? new Float32Array([value]) : dataType === OnnxDataType.UINT8 ? new Uint8Array([value])
        : dataType === OnnxDataType.INT8 ? new Int8Array([value]) : dataType === OnnxDataType.INT32 ? new Int32Array([value]) : new BigInt64Array([BigInt(value)]);
      const tag = dataType === OnnxDataType.FLOAT ? `f${value}` : dataType === OnnxDataType.UINT8 ? `u8_${value}` : dataType === OnnxDataType.INT8 ? `i8_${value}` : `i${value}`;
      name = this.init(`const.${tag}`, dataType, [], data);
      this.consts.set(key, name);
    }
    return name;
  }

  /** Adds a node with one output named after `base`; returns the output name. */
  node(opType: string, inputs: string[], base: string, attribute: OnnxAttributeProto[] = [], domain?: string): string {
    const out = this.unique(base);
    this.nodes.push({ input: inputs, output: [out], name: out, op_type: opType, domain: domain ?? '', attribute });
    return out;
  }
}

/** A value flowing through the graph: float, or uint8 with its (static) quantization parameters. */
interface Value {
  name: string;
  q?: { scale: number; zeroPoint: number };
}

/** Options of exportOnnx. */
export interface OnnxExportOptions {
  /**
   * true: the model must be a float model (plain ONNX); false: it must be a converted int8 model
   * (QOperator ONNX). Undefined: decided by whether the model has a Quantize module.
   */
  float?: boolean;
}

const fround = Math.fround;

function rneInt32(x: number): number {
  if (!(x > -2147483648.5 && x < 2147483647.5)) throw new RangeError(`ONNX export: a bias does not fit int32 (${x})`);
  const r = Math.floor(x), d = x - r;
  return d > 0.5 ? r + 1 : d < 0.5 ? r : r % 2 === 0 ? r : r + 1;
}

/** Walks a zoo model's forward pass and emits the matching ONNX nodes. */
class Exporter {
  constructor(readonly g: GraphBuilder, readonly int8: boolean) {}
  /** ptq-node's own int8 facts ONNX cannot hold: exact float biases (by int32 bias initializer) and x.mean nodes. */
  readonly floatBias = new Map<string, Float32Array>();
  readonly meanNodes: string[] = [];

  private f32(v: number): string {
    return this.g.scalar(OnnxDataType.FLOAT, fround(v));
  }
  private u8(v: number): string {
    return this.g.scalar(OnnxDataType.UINT8, v);
  }

  private expectQ(x: Value, what: string): { scale: number; zeroPoint: number } {
    if (!x.q) throw new Error(`ONNX export: ${what} gets a float value; is a Quantize (QuantStub) missing or is the model not converted?`);
    return x.q;
  }
  private expectF(x: Value, what: string): void {
    if (x.q) throw new Error(`ONNX export: ${what} is a float module but gets a quantized value`);
  }

  /** max(q, zero_point) on uint8, i.e. a quantized ReLU: nothing when zero_point is 0 (uint8 already saturates there). */
  private qrelu(x: Value, name: string): Value {
    const q = this.expectQ(x, name);
    if (q.zeroPoint === 0) return x;
    const s = this.f32(q.scale), z = this.u8(q.zeroPoint);
    const d = this.g.node('DequantizeLinear', [x.name, s, z], `${name}.dequant`);
    const r = this.g.node('Relu', [d], `${name}.relu`);
    return { name: this.g.node('QuantizeLinear', [r, s, z], `${name}.quant`), q };
  }

  private convAttrs(c: { kernelH: number; kernelW: number; strideH: number; strideW: number; padH: number; padW: number; dilationH: number; dilationW: number; groups: number }): OnnxAttributeProto[] {
    return [
      attrInts('kernel_shape', [c.kernelH, c.kernelW]), attrInts('strides', [c.strideH, c.strideW]),
      attrInts('pads', [c.padH, c.padW, c.padH, c.padW]), attrInts('dilations', [c.dilationH, c.dilationW]), attrInt('group', c.groups),
    ];
  }

  private floatConv(conv: Conv2d, name: string, x: Value, relu: boolean): Value {
    this.expectF(x, name);
    const w = this.g.init(`${name}.weight`, OnnxDataType.FLOAT, [...conv.weight.shape], conv.weight.contiguous().data);
    const inputs = [x.name, w];
    if (conv.bias) inputs.push(this.g.init(`${name}.bias`, OnnxDataType.FLOAT, [conv.outChannels], conv.bias.data));
    const y = this.g.node('Conv', inputs, relu ? `${name}.conv` : name, this.convAttrs(conv.geometry()));
    return { name: relu ? this.g.node('Relu', [y], name) : y };
  }

  private floatLinear(lin: Linear, name: string, x: Value, relu: boolean): Value {
    this.expectF(x, name);
    const w = this.g.init(`${name}.weight`, OnnxDataType.FLOAT, [lin.outFeatures, lin.inFeatures], lin.weight.contiguous().data);
    const inputs = [x.name, w];
    if (lin.bias) inputs.push(this.g.init(`${name}.bias`, OnnxDataType.FLOAT, [lin.outFeatures], lin.bias.data));
    const y = this.g.node('Gemm', inputs, relu ? `${name}.gemm` : name, [attrInt('transB', 1)]);
    return { name: relu ? this.g.node('Relu', [y], name) : y };
  }

  /** Weight scale and zero point inputs: scalars per tensor, [C] per channel (zero points are 0). */
  private weightQParams(name: string, scale: Float32Array, perChannel: boolean): [string, string] {
    if (!perChannel) return [this.f32(scale[0]), this.g.scalar(OnnxDataType.INT8, 0)];
    return [
      this.g.init(`${name}.weight_scale`, OnnxDataType.FLOAT, [scale.length], scale),
      this.g.init(`${name}.weight_zero_point`, OnnxDataType.INT8, [scale.length], new Int8Array(scale.length)),
    ];
  }

  /**
   * The int32 bias ONNX wants: round(bias / (x_scale * w_scale[c])), with the float32 quotient
   * computed as our epilogue computes its float bias term (lib/kernels/requant.ts).
   */
  private int32Bias(bias: Float32Array, inputScale: number, wScale: Float32Array, perChannel: boolean): Int32Array {
    const sx = fround(inputScale);
    const out = new Int32Array(bias.length);
    for (let j = 0; j < bias.length; j++) {
      const atws = fround(sx * fround(wScale[perChannel ? j : 0]));
      out[j] = rneInt32(perChannel ? fround(bias[j] / atws) : fround(bias[j] * fround(1 / atws)));
    }
    return out;
  }

  private qconv(m: QuantizedConv2d, name: string, x: Value): Value {
    const xq = this.expectQ(x, name);
    const perChannel = m.weight.qscheme === 'per_channel_affine';
    const w = this.g.init(`${name}.weight`, OnnxDataType.INT8, [...m.weight.shape], m.weight.data);
    const [ws, wz] = this.weightQParams(name, m.weight.scale, perChannel);
    const inputs = [x.name, this.f32(xq.scale), this.u8(xq.zeroPoint), w, ws, wz, this.f32(m.scale), this.u8(m.zeroPoint)];
    if (m.bias) {
      const b = this.g.init(`${name}.bias`, OnnxDataType.INT32, [m.bias.length], this.int32Bias(m.bias, xq.scale, m.weight.scale, perChannel));
      this.floatBias.set(b, m.bias);
      inputs.push(b);
    }
    const y: Value = { name: this.g.node('QLinearConv', inputs, m.relu && m.zeroPoint !== 0 ? `${name}.conv` : name, this.convAttrs(m.geometry)), q: { scale: m.scale, zeroPoint: m.zeroPoint } };
    return m.relu ? this.qrelu(y, name) : y;
  }

  private qlinear(m: QuantizedLinear, name: string, x: Value): Value {
    const xq = this.expectQ(x, name);
    const perChannel = m.weight.qscheme === 'per_channel_affine';
    const w = this.g.init(`${name}.weight`, OnnxDataType.INT8, [m.outFeatures, m.inFeatures], m.weight.data);
    const [ws, wz] = this.weightQParams(name, m.weight.scale, perChannel);
    const bias = m.bias ? this.g.init(`${name}.bias`, OnnxDataType.INT32, [m.outFeatures], this.int32Bias(m.bias, xq.scale, m.weight.scale, perChannel)) : '';
    if (m.bias) this.floatBias.set(bias, m.bias);
    const inputs = [x.name, this.f32(xq.scale), this.u8(xq.zeroPoint), w, ws, wz, bias, this.f32(m.scale), this.u8(m.zeroPoint)];
    const y: Value = { name: this.g.node('QGemm', inputs, m.relu && m.zeroPoint !== 0 ? `${name}.gemm` : name, [attrInt('transB', 1), attrFloat('alpha', 1)], MS_DOMAIN), q: { scale: m.scale, zeroPoint: m.zeroPoint } };
    return m.relu ? this.qrelu(y, name) : y;
  }

  /** add / add_relu of FloatFunctional (Add [+ Relu]) or QFunctional (QLinearAdd [+ relu]). */
  private add(f: Module, name: string, a: Value, b: Value, relu: boolean): Value {
    if (f instanceof QFunctional) {
      const qa = this.expectQ(a, name), qb = this.expectQ(b, name);
      const out = this.g.node('QLinearAdd', [a.name, this.f32(qa.scale), this.u8(qa.zeroPoint), b.name, this.f32(qb.scale), this.u8(qb.zeroPoint),
        this.f32(f.scale), this.u8(f.zeroPoint)], relu && f.zeroPoint !== 0 ? `${name}.add` : name, [], MS_DOMAIN);
      const y: Value = { name: out, q: { scale: f.scale, zeroPoint: f.zeroPoint } };
      return relu ? this.qrelu(y, name) : y;
    }
    if (!(f instanceof FloatFunctional)) throw new Error(`ONNX export: ${name} is a ${f.typeName()}, expected FloatFunctional or QFunctional`);
    this.expectF(a, name);
    this.expectF(b, name);
    const s = this.g.node('Add', [a.name, b.name], relu ? `${name}.add` : name);
    return { name: relu ? this.g.node('Relu', [s], name) : s };
  }

  /** Global average pooling to [N, C, 1, 1] (quantized: output qparams = input's, as PyTorch keeps them). */
  private globalAvgPool(name: string, x: Value): Value {
    if (!x.q) return { name: this.g.node('GlobalAveragePool', [x.name], name) };
    const s = this.f32(x.q.scale), z = this.u8(x.q.zeroPoint);
    return { name: this.g.node('QLinearGlobalAveragePool', [x.name, s, z, s, z], name, [attrInt('channels_last', 0)], MS_DOMAIN), q: x.q };
  }

  private flatten(name: string, x: Value): Value {
    return { name: this.g.node('Flatten', [x.name], name, [attrInt('axis', 1)]), q: x.q };
  }

  /** An imported graph: its nodes in order (quant, nodes, dequant). */
  private graphModule(m: GraphModule, x: Value): Value {
    const slot = (n: string) => {
      const c = m._modules.get(n);
      if (!c) throw new Error(`ONNX export: the graph has no submodule '${n}'`);
      return c;
    };
    const env = new Map<string, Value>();
    env.set(m.spec.input, this.module(slot('quant'), 'quant', x));
    for (const n of m.spec.nodes) {
      const what = `graph node '${n.onnxName}' (${n.opType})`;
      if (n.float || n.op === 'pad' || n.op === 'cat' || n.op === 'mul')
        throw new Error(`ONNX export: ${what}: ${n.float ? 'float parts' : n.op} of imported graphs are not exported yet`);
      const ins = n.inputs.map((v) => {
        const val = env.get(v);
        if (!val) throw new Error(`ONNX export: ${what}: input '${v}' has no value`);
        return val;
      });
      let y: Value;
      switch (n.op) {
        case 'module':
          y = this.module(slot(n.name), n.name, ins[0]);
          break;
        case 'add':
        case 'add_relu':
          y = this.add(slot(n.name), n.name, ins[0], ins[1], n.op === 'add_relu');
          break;
        case 'mean': {
          // x.mean([2, 3]): GlobalAveragePool (recorded as a mean for an exact re-import), then Flatten.
          const p = this.globalAvgPool(n.keepdims ? n.name : `${n.name}.pool`, ins[0]);
          if (p.q) this.meanNodes.push(p.name);
          y = n.keepdims ? p : this.flatten(n.name, p);
          break;
        }
        case 'reshape': {
          const shape = this.g.init(`${n.name}.shape`, OnnxDataType.INT64, [n.shape!.length], new BigInt64Array(n.shape!.map(BigInt)));
          y = { name: this.g.node('Reshape', [ins[0].name, shape], n.name), q: ins[0].q };
          break;
        }
        case 'transpose':
          y = { name: this.g.node('Transpose', [ins[0].name], n.name, [attrInts('perm', n.perm!)]), q: ins[0].q };
          break;
        default:
          throw new Error(`ONNX export: ${what}: op '${String(n.op)}' is not exported`);
      }
      env.set(n.output, y);
    }
    const out = env.get(m.spec.output);
    if (!out) throw new Error(`ONNX export: the graph output '${m.spec.output}' has no value`);
    return this.module(slot('dequant'), 'dequant', out);
  }

  /** One module of the forward pass (containers recurse in call order). */
  module(m: Module, name: string, x: Value): Value {
    const child = (n: string) => {
      const c = m._modules.get(n);
      if (!c) throw new Error(`ONNX export: ${name} has no submodule '${n}'`);
      return c;
    };
    const sub = (n: string) => (name ? `${name}.${n}` : n);
    const call = (n: string, v: Value) => this.module(child(n), sub(n), v);

    if (m instanceof GraphModule) return this.graphModule(m, x);
    if (m instanceof QuantStub) {
      if (this.int8) throw new Error(`ONNX export: ${name} is a QuantStub: the model is not converted`);
      return x;
    }
    if ((m instanceof Quantize && m.onnxDivide) || ((m instanceof QuantizedConv2d || m instanceof QuantizedLinear) && m.onnxBias))
      throw new Error(`ONNX export: ${name} has ONNX semantics (an imported int8 ONNX model); export of such models is not supported`);
    if (m instanceof QuantizedConv2d && m.clampMax !== undefined)
      throw new Error(`ONNX export: ${name} is a conv with a fused ReLU6 clamp, which the exporter does not write yet`);
    if (m instanceof DeQuantStub) return x;
    if (m instanceof Quantize) {
      this.expectF(x, name);
      return { name: this.g.node('QuantizeLinear', [x.name, this.f32(m.scale), this.u8(m.zeroPoint)], name), q: { scale: m.scale, zeroPoint: m.zeroPoint } };
    }
    if (m instanceof DeQuantize) {
      const q = this.expectQ(x, name);
      return { name: this.g.node('DequantizeLinear', [x.name, this.f32(q.scale), this.u8(q.zeroPoint)], name) };
    }
    if (m instanceof Identity || m instanceof Dropout || m instanceof QuantizedDropout) return x;
    if (m instanceof QuantizedConv2d) return this.qconv(m, name, x);
    if (m instanceof QuantizedLinear) return this.qlinear(m, name, x);
    if (m instanceof ConvReLU2d) return this.floatConv(m.conv, name, x, true);
    if (m instanceof LinearReLU) return this.floatLinear(m.linear, name, x, true);
    if (m instanceof Conv2d) return this.floatConv(m, name, x, false);
    if (m instanceof Linear) return this.floatLinear(m, name, x, false);
    if (m instanceof BatchNorm2d) {
      this.expectF(x, name);
      const p = (k: string) => this.g.init(`${name}.${k}`, OnnxDataType.FLOAT, [m.numFeatures], (m._parameters.get(k) ?? m._buffers.get(k))!.data);
      return { name: this.g.node('BatchNormalization', [x.name, p('weight'), p('bias'), p('running_mean'), p('running_var')], name, [attrFloat('epsilon', m.eps)]) };
    }
    if (m instanceof ReLU) return x.q ? this.qrelu(x, name) : { name: this.g.node('Relu', [x.name], name) };
    if (m instanceof MaxPool2d) {
      const k = m.kernelSize, s = m.stride, p = m.padding, d = m.dilation;
      if (x.q && d !== 1) throw new Error(`ONNX export: ${name}: quantized MaxPool2d supports dilation 1`);
      return { name: this.g.node('MaxPool', [x.name], name, [attrInts('kernel_shape', [k, k]), attrInts('strides', [s, s]), attrInts('pads', [p, p, p, p]), attrInts('dilations', [d, d])]), q: x.q };
    }
    if (m instanceof AdaptiveAvgPool2d) return this.globalAvgPool(name, x);
    if (m instanceof Flatten) {
      if (m.startDim !== 1) throw new Error(`ONNX export: ${name}: Flatten supports start_dim 1`);
      return this.flatten(name, x);
    }
    if (m instanceof InvertedResidual) {
      const y = call('conv', x);
      return m.useResConnect ? this.add(child('skip_add'), sub('skip_add'), x, y, false) : y;
    }
    if (m instanceof BasicBlock || m instanceof Bottleneck) {
      const names = m instanceof BasicBlock ? ['conv1', 'bn1', 'relu', 'conv2', 'bn2'] : ['conv1', 'bn1', 'relu1', 'conv2', 'bn2', 'relu2', 'conv3', 'bn3'];
      let out = x;
      for (const n of names) out = call(n, out);
      const identity = m._modules.get('downsample') ? call('downsample', x) : x;
      const addName = m instanceof BasicBlock ? 'add_relu' : 'skip_add_relu';
      return this.add(child(addName), sub(addName), out, identity, true);
    }
    if (m instanceof MobileNetV2) {
      let y = call('quant', x);
      y = call('features', y);
      const pooled = this.globalAvgPool('mean', y);
      this.meanNodes.push(pooled.name);
      y = this.flatten('mean.flatten', pooled); // x.mean([2, 3])
      y = call('classifier', y);
      return call('dequant', y);
    }
    if (m instanceof ResNet) {
      let y = x;
      for (const n of ['quant', 'conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool']) y = call(n, y);
      y = this.flatten('flatten', y);
      y = call('fc', y);
      return call('dequant', y);
    }
    if (m instanceof Sequential) {
      let y = x;
      for (const [n] of m.namedChildren()) y = call(n, y);
      return y;
    }
    throw new Error(`ONNX export: cannot export ${name || 'the model'} (${m.typeName()})`);
  }
}

function isInt8Model(model: Module): boolean {
  for (const m of model.modules()) if (m instanceof Quantize) return true;
  return false;
}

function specOf(architecture: ArchitectureSpec | Architecture): ArchitectureSpec | { arch: Architecture; numClasses?: number } {
  return typeof architecture === 'string' ? { arch: architecture } : architecture;
}

function checkArchitecture(model: Module, spec: { arch: Architecture; numClasses?: number }): { inChannels: number; numClasses: number } {
  const ok = spec.arch === 'mobilenet_v2' ? model instanceof MobileNetV2
    : spec.arch === 'resnet18' ? model instanceof ResNet && model.block === BasicBlock
    : spec.arch === 'resnet50' ? model instanceof ResNet && model.block === Bottleneck : false;
  if (!ok) throw new Error(`ONNX export: the model is a ${model.typeName()}, not a ${spec.arch}`);
  let numClasses: number, stem: Module;
  if (model instanceof MobileNetV2) {
    numClasses = model.numClasses;
    stem = model.getSubmodule('features.0.0');
  } else {
    numClasses = (model as ResNet).numClasses;
    stem = model.getSubmodule('conv1');
  }
  if (spec.numClasses !== undefined && spec.numClasses !== numClasses) throw new Error(`ONNX export: the model has ${numClasses} classes, the architecture says ${spec.numClasses}`);
  const conv = stem instanceof QuantizedConv2d ? stem.geometry : stem instanceof ConvReLU2d ? stem.conv.geometry() : stem instanceof Conv2d ? stem.geometry() : null;
  if (!conv) throw new Error(`ONNX export: unexpected stem module ${stem.typeName()}`);
  return { inChannels: conv.inChannels, numClasses };
}

/**
 * Exports a zoo model to ONNX bytes. A converted int8 model (convert() or loadQuantizedModel) gives
 * ONNX QOperator form: QuantizeLinear, QLinearConv (int8 weights, per-tensor or per-channel, int32
 * bias), com.microsoft QLinearAdd / QLinearGlobalAveragePool / QGemm, uint8 MaxPool, Flatten,
 * DequantizeLinear. A float model (fused or not) gives Conv, BatchNormalization, Relu, Add,
 * MaxPool, GlobalAveragePool, Flatten, Gemm. The graph input is 'input' float32 [N, C, H, W]
 * (N, H and W symbolic), the output 'logits' float32 [N, classes]. Runs in ONNX Runtime (CPU).
 */
export function exportOnnx(model: Module, architecture: ArchitectureSpec | Architecture | { arch: 'graph' }, options: OnnxExportOptions = {}): Uint8Array {
  if ((architecture as string) === 'graph' || (typeof architecture === 'object' && architecture.arch === 'graph')) return exportGraph(model, options);
  const spec = specOf(architecture as ArchitectureSpec | Architecture);
  const { inChannels, numClasses } = checkArchitecture(model, spec);
  const { g, int8, exporter } = buildGraph(model, options);

  const tensorInfo = (name: string, dims: OnnxDimension[]): OnnxValueInfoProto => ({ name, type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: dims } } } });
  const fullSpec = { ...spec, numClasses };
  return encodeOnnxModel({
    ir_version: ONNX_IR_VERSION,
    opset_import: int8 ? [{ domain: '', version: ONNX_OPSET }, { domain: MS_DOMAIN, version: 1 }] : [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'ptq-node',
    producer_version: packageVersion(),
    doc_string: `${spec.arch} (${int8 ? 'int8, QOperator' : 'float32'}) exported by ptq-node`,
    graph: {
      name: `${spec.arch}${int8 ? '_int8' : ''}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorInfo('input', [{ dim_param: 'N' }, { dim_value: inChannels }, { dim_param: 'H' }, { dim_param: 'W' }])],
      output: [tensorInfo('logits', [{ dim_param: 'N' }, { dim_value: numClasses }])],
    },
    metadata_props: [
      { key: 'ptq_node.architecture', value: JSON.stringify(fullSpec) },
      { key: 'ptq_node.dtype', value: int8 ? 'int8' : 'float32' },
      ...(int8 ? [int8Metadata(exporter)] : []),
    ],
  });
}

/** Checks the export options against the model, then builds its nodes: input 'input', output 'logits'. */
function buildGraph(model: Module, options: OnnxExportOptions): { g: GraphBuilder; int8: boolean; exporter: Exporter } {
  const int8 = isInt8Model(model);
  if (options.float === true && int8) throw new Error('ONNX export: float export requested but the model is a converted int8 model');
  if (options.float === false && !int8) throw new Error('ONNX export: int8 export requested but the model has no Quantize module (not converted)');
  if (model.training) throw new Error('ONNX export: the model is in training mode; call model.eval() first');
  const g = new GraphBuilder();
  g.reserve('input');
  g.reserve('logits');
  const exporter = new Exporter(g, int8);
  const out = exporter.module(model, '', { name: 'input' });
  if (out.q) throw new Error('ONNX export: the model output is quantized (no DeQuantize at the end)');
  // Rename the last node's output to 'logits'.
  const last = g.nodes[g.nodes.length - 1];
  if (!last || last.output[0] !== out.name) throw new Error('ONNX export: the model has no final node');
  last.output[0] = 'logits';
  return { g, int8, exporter };
}

/**
 * What ONNX cannot express, for an exact re-import by ptq-node (importOnnx): PyTorch's float
 * biases (ONNX has int32 ones) and which pools are x.mean([2, 3]). Other tools ignore it.
 */
function int8Metadata(exporter: Exporter): { key: string; value: string } {
  return { key: 'ptq_node.int8', value: JSON.stringify({
    semantics: 'pytorch',
    float_bias: Object.fromEntries([...exporter.floatBias].map(([k, v]) => [k, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')])),
    mean_nodes: exporter.meanNodes,
  }) };
}

/**
 * Exports an imported graph (GraphModule, float or converted with PyTorch semantics) the same way:
 * 'input' float32 [N, C, H, W] (the imported input's static dims), 'logits' float32. Float parts,
 * explicit pads, quantized Concat / Mul / AveragePool, fused ReLU6 clamps and models imported
 * from int8 ONNX with ONNX semantics are not exported yet (an error names them).
 */
function exportGraph(model: Module, options: OnnxExportOptions): Uint8Array {
  if (!(model instanceof GraphModule)) throw new Error(`ONNX export: architecture 'graph' needs a GraphModule, got ${model.typeName()}`);
  const { g, int8, exporter } = buildGraph(model, options);
  const dims: OnnxDimension[] = model.spec.inputShape.map((d, i) => (d ? { dim_value: d } : { dim_param: ['N', 'C', 'H', 'W'][i] ?? `d${i}` }));
  return encodeOnnxModel({
    ir_version: ONNX_IR_VERSION,
    opset_import: int8 ? [{ domain: '', version: ONNX_OPSET }, { domain: MS_DOMAIN, version: 1 }] : [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'ptq-node',
    producer_version: packageVersion(),
    doc_string: `imported graph (${int8 ? 'int8, QOperator' : 'float32'}) exported by ptq-node`,
    graph: {
      name: `graph${int8 ? '_int8' : ''}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [{ name: 'input', type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: dims } } } }],
      output: [{ name: 'logits', type: { tensor_type: { elem_type: OnnxDataType.FLOAT } } } as unknown as OnnxValueInfoProto],
    },
    metadata_props: [
      { key: 'ptq_node.architecture', value: JSON.stringify({ arch: 'graph' }) },
      { key: 'ptq_node.dtype', value: int8 ? 'int8' : 'float32' },
      ...(int8 ? [int8Metadata(exporter)] : []),
    ],
  });
}
