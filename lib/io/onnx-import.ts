// ONNX import: a float ONNX CNN (opsets 11-17) becomes a GraphModule that goes through the eager
// PTQ flow unchanged (fuseModel by pattern, prepare, calibrate, convert, compileModel, model files).
// Int8 ONNX models (QOperator and QDQ forms) are imported by ./onnx-import-int8.ts. Anything the
// importer cannot represent exactly is an OnnxImportError naming the node, its op type and what is
// missing; it never guesses.
import * as fs from 'fs';
import { GRAPH_FORMAT, GraphModule, GraphNodeSpec, GraphSpec, ModuleDesc } from '../nn/graph';
import { Tensor } from '../tensor';
import { decodeOnnxModel, OnnxAttributeProto, OnnxDimension, OnnxModelProto, OnnxNodeProto, OnnxTensorProto } from './onnx-export';
import { FormatError } from './types';

/** An ONNX model ptq-node cannot import, naming the node, op type and attribute when there is one. */
export class OnnxImportError extends FormatError {
  constructor(message: string, file?: string, readonly node?: string, readonly opType?: string, readonly attribute?: string) {
    super(message, file);
    this.name = 'OnnxImportError';
  }
}

/** Options of importOnnx. */
export interface OnnxImportOptions {
  /**
   * What to do with ReLU6 (Clip(0, 6)): 'relu' replaces it by ReLU (what the PyTorch tutorial does
   * to MobileNetV2; changes the float model), 'clamp' (default) keeps it: fused after a conv it is
   * quantized as a clamp of the conv's output to q(6).
   */
  relu6?: 'relu' | 'clamp';
  /**
   * Int8 models: 'auto' (default) imports models exported by ptq-node with PyTorch semantics
   * (byte-identical to the original), others with ONNX semantics ('onnx'); see onnx-import-int8.ts.
   */
  semantics?: 'auto' | 'onnx' | 'pytorch';
  /**
   * Ops ptq-node cannot quantize: 'error' (default) refuses float-only ops at import (and convert
   * refuses an unfused ReLU6 / BatchNormalization, as eager mode); 'float' keeps them in float in
   * the quantized model, between DeQuantize and Quantize (ReLU6 / BatchNormalization not fused into a
   * conv, and the float-only Sigmoid, Tanh, HardSigmoid, HardSwish, Softmax).
   */
  fallback?: 'error' | 'float';
}

/** Float-only ONNX ops importOnnx keeps in float with fallback 'float'. */
export const FLOAT_ONLY_OPS = ['Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Softmax'] as const;

/** The float ops importOnnx understands (default domain). */
export const SUPPORTED_FLOAT_OPS = [
  'Conv', 'BatchNormalization', 'Relu', 'Clip', 'Add', 'Mul', 'Concat', 'GlobalAveragePool', 'AveragePool', 'MaxPool',
  'ReduceMean', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Transpose', 'Identity', 'Dropout', 'Constant', 'Pad',
] as const;

/** ONNX ops that mark an int8 model (QOperator or QDQ form). */
export const INT8_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'QGemm', 'QLinearAdd',
  'QLinearGlobalAveragePool', 'QLinearMul', 'QLinearConcat', 'QLinearAveragePool']);

/** A constant: its dims, ONNX data type and values (floats as Float32Array, integers as numbers). */
export interface OnnxConst {
  name: string;
  dims: number[];
  dataType: number;
  data: Float32Array | Int32Array | Uint8Array | Int8Array | number[];
}

const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, DOUBLE: 11 } as const;
const DT_NAMES: Record<number, string> = { 1: 'float', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'double', 16: 'bfloat16' };

/** Integer attributes that are sizes (at least 1). */
const POSITIVE_ATTRS = new Set(['group', 'strides', 'dilations', 'kernel_shape']);

/** A parsed ONNX model with the context messages need. */
export class OnnxContext {
  readonly consts = new Map<string, OnnxConst>();
  readonly opset: number;
  readonly msOpset: number | undefined;
  constructor(readonly model: OnnxModelProto, readonly file?: string) {
    const ops = model.opset_import ?? [];
    const def = ops.find((o) => !o.domain || o.domain === 'ai.onnx');
    if (!def) throw new OnnxImportError('the model imports no default-domain opset', file);
    this.opset = Number(def.version);
    this.msOpset = ops.find((o) => o.domain === 'com.microsoft')?.version;
    if (!model.graph) throw new OnnxImportError('the model has no graph', file);
    for (const t of model.graph.initializer ?? []) this.consts.set(t.name, this.tensor(t, `initializer '${t.name}'`));
  }

  /** An error about a node. */
  error(n: OnnxNodeProto, what: string, attribute?: string): OnnxImportError {
    return new OnnxImportError(`node '${n.name || n.output?.[0] || '?'}' (${n.op_type}): ${what}`, this.file, n.name, n.op_type, attribute);
  }

  /** Decodes a TensorProto (raw_data or the typed fields); external data is refused. */
  tensor(t: OnnxTensorProto & { float_data?: number[]; int32_data?: number[]; int64_data?: number[]; double_data?: number[]; data_location?: number; external_data?: unknown[] }, what: string): OnnxConst {
    const dims = (t.dims ?? []).map(Number);
    const n = dims.reduce((a, b) => a * b, 1);
    if (t.data_location === 1 || (t.external_data && t.external_data.length))
      throw new OnnxImportError(`${what} stores its data in an external file, which ptq-node does not read; re-save the model with the weights inside (onnx.save(model, path, save_as_external_data=False))`, this.file);
    const raw = t.raw_data && t.raw_data.length ? t.raw_data : undefined;
    const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
    const need = (bytes: number) => {
      if (view && view.byteLength !== n * bytes) throw new OnnxImportError(`${what} has ${view.byteLength} bytes of data, dims [${dims.join(', ')}] need ${n * bytes}`, this.file);
    };
    let data: OnnxConst['data'];
    switch (t.data_type) {
      case DT.FLOAT:
        need(4);
        // x86 is little-endian, as ONNX raw data: an aligned copy of the bytes is the array.
        data = raw ? new Float32Array(Uint8Array.from(raw).buffer) : Float32Array.from(t.float_data ?? []);
        break;
      case DT.DOUBLE:
        need(8);
        data = Float32Array.from(view ? Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true)) : t.double_data ?? []);
        break;
      case DT.INT64:
        need(8);
        data = view ? Array.from({ length: n }, (_, i) => Number(view.getBigInt64(8 * i, true))) : (t.int64_data ?? []).map(Number);
        break;
      case DT.INT32:
        need(4);
        data = raw ? new Int32Array(Uint8Array.from(raw).buffer) : Int32Array.from(t.int32_data ?? []);
        break;
      case DT.UINT8:
        need(1);
        data = raw ? Uint8Array.from(raw) : Uint8Array.from(t.int32_data ?? []);
        break;
      case DT.INT8:
        need(1);
        data = raw ? Int8Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength)) : Int8Array.from(t.int32_data ?? []);
        break;
      default:
        throw new OnnxImportError(`${what} has data type ${DT_NAMES[t.data_type] ?? t.data_type}, which ptq-node does not import`, this.file);
    }
    if (data.length !== n) throw new OnnxImportError(`${what} has ${data.length} values but dims [${dims.join(', ')}] need ${n} (is its data missing?)`, this.file);
    return { name: t.name, dims, dataType: t.data_type, data };
  }

  attr(n: OnnxNodeProto, name: string): OnnxAttributeProto | undefined {
    return (n.attribute ?? []).find((a) => a.name === name);
  }
  int(n: OnnxNodeProto, name: string, dflt: number): number {
    const a = this.attr(n, name);
    return a ? this.checkInt(n, name, Number(a.i ?? 0)) : dflt;
  }
  /** Range rules by attribute name: sizes at least 1, pads at least 0, anything a safe integer. */
  private checkInt(n: OnnxNodeProto, name: string, v: number): number {
    const lo = POSITIVE_ATTRS.has(name) ? 1 : name === 'pads' ? 0 : -Number.MAX_SAFE_INTEGER;
    const hi = POSITIVE_ATTRS.has(name) || name === 'pads' ? 1 << 16 : Number.MAX_SAFE_INTEGER;
    if (!Number.isInteger(v) || v < lo || v > hi) throw this.error(n, `${name} value ${v} is out of range [${lo}, ${hi}]`, name);
    return v;
  }
  float(n: OnnxNodeProto, name: string, dflt: number): number {
    const a = this.attr(n, name);
    return a ? Number(a.f ?? 0) : dflt;
  }
  ints(n: OnnxNodeProto, name: string): number[] | undefined {
    const a = this.attr(n, name);
    return a ? (a.ints ?? []).map((v) => this.checkInt(n, name, Number(v))) : undefined;
  }
  str(n: OnnxNodeProto, name: string, dflt: string): string {
    const a = this.attr(n, name);
    return a && a.s ? Buffer.from(a.s).toString('utf8') : dflt;
  }
  /** Refuses attributes this importer does not know for the op. */
  onlyAttrs(n: OnnxNodeProto, known: string[]): void {
    for (const a of n.attribute ?? [])
      if (!known.includes(a.name)) throw this.error(n, `attribute '${a.name}' is not supported (supported: ${known.join(', ') || 'none'})`, a.name);
  }
  /** A constant input of a node, or an error saying it must be one. */
  constInput(n: OnnxNodeProto, i: number, what: string): OnnxConst {
    const name = n.input[i];
    const c = name ? this.consts.get(name) : undefined;
    if (!c) throw this.error(n, `input ${i} (${what}) must be a constant (initializer or Constant), got '${name ?? ''}'`);
    return c;
  }
  has(n: OnnxNodeProto, i: number): boolean {
    return !!n.input[i];
  }
}

/** Reads the model bytes (path or bytes) and parses them. */
export function readOnnx(file: string | Uint8Array | OnnxModelProto): { model: OnnxModelProto; label?: string } {
  const label = typeof file === 'string' ? file : undefined;
  if (!(typeof file === 'string' || file instanceof Uint8Array)) {
    if (!file.graph || !file.graph.node?.length) throw new OnnxImportError('not an ONNX model (no graph nodes)');
    return { model: file };
  }
  let bytes: Uint8Array;
  try {
    bytes = typeof file === 'string' ? fs.readFileSync(file) : file;
  } catch (e) {
    throw new FormatError(`cannot read: ${(e as Error).message}`, label);
  }
  let model: OnnxModelProto;
  try {
    model = decodeOnnxModel(bytes);
  } catch (e) {
    throw new OnnxImportError(`not an ONNX model (protobuf decoding failed: ${(e as Error).message})`, label);
  }
  if (!model.graph || !model.graph.node?.length) throw new OnnxImportError('not an ONNX model (no graph nodes)', label);
  return { model, label };
}

/** Slot names: the last torch scope of the node name plus its op ('features_0_0_conv'), else a sanitized name. */
function slotNamer(): (n: OnnxNodeProto, index: number) => string {
  const used = new Set(['quant', 'dequant']);
  return (n, index) => {
    const parts = (n.name ?? '').split('/').filter(Boolean);
    let base = parts.length >= 2 ? `${parts[parts.length - 2]}_${n.op_type}` : (n.name || `${n.op_type}_${index}`);
    base = base.replace(/[^A-Za-z0-9_]/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '').toLowerCase() || `node_${index}`;
    if (/^[0-9]/.test(base)) base = `n${base}`;
    let name = base, k = 1;
    while (used.has(name)) name = `${base}_${k++}`;
    used.add(name);
    return name;
  };
}

/** The result of importing a float model: the graph and its float weights (state_dict keys). */
export interface ImportedGraph {
  spec: GraphSpec;
  weights: Map<string, Tensor>;
}

const pairOf = (v: number[] | undefined, dflt: number): [number, number] => (v && v.length ? [v[0], v[1] ?? v[0]] : [dflt, dflt]);

/** Builds the graph description and weights of a float ONNX model. */
export function buildFloatGraph(ctx: OnnxContext, options: OnnxImportOptions = {}): ImportedGraph {
  const relu6 = options.relu6 ?? 'clamp';
  const fallback = options.fallback ?? 'error';
  if (fallback !== 'error' && fallback !== 'float') throw new RangeError(`fallback must be 'error' or 'float', got '${String(fallback)}'`);
  if (relu6 !== 'relu' && relu6 !== 'clamp') throw new RangeError(`relu6 must be 'relu' or 'clamp', got '${String(relu6)}'`);
  const g = ctx.model.graph;
  const file = ctx.file;
  if (ctx.opset < 11 || ctx.opset > 17) throw new OnnxImportError(`opset ${ctx.opset} is not supported (ptq-node imports opsets 11 to 17)`, file);
  const inputs = (g.input ?? []).filter((i) => !ctx.consts.has(i.name));
  if (inputs.length !== 1) throw new OnnxImportError(`the graph has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); ptq-node imports single-input models`, file);
  if ((g.output ?? []).length !== 1) throw new OnnxImportError(`the graph has ${(g.output ?? []).length} outputs; ptq-node imports single-output models`, file);
  const input = inputs[0];
  const tt = input.type?.tensor_type;
  if (tt && tt.elem_type !== DT.FLOAT) throw new OnnxImportError(`the graph input '${input.name}' is ${DT_NAMES[tt.elem_type] ?? tt.elem_type}, expected float`, file);
  const inputShape = staticInputShape(tt?.shape?.dim ?? [], input.name, file);

  const nodes: GraphNodeSpec[] = [];
  const weights = new Map<string, Tensor>();
  const alias = new Map<string, string>();
  const resolve = (v: string) => alias.get(v) ?? v;
  const available = new Set<string>([input.name]);
  // Spatial size of 4-D values when static (for auto_pad SAME with strides > 1).
  const hw = new Map<string, [number, number]>();
  if (inputShape.length === 4 && inputShape[2] && inputShape[3]) hw.set(input.name, [inputShape[2], inputShape[3]]);
  const name = slotNamer();
  const consumers = new Map<string, OnnxNodeProto[]>();
  for (const n of g.node) for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const skip = new Set<OnnxNodeProto>();
  const graphOutput = g.output[0].name;

  const tensor = (c: OnnxConst, shape?: number[]) => new Tensor(Float32Array.from(c.data as ArrayLike<number>), shape ?? c.dims);
  const useInput = (n: OnnxNodeProto, i: number): string => {
    const v = resolve(n.input[i]);
    if (ctx.consts.has(n.input[i])) throw ctx.error(n, `input ${i} ('${n.input[i]}') is a constant; ptq-node needs a computed tensor there`);
    if (!available.has(v)) throw ctx.error(n, `input '${n.input[i]}' is not produced by an earlier node (the graph is not topologically sorted or the value is unknown)`);
    return v;
  };
  const emit = (n: OnnxNodeProto, spec: Omit<GraphNodeSpec, 'onnxName' | 'opType' | 'output'>, output = n.output[0]) => {
    nodes.push({ ...spec, onnxName: n.name || n.output[0], opType: n.op_type, output });
    available.add(output);
  };
  const onlyFirstOutput = (n: OnnxNodeProto) => {
    for (let i = 1; i < n.output.length; i++)
      if (n.output[i] && consumers.has(n.output[i])) throw ctx.error(n, `output ${i} ('${n.output[i]}') is used; only the first output is supported`);
  };
  const singleConsumer = (v: string): OnnxNodeProto | undefined => {
    const c = consumers.get(v);
    return c && c.length === 1 && v !== graphOutput ? c[0] : undefined;
  };
  const copyHW = (n: OnnxNodeProto, from: string) => {
    const s = hw.get(from);
    if (s) hw.set(n.output[0], s);
  };

  g.node.forEach((n, index) => {
    if (skip.has(n)) return;
    if (n.domain && n.domain !== 'ai.onnx') throw ctx.error(n, `domain '${n.domain}' is not supported in a float model`);
    const op = n.op_type;
    switch (op) {
      case 'Constant': {
        ctx.onlyAttrs(n, ['value', 'value_float', 'value_floats', 'value_int', 'value_ints']);
        const a = (n.attribute ?? [])[0];
        if (!a) throw ctx.error(n, 'no value attribute');
        let c: OnnxConst;
        if (a.name === 'value') {
          const t = (a as { t?: OnnxTensorProto }).t;
          if (!t) throw ctx.error(n, "attribute 'value' holds no tensor", 'value');
          c = ctx.tensor(t, `Constant '${n.name}'`);
        }
        else if (a.name === 'value_float') c = { name: n.output[0], dims: [], dataType: DT.FLOAT, data: new Float32Array([Number(a.f)]) };
        else if (a.name === 'value_floats') c = { name: n.output[0], dims: [a.floats!.length], dataType: DT.FLOAT, data: Float32Array.from(a.floats!) };
        else if (a.name === 'value_int') c = { name: n.output[0], dims: [], dataType: DT.INT64, data: [Number(a.i)] };
        else c = { name: n.output[0], dims: [a.ints!.length], dataType: DT.INT64, data: a.ints!.map(Number) };
        ctx.consts.set(n.output[0], c);
        return;
      }
      case 'Identity':
      case 'Dropout': {
        ctx.onlyAttrs(n, op === 'Dropout' ? ['ratio', 'seed'] : []);
        if (op === 'Dropout' && n.input.length > 2 && n.input[2]) {
          const t = ctx.constInput(n, 2, 'training_mode');
          if ((t.data as number[])[0]) throw ctx.error(n, 'training_mode is true; ptq-node imports inference graphs only', 'training_mode');
        }
        onlyFirstOutput(n);
        if (ctx.consts.has(n.input[0])) {
          ctx.consts.set(n.output[0], ctx.consts.get(n.input[0])!);
          return;
        }
        alias.set(n.output[0], useInput(n, 0));
        copyHW(n, resolve(n.input[0]));
        return;
      }
      case 'Pad': {
        ctx.onlyAttrs(n, ['mode']);
        const pads = Array.from(ctx.constInput(n, 1, 'pads').data as number[]);
        if (ctx.str(n, 'mode', 'constant') !== 'constant') throw ctx.error(n, `mode '${ctx.str(n, 'mode', 'constant')}' is not supported (only constant zero padding)`, 'mode');
        if (ctx.has(n, 2) && Number(ctx.constInput(n, 2, 'constant_value').data[0]) !== 0) throw ctx.error(n, 'a non-zero constant_value is not supported', 'constant_value');
        if (ctx.has(n, 3)) throw ctx.error(n, 'the axes input is not supported', 'axes');
        if (pads.every((p) => p === 0)) {
          alias.set(n.output[0], useInput(n, 0));
          copyHW(n, resolve(n.input[0]));
          return;
        }
        if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads.some((p) => p < 0))
          throw ctx.error(n, `pads [${pads.join(', ')}]: only non-negative padding of H and W of a 4-D tensor is supported`, 'pads');
        const x = useInput(n, 0);
        const p4: [number, number, number, number] = [pads[2], pads[3], pads[6], pads[7]];
        emit(n, { name: name(n, index), op: 'pad', inputs: [x], pads: p4 });
        const s0 = hw.get(x);
        if (s0) hw.set(n.output[0], [s0[0] + p4[0] + p4[2], s0[1] + p4[1] + p4[3]]);
        return;
      }
      case 'Conv': {
        ctx.onlyAttrs(n, ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad']);
        const x = useInput(n, 0);
        const w = ctx.constInput(n, 1, 'weight');
        if (w.dims.length !== 4) throw ctx.error(n, `weight has rank ${w.dims.length}; only 2-D convolutions (4-D weights) are supported`, 'kernel_shape');
        const [cout, cinPerGroup, kh, kw] = w.dims;
        const group = ctx.int(n, 'group', 1);
        const ks = ctx.ints(n, 'kernel_shape');
        if (ks && (ks[0] !== kh || ks[1] !== kw)) throw ctx.error(n, `kernel_shape [${ks.join(', ')}] differs from the weight's [${kh}, ${kw}]`, 'kernel_shape');
        const stride = pairOf(ctx.ints(n, 'strides'), 1);
        const dilation = pairOf(ctx.ints(n, 'dilations'), 1);
        const pads = convPads(ctx, n, [kh, kw], stride, dilation, hw.get(x));
        const symmetric = pads[0] === pads[2] && pads[1] === pads[3];
        const padding: [number, number] = symmetric ? [pads[0], pads[1]] : [0, 0];
        let convIn = x;
        if (!symmetric) {
          // Asymmetric padding (TensorFlow's SAME with strides): an explicit zero pad (zero point when quantized), then the conv.
          convIn = `${n.output[0]}__padded`;
          emit(n, { name: name({ ...n, op_type: 'Pad' }, index), op: 'pad', inputs: [x], pads }, convIn);
          const s0 = hw.get(x);
          if (s0) hw.set(convIn, [s0[0] + pads[0] + pads[2], s0[1] + pads[1] + pads[3]]);
        }
        const desc: ModuleDesc = { type: 'Conv2d', inChannels: cinPerGroup * group, outChannels: cout, kernel: [kh, kw], stride, padding, dilation, groups: group, bias: ctx.has(n, 2) };
        if (cout % group) throw ctx.error(n, `${cout} output channels are not divisible by group ${group}`, 'group');
        const slot = name(n, index);
        weights.set(`${slot}.weight`, tensor(w));
        if (desc.bias) {
          const b = ctx.constInput(n, 2, 'bias');
          weights.set(`${slot}.bias`, tensor(b, [cout]));
        }
        emit(n, { name: slot, op: 'module', inputs: [convIn], module: desc });
        const s = hw.get(convIn);
        if (s) hw.set(n.output[0], [
          Math.floor((s[0] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1,
          Math.floor((s[1] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1]);
        return;
      }
      case 'BatchNormalization': {
        ctx.onlyAttrs(n, ['epsilon', 'momentum', 'training_mode', 'spatial']);
        if (ctx.int(n, 'training_mode', 0)) throw ctx.error(n, 'training_mode=1; ptq-node imports inference graphs only', 'training_mode');
        if (ctx.int(n, 'spatial', 1) !== 1) throw ctx.error(n, 'spatial=0 is not supported', 'spatial');
        onlyFirstOutput(n);
        const x = useInput(n, 0);
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => ctx.constInput(n, i, ['scale', 'B', 'mean', 'var'][i - 1]));
        const c = scale.dims[0];
        const slot = name(n, index);
        weights.set(`${slot}.weight`, tensor(scale));
        weights.set(`${slot}.bias`, tensor(bias));
        weights.set(`${slot}.running_mean`, tensor(mean));
        weights.set(`${slot}.running_var`, tensor(variance));
        weights.set(`${slot}.num_batches_tracked`, Tensor.zeros([]));
        // ONNX momentum is the weight of the running value: torch's momentum = 1 - momentum.
        const momentum = Math.round((1 - ctx.float(n, 'momentum', 0.9)) * 1e6) / 1e6;
        emit(n, { name: slot, op: 'module', inputs: [x], module: { type: 'BatchNorm2d', numFeatures: c, eps: Math.fround(ctx.float(n, 'epsilon', 1e-5)), momentum } });
        copyHW(n, x);
        return;
      }
      case 'Relu': {
        ctx.onlyAttrs(n, []);
        const x = useInput(n, 0);
        emit(n, { name: name(n, index), op: 'module', inputs: [x], module: { type: 'ReLU' } });
        copyHW(n, x);
        return;
      }
      case 'Clip': {
        ctx.onlyAttrs(n, ctx.opset < 11 ? ['min', 'max'] : []);
        const x = useInput(n, 0);
        const lo = ctx.has(n, 1) ? (ctx.constInput(n, 1, 'min').data as Float32Array)[0] : -Infinity;
        const hi = ctx.has(n, 2) ? (ctx.constInput(n, 2, 'max').data as Float32Array)[0] : Infinity;
        let desc: ModuleDesc;
        if (lo === 0 && hi === Infinity) desc = { type: 'ReLU' };
        else if (lo === 0 && hi === 6) desc = relu6 === 'relu' ? { type: 'ReLU' } : { type: 'ReLU6' };
        else throw ctx.error(n, `Clip(min=${lo}, max=${hi}) is not supported: only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU)`, 'min/max');
        emit(n, { name: name(n, index), op: 'module', inputs: [x], module: desc });
        copyHW(n, x);
        return;
      }
      case 'Add':
      case 'Mul': {
        ctx.onlyAttrs(n, []);
        const a = useInput(n, 0), b = useInput(n, 1);
        let op2: GraphNodeSpec['op'] = op === 'Add' ? 'add' : 'mul';
        let output = n.output[0];
        const next = singleConsumer(n.output[0]);
        if (op === 'Add' && next && next.op_type === 'Relu' && next.input[0] === n.output[0]) {
          // Add followed by Relu: FloatFunctional.add_relu (one observer after the Relu, as torchvision's quantizable blocks).
          op2 = 'add_relu';
          output = next.output[0];
          skip.add(next);
        }
        emit(n, { name: name(n, index), op: op2, inputs: [a, b] }, output);
        copyHW({ ...n, output: [output] } as OnnxNodeProto, a);
        return;
      }
      case 'Concat': {
        ctx.onlyAttrs(n, ['axis']);
        const ins = n.input.map((_, i) => useInput(n, i));
        emit(n, { name: name(n, index), op: 'cat', inputs: ins, axis: ctx.int(n, 'axis', 1) });
        copyHW(n, ins[0]);
        return;
      }
      case 'GlobalAveragePool': {
        ctx.onlyAttrs(n, []);
        const x = useInput(n, 0);
        emit(n, { name: name(n, index), op: 'module', inputs: [x], module: { type: 'AdaptiveAvgPool2d' } });
        hw.set(n.output[0], [1, 1]);
        return;
      }
      case 'MaxPool':
      case 'AveragePool': {
        ctx.onlyAttrs(n, op === 'MaxPool' ? ['kernel_shape', 'strides', 'pads', 'dilations', 'ceil_mode', 'auto_pad', 'storage_order'] : ['kernel_shape', 'strides', 'pads', 'ceil_mode', 'auto_pad', 'count_include_pad']);
        onlyFirstOutput(n);
        const x = useInput(n, 0);
        const k = ctx.ints(n, 'kernel_shape');
        if (!k || k.length !== 2) throw ctx.error(n, 'kernel_shape must have 2 values (2-D pooling)', 'kernel_shape');
        if (k[0] !== k[1]) throw ctx.error(n, `non-square kernel [${k.join(', ')}] is not supported`, 'kernel_shape');
        const s = pairOf(ctx.ints(n, 'strides'), 1);
        if (s[0] !== s[1]) throw ctx.error(n, `non-square strides [${s.join(', ')}] are not supported`, 'strides');
        if (ctx.int(n, 'ceil_mode', 0)) throw ctx.error(n, 'ceil_mode=1 is not supported', 'ceil_mode');
        if (ctx.int(n, 'storage_order', 0)) throw ctx.error(n, 'storage_order=1 is not supported', 'storage_order');
        const d = pairOf(ctx.ints(n, 'dilations'), 1);
        if (d[0] !== 1 || d[1] !== 1) throw ctx.error(n, `dilations [${d.join(', ')}] are not supported for pooling`, 'dilations');
        const pad = convPadding(ctx, n, [k[0], k[1]], s, [1, 1], hw.get(x));
        if (pad[0] !== pad[1]) throw ctx.error(n, `different vertical and horizontal padding [${pad.join(', ')}] is not supported`, 'pads');
        const desc: ModuleDesc = op === 'MaxPool' ? { type: 'MaxPool2d', kernel: k[0], stride: s[0], padding: pad[0] }
          : { type: 'AvgPool2d', kernel: k[0], stride: s[0], padding: pad[0], countIncludePad: ctx.int(n, 'count_include_pad', 0) === 1 };
        emit(n, { name: name(n, index), op: 'module', inputs: [x], module: desc });
        const sz = hw.get(x);
        if (sz) hw.set(n.output[0], sz.map((v) => Math.floor((v + 2 * pad[0] - k[0]) / s[0]) + 1) as [number, number]);
        return;
      }
      case 'ReduceMean': {
        ctx.onlyAttrs(n, ['axes', 'keepdims']);
        const x = useInput(n, 0);
        const axes = ctx.ints(n, 'axes') ?? (ctx.has(n, 1) ? Array.from(ctx.constInput(n, 1, 'axes').data as number[]) : undefined);
        const norm = (axes ?? []).map((a) => (a < 0 ? a + 4 : a)).sort();
        if (norm.length !== 2 || norm[0] !== 2 || norm[1] !== 3) throw ctx.error(n, `axes [${(axes ?? []).join(', ')}]: only the spatial mean of a 4-D tensor (axes [2, 3]) is supported`, 'axes');
        emit(n, { name: name(n, index), op: 'mean', inputs: [x], keepdims: ctx.int(n, 'keepdims', 1) === 1 });
        return;
      }
      case 'Flatten': {
        ctx.onlyAttrs(n, ['axis']);
        const axis = ctx.int(n, 'axis', 1);
        if (axis !== 1) throw ctx.error(n, `axis ${axis}: only axis 1 is supported`, 'axis');
        emit(n, { name: name(n, index), op: 'module', inputs: [useInput(n, 0)], module: { type: 'Flatten', startDim: 1 } });
        return;
      }
      case 'Reshape': {
        ctx.onlyAttrs(n, ['allowzero']);
        if (ctx.int(n, 'allowzero', 0)) throw ctx.error(n, 'allowzero=1 is not supported', 'allowzero');
        const shape = Array.from(ctx.constInput(n, 1, 'shape (computed shapes, e.g. Shape->Gather->Concat, are not supported)').data as number[]);
        emit(n, { name: name(n, index), op: 'reshape', inputs: [useInput(n, 0)], shape });
        return;
      }
      case 'Transpose': {
        ctx.onlyAttrs(n, ['perm']);
        const perm = ctx.ints(n, 'perm');
        if (!perm) throw ctx.error(n, 'perm is required (the default reverses all dims, which is not a layout-only change)', 'perm');
        emit(n, { name: name(n, index), op: 'transpose', inputs: [useInput(n, 0)], perm });
        return;
      }
      case 'Gemm':
      case 'MatMul': {
        ctx.onlyAttrs(n, op === 'Gemm' ? ['alpha', 'beta', 'transA', 'transB'] : []);
        const x = useInput(n, 0);
        const w = ctx.constInput(n, 1, 'B (the weight)');
        if (w.dims.length !== 2) throw ctx.error(n, `the weight has rank ${w.dims.length}; only 2-D weights are supported`);
        if (op === 'Gemm') {
          if (ctx.int(n, 'transA', 0)) throw ctx.error(n, 'transA=1 is not supported', 'transA');
          if (ctx.float(n, 'alpha', 1) !== 1) throw ctx.error(n, `alpha=${ctx.float(n, 'alpha', 1)} is not supported (only 1)`, 'alpha');
          if (ctx.has(n, 2) && ctx.float(n, 'beta', 1) !== 1) throw ctx.error(n, `beta=${ctx.float(n, 'beta', 1)} is not supported (only 1)`, 'beta');
        }
        const transB = op === 'Gemm' && ctx.int(n, 'transB', 0) === 1;
        const [outF, inF] = transB ? w.dims : [w.dims[1], w.dims[0]];
        const wd = w.data as Float32Array;
        const wt = transB ? Float32Array.from(wd) : new Float32Array(outF * inF);
        if (!transB) for (let i = 0; i < inF; i++) for (let j = 0; j < outF; j++) wt[j * inF + i] = wd[i * outF + j];
        let bias: Float32Array | null = null;
        let output = n.output[0];
        if (op === 'Gemm' && ctx.has(n, 2)) {
          const c = ctx.constInput(n, 2, 'C (the bias)');
          if (c.data.length !== outF) throw ctx.error(n, `bias C with dims [${c.dims.join(', ')}] is not a per-output vector of ${outF}`);
          bias = Float32Array.from(c.data as Float32Array);
        } else if (op === 'MatMul') {
          // MatMul followed by Add of a constant vector (TensorFlow / Keras Dense): a Linear with bias.
          const next = singleConsumer(n.output[0]);
          const other = next && next.op_type === 'Add' ? next.input.find((v) => v !== n.output[0]) : undefined;
          const c = other !== undefined ? ctx.consts.get(other) : undefined;
          if (next && c && c.data.length === outF && c.dataType === DT.FLOAT) {
            bias = Float32Array.from(c.data as Float32Array);
            output = next.output[0];
            skip.add(next);
          }
        }
        const slot = name(n, index);
        weights.set(`${slot}.weight`, new Tensor(wt, [outF, inF]));
        if (bias) weights.set(`${slot}.bias`, new Tensor(bias, [outF]));
        emit(n, { name: slot, op: 'module', inputs: [x], module: { type: 'Linear', inFeatures: inF, outFeatures: outF, bias: !!bias } }, output);
        return;
      }
      case 'Sigmoid':
      case 'Tanh':
      case 'HardSigmoid':
      case 'HardSwish':
      case 'Softmax': {
        if (fallback !== 'float')
          throw ctx.error(n, `op type '${op}' cannot be quantized by ptq-node; import with fallback 'float' (CLI: --fallback float) to keep it in float between DeQuantize and Quantize`);
        ctx.onlyAttrs(n, op === 'HardSigmoid' ? ['alpha', 'beta'] : op === 'Softmax' ? ['axis'] : []);
        const x = useInput(n, 0);
        const kind = op.toLowerCase() as 'sigmoid';
        const desc: ModuleDesc = { type: 'Activation', kind };
        if (op === 'HardSigmoid') Object.assign(desc, { alpha: Math.fround(ctx.float(n, 'alpha', 0.2)), beta: Math.fround(ctx.float(n, 'beta', 0.5)) });
        if (op === 'Softmax') Object.assign(desc, { axis: ctx.int(n, 'axis', ctx.opset >= 13 ? -1 : 1) });
        emit(n, { name: name(n, index), op: 'module', inputs: [x], module: desc, float: true });
        copyHW(n, x);
        return;
      }
      default:
        if (INT8_OPS.has(op)) throw ctx.error(n, 'an int8 op in a float model import; use importOnnx, which detects int8 models');
        throw ctx.error(n, `op type '${op}' is not supported; ptq-node imports ${SUPPORTED_FLOAT_OPS.join(', ')}` +
          ` (and ${FLOAT_ONLY_OPS.join(', ')} kept in float with fallback 'float')`);
    }
  });
  const output = resolve(graphOutput);
  if (!available.has(output)) throw new OnnxImportError(`the graph output '${graphOutput}' is not computed by any supported node`, file);
  if (fallback === 'float') markFloat(nodes, output);
  return { spec: { format: GRAPH_FORMAT, input: input.name, output, inputShape, nodes }, weights };
}

/**
 * Fallback 'float': the nodes ptq-node cannot quantize run in float: ReLU6 / BatchNormalization
 * that fuseModel will not fold into a conv (the same single-consumer rule).
 */
function markFloat(nodes: GraphNodeSpec[], output: string): void {
  const producer = new Map(nodes.map((n) => [n.output, n]));
  const consumers = new Map<string, number>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const fusedAfter = (n: GraphNodeSpec, types: string[]): boolean => {
    const p = producer.get(n.inputs[0]);
    return !!p && consumers.get(p.output) === 1 && p.output !== output && p.op === 'module' && types.includes(p.module!.type);
  };
  for (const n of nodes) {
    const t = n.module?.type;
    if (t === 'BatchNorm2d' && !fusedAfter(n, ['Conv2d'])) n.float = true;
    if (t === 'ReLU6') {
      const p = producer.get(n.inputs[0]);
      const viaBn = p && p.module?.type === 'BatchNorm2d' && !p.float && fusedAfter(n, ['BatchNorm2d']);
      if (!fusedAfter(n, ['Conv2d']) && !viaBn) n.float = true;
    }
  }
}

/** Symmetric [padH, padW] from pads / auto_pad, or an error naming the attribute. */
export function convPadding(ctx: OnnxContext, n: OnnxNodeProto, k: [number, number], stride: [number, number], dilation: [number, number], size?: [number, number]): [number, number] {
  const [t, l, b, r] = convPads(ctx, n, k, stride, dilation, size);
  if (t !== b || l !== r) {
    const attr = ctx.attr(n, 'auto_pad') ? 'auto_pad' : 'pads';
    throw ctx.error(n, `asymmetric padding [${t}, ${l}, ${b}, ${r}] is not supported here (ptq-node's kernels pad symmetrically)`, attr);
  }
  return [t, l];
}

/** [top, left, bottom, right] from pads / auto_pad (SAME_UPPER puts the odd pixel at the end). */
export function convPads(ctx: OnnxContext, n: OnnxNodeProto, k: [number, number], stride: [number, number], dilation: [number, number], size?: [number, number]): [number, number, number, number] {
  const auto = ctx.str(n, 'auto_pad', 'NOTSET');
  if (auto === 'VALID') return [0, 0, 0, 0];
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const begin: number[] = [], end: number[] = [];
    for (let d = 0; d < 2; d++) {
      const extent = dilation[d] * (k[d] - 1) + 1;
      let total: number;
      if (stride[d] === 1) total = extent - 1;
      else if (size) total = Math.max((Math.ceil(size[d] / stride[d]) - 1) * stride[d] + extent - size[d], 0);
      else throw ctx.error(n, `auto_pad ${auto} with stride ${stride[d]} needs the input size, which is not static here`, 'auto_pad');
      const small = Math.floor(total / 2);
      begin.push(auto === 'SAME_UPPER' ? small : total - small);
      end.push(auto === 'SAME_UPPER' ? total - small : small);
    }
    return [begin[0], begin[1], end[0], end[1]];
  }
  if (auto !== 'NOTSET') throw ctx.error(n, `auto_pad '${auto}' is not supported`, 'auto_pad');
  const pads = ctx.ints(n, 'pads') ?? [0, 0, 0, 0];
  if (pads.length !== 4) throw ctx.error(n, `pads [${pads.join(', ')}] must have 4 values (2-D)`, 'pads');
  return [pads[0], pads[1], pads[2], pads[3]];
}

/**
 * The graph input's shape, null for dynamic dims: a declared size must be a plausible one (at most
 * 2^24), since it becomes a preprocessing default and a plan's input shape.
 */
export function staticInputShape(dims: OnnxDimension[], name: string, file?: string): (number | null)[] {
  if (dims.length > 8) throw new OnnxImportError(`the graph input '${name}' has rank ${dims.length}`, file);
  return dims.map((d, i) => {
    if (d.dim_value === undefined || d.dim_value === null) return null;
    const v = Number(d.dim_value);
    if (v === 0) return null; // unset (or symbolic)
    if (!Number.isInteger(v) || v < 1 || v > 1 << 24) throw new OnnxImportError(`the graph input '${name}' declares dim ${i} = ${v}; expected 1..2^24, or a symbolic dim`, file);
    return v;
  });
}

/** True when the model contains int8 (QOperator or QDQ) ops. */
export function isInt8Onnx(model: OnnxModelProto): boolean {
  return model.graph.node.some((n) => INT8_OPS.has(n.op_type));
}

/**
 * importOnnx(file): a float ONNX model (opsets 11-17) as a GraphModule in eval mode, ready for
 * fuseModel() (Conv+BN(+ReLU) by pattern), qconfig, prepare, calibration and convert, with no
 * stubs or fuse lists to write. Unsupported ops and attributes throw OnnxImportError naming them.
 * `file`: a path, the model bytes, or a decoded ModelProto (decodeOnnxModel).
 */
export function importOnnx(file: string | Uint8Array | OnnxModelProto, options: OnnxImportOptions = {}): GraphModule {
  try {
    return importOnnxUnchecked(file, options);
  } catch (e) {
    // A malformed model that slipped past the checks above is still a FormatError (an ONNX file
    // is untrusted input), with the underlying message, never another exception type.
    if (e instanceof FormatError) throw e;
    throw new OnnxImportError(`malformed ONNX model: ${(e as Error).message}`, typeof file === 'string' ? file : undefined);
  }
}

function importOnnxUnchecked(file: string | Uint8Array | OnnxModelProto, options: OnnxImportOptions): GraphModule {
  const { model, label } = readOnnx(file);
  const ctx = new OnnxContext(model, label);
  if (isInt8Onnx(model)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { importInt8Onnx } = require('./onnx-import-int8') as typeof import('./onnx-import-int8');
    return importInt8Onnx(ctx, { semantics: options.semantics });
  }
  const { spec, weights } = buildFloatGraph(ctx, options);
  const m = new GraphModule(spec);
  m.loadStateDict(weights);
  return m.eval();
}
