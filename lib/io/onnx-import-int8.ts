// Import of int8 ONNX models: QOperator form (QuantizeLinear, QLinearConv, QLinearMatMul,
// com.microsoft QGemm / QLinearAdd / QLinearGlobalAveragePool, uint8 MaxPool / Flatten / Reshape,
// DequantizeLinear) and QDQ form (QuantizeLinear / DequantizeLinear pairs around float ops, as
// ONNX Runtime's quantize_static writes; rewritten to the QOperator ops first). The result is a
// converted GraphModule: our quantized modules, with ONNX semantics where ONNX differs from PyTorch:
// QuantizeLinear divides by the scale, QLinearConv/QGemm add an int32 bias to the accumulator,
// QLinearAdd / QLinearGlobalAveragePool use MLAS's formulas, u8 weights with a zero point are
// shifted to s8 when they fit. Models exported by ptq-node itself carry their PyTorch float biases
// and pool kinds (metadata 'ptq_node.int8'), and re-import with PyTorch semantics: byte-identical.
import { AdaptiveAvgPool2d, MaxPool2d, ReLU } from '../nn/layers';
import { GRAPH_FORMAT, GraphModule, GraphNodeSpec, GraphSpec, ModuleDesc } from '../nn/graph';
import { Module } from '../nn/module';
import { OnnxQGlobalAveragePool, OnnxQLinearAdd, OnnxQLinearConcat } from '../nn/onnx-quantized';
import { DeQuantize, QFunctional, QuantizedConv2d, QuantizedLinear, Quantize, QWeight } from '../nn/quantized';
import { convPadding, OnnxConst, OnnxContext, OnnxImportError, staticInputShape } from './onnx-import';
import type { OnnxNodeProto } from './onnx-export';

/** Options of the int8 import. */
export interface Int8ImportOptions {
  /** 'auto' (default): PyTorch semantics for models ptq-node exported, ONNX semantics otherwise. */
  semantics?: 'auto' | 'onnx' | 'pytorch';
}

interface QParams {
  scale: number;
  zeroPoint: number;
}

interface PtqMeta {
  semantics: 'pytorch';
  float_bias: Record<string, string>;
  mean_nodes: string[];
}

const DT_UINT8 = 2, DT_INT8 = 3, DT_INT32 = 6, DT_FLOAT = 1;

/** An int8 ONNX model as a converted GraphModule. */
export function importInt8Onnx(ctx: OnnxContext, options: Int8ImportOptions = {}): GraphModule {
  const g = ctx.model.graph;
  const file = ctx.file;
  if (ctx.opset < 10 || ctx.opset > 17) throw new OnnxImportError(`opset ${ctx.opset} is not supported (ptq-node imports opsets 10 to 17)`, file);
  const metaProp = (ctx.model.metadata_props ?? []).find((p) => p.key === 'ptq_node.int8');
  let meta: PtqMeta | undefined;
  if (metaProp) {
    try {
      meta = JSON.parse(metaProp.value) as PtqMeta;
    } catch {
      throw new OnnxImportError("metadata 'ptq_node.int8' is not JSON", file);
    }
  }
  const semantics = options.semantics ?? 'auto';
  const pytorch = semantics === 'pytorch' || (semantics === 'auto' && meta?.semantics === 'pytorch');
  if (pytorch && !meta) throw new OnnxImportError("PyTorch semantics need the float biases ptq-node's exporter stores (metadata 'ptq_node.int8'); this model has none", file);

  const inputs = (g.input ?? []).filter((i) => !ctx.consts.has(i.name));
  if (inputs.length !== 1 || (g.output ?? []).length !== 1)
    throw new OnnxImportError(`the graph has ${inputs.length} inputs and ${(g.output ?? []).length} outputs; ptq-node imports single-input, single-output models`, file);
  const input = inputs[0].name;
  const graphOutput = g.output[0].name;
  const inputShape = staticInputShape(inputs[0].type?.tensor_type?.shape?.dim ?? [], input, file);

  // Constant nodes first (they may feed anything).
  for (const n of g.node) if (n.op_type === 'Constant') {
    const a = (n.attribute ?? []).find((x) => x.name === 'value');
    if (!a) throw ctx.error(n, 'only Constant with a tensor value is supported in int8 models', (n.attribute ?? [])[0]?.name);
    ctx.consts.set(n.output[0], ctx.tensor((a as { t?: never }).t as never, `Constant '${n.name}'`));
  }
  const nodes = rewriteQdq(ctx, g.node.filter((n) => n.op_type !== 'Constant'));

  const consumers = new Map<string, OnnxNodeProto[]>();
  for (const n of nodes) for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const only = (v: string): OnnxNodeProto | undefined => {
    const c = consumers.get(v);
    return c && c.length === 1 && v !== graphOutput ? c[0] : undefined;
  };

  const specNodes: GraphNodeSpec[] = [];
  const modules = new Map<string, Module>();
  const qp = new Map<string, QParams>();
  const alias = new Map<string, string>();
  const resolve = (v: string) => alias.get(v) ?? v;
  const skip = new Set<OnnxNodeProto>();
  const used = new Set(['quant', 'dequant']);
  let quantModule: Quantize | undefined;
  let quantOut: string | undefined;
  let finalValue: string | undefined;
  const slot = (n: OnnxNodeProto, i: number) => {
    let base = (n.name || `${n.op_type}_${i}`).replace(/[^A-Za-z0-9_]/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '').toLowerCase() || `node_${i}`;
    if (/^[0-9]/.test(base)) base = `n${base}`;
    let s = base, k = 1;
    while (used.has(s)) s = `${base}_${k++}`;
    used.add(s);
    return s;
  };

  const scalar = (n: OnnxNodeProto, i: number, what: string): number => {
    const c = ctx.constInput(n, i, what);
    if (c.data.length !== 1) throw ctx.error(n, `${what} must be a scalar (per-tensor), got dims [${c.dims.join(', ')}]`);
    return Number(c.data[0]);
  };
  const actQ = (n: OnnxNodeProto, s: number, z: number, what: string): QParams => {
    const scale = scalar(n, s, `${what} scale`);
    // An absent zero point is uint8 0 (ONNX's default).
    const zc = ctx.has(n, z) ? ctx.constInput(n, z, `${what} zero point`) : { name: '', dims: [], dataType: DT_UINT8, data: new Uint8Array(1) };
    if (zc.dataType !== DT_UINT8) throw ctx.error(n, `${what} zero point is ${zc.dataType === DT_INT8 ? 'int8' : `type ${zc.dataType}`}; ptq-node's activations are uint8`);
    if (zc.data.length !== 1) throw ctx.error(n, `${what} zero point must be a scalar`);
    if (!(scale > 0) || !Number.isFinite(scale)) throw ctx.error(n, `${what} scale ${scale} is not a positive number`);
    return { scale: Math.fround(scale), zeroPoint: Number(zc.data[0]) };
  };
  const quantIn = (n: OnnxNodeProto, i: number, s: number, z: number): [string, QParams] => {
    const v = resolve(n.input[i]);
    const have = qp.get(v);
    if (!have) throw ctx.error(n, `input '${n.input[i]}' is not a quantized value produced by an earlier node`);
    const want = actQ(n, s, z, `input ${i}`);
    if (want.scale !== have.scale || want.zeroPoint !== have.zeroPoint)
      throw ctx.error(n, `input '${n.input[i]}' has scale ${have.scale} / zero point ${have.zeroPoint} but the node says ${want.scale} / ${want.zeroPoint} (requantization between ops is not supported)`);
    return [v, have];
  };
  const emit = (n: OnnxNodeProto, spec: Omit<GraphNodeSpec, 'onnxName' | 'opType' | 'output'>, q: QParams, m?: Module, output = n.output[0]) => {
    specNodes.push({ ...spec, onnxName: n.name || n.output[0], opType: n.op_type, output });
    if (m) modules.set(spec.name, m);
    qp.set(output, q);
    return output;
  };
  /** QLinearConv / QGemm output followed by DequantizeLinear -> Relu -> QuantizeLinear with the same qparams: a fused ReLU. */
  const foldRelu = (out: string, q: QParams): string | undefined => {
    const dq = only(out);
    if (!dq || dq.op_type !== 'DequantizeLinear') return undefined;
    const relu = only(dq.output[0]);
    if (!relu || relu.op_type !== 'Relu') return undefined;
    const qn = only(relu.output[0]);
    if (!qn || qn.op_type !== 'QuantizeLinear') return undefined;
    const a = actQ(dq, 1, 2, 'DequantizeLinear'), b = actQ(qn, 1, 2, 'QuantizeLinear');
    if (a.scale !== q.scale || a.zeroPoint !== q.zeroPoint || b.scale !== q.scale || b.zeroPoint !== q.zeroPoint) return undefined;
    skip.add(dq).add(relu).add(qn);
    return qn.output[0];
  };
  /** Weights as QWeight: int8 with zero points 0, or uint8/int8 with zero points shifted into int8 when they fit. */
  const weightOf = (n: OnnxNodeProto, wi: number, si: number, zi: number, outAxisRows: number, transposeKN = false): QWeight => {
    const w = ctx.constInput(n, wi, 'weight');
    const s = ctx.constInput(n, si, 'weight scale');
    const z = ctx.has(n, zi) ? ctx.constInput(n, zi, 'weight zero point') : undefined;
    if (w.dataType !== DT_INT8 && w.dataType !== DT_UINT8) throw ctx.error(n, `weight '${w.name}' is not int8/uint8`);
    if (s.dataType !== DT_FLOAT) throw ctx.error(n, 'weight scale must be float');
    const rows = outAxisRows;
    const perChannel = s.data.length !== 1;
    if (perChannel && s.data.length !== rows) throw ctx.error(n, `weight scale has ${s.data.length} values for ${rows} output channels`);
    if (z && z.data.length !== s.data.length) throw ctx.error(n, 'weight zero point and scale lengths differ');
    let src = w.data as Int8Array | Uint8Array;
    let shape = w.dims;
    if (transposeKN) {
      // [K, N] (MatMul / Gemm transB=0) to [N, K].
      const [k, nn] = w.dims;
      const t = new (src.constructor as Int8ArrayConstructor)(src.length);
      for (let i = 0; i < k; i++) for (let j = 0; j < nn; j++) t[j * k + i] = src[i * nn + j];
      src = t;
      shape = [nn, k];
    }
    const per = src.length / rows;
    const out = new Int8Array(src.length);
    for (let r = 0; r < rows; r++) {
      const zp = z ? Number(z.data[perChannel ? r : 0]) : 0;
      for (let i = r * per; i < (r + 1) * per; i++) {
        const v = src[i] - zp;
        if (v < -128 || v > 127)
          throw ctx.error(n, `weight '${w.name}' minus its zero point ${zp} leaves the int8 range (${v}); ptq-node's kernels take symmetric int8 weights`);
        out[i] = v;
      }
    }
    const scale = Float32Array.from(s.data as Float32Array);
    if (!scale.every((v) => v > 0 && Number.isFinite(v))) throw ctx.error(n, 'weight scales must be positive');
    return { data: out, shape: [...shape], qscheme: perChannel ? 'per_channel_affine' : 'per_tensor_affine', scale, zeroPoint: new Int32Array(scale.length) };
  };
  const biasOf = (n: OnnxNodeProto, bi: number, outF: number): { floatBias: Float32Array | null; onnxBias?: Int32Array } => {
    if (!ctx.has(n, bi)) return { floatBias: null };
    const b = ctx.constInput(n, bi, 'bias');
    if (b.dataType !== DT_INT32 || b.data.length !== outF) throw ctx.error(n, `bias '${b.name}' must be int32 with ${outF} values`);
    if (pytorch) {
      const f = meta!.float_bias[n.input[bi]];
      if (!f) throw ctx.error(n, `no float bias for '${n.input[bi]}' in metadata 'ptq_node.int8'`);
      const bytes = Buffer.from(String(f), 'base64');
      if (bytes.length !== 4 * outF) throw ctx.error(n, `float bias for '${n.input[bi]}' has ${bytes.length} bytes, expected ${4 * outF}`);
      const fb = new Float32Array(Uint8Array.from(bytes).buffer);
      return { floatBias: fb };
    }
    return { floatBias: null, onnxBias: Int32Array.from(b.data as Int32Array) };
  };

  nodes.forEach((n, index) => {
    if (skip.has(n)) return;
    if (n.domain && n.domain !== 'ai.onnx' && n.domain !== 'com.microsoft') throw ctx.error(n, `domain '${n.domain}' is not supported`);
    const op = n.op_type;
    switch (op) {
      case 'QuantizeLinear': {
        ctx.onlyAttrs(n, ['axis']);
        if (resolve(n.input[0]) !== input || quantModule)
          throw ctx.error(n, 'QuantizeLinear of a value other than the graph input (float parts inside an int8 graph) is not supported');
        const q = actQ(n, 1, 2, 'output');
        quantModule = new Quantize(q.scale, q.zeroPoint);
        quantModule.onnxDivide = !pytorch;
        quantOut = n.output[0];
        qp.set(quantOut, q);
        return;
      }
      case 'DequantizeLinear': {
        ctx.onlyAttrs(n, ['axis']);
        const [v] = quantIn(n, 0, 1, 2);
        if (n.output[0] === graphOutput || isOutputVia(n.output[0])) {
          if (finalValue) throw ctx.error(n, 'a second DequantizeLinear to the graph output');
          finalValue = v;
          return;
        }
        // DequantizeLinear -> Relu -> QuantizeLinear, same qparams: a quantized ReLU (max(q, zero_point)).
        const relu = only(n.output[0]);
        const qn = relu && relu.op_type === 'Relu' ? only(relu.output[0]) : undefined;
        if (relu && qn && qn.op_type === 'QuantizeLinear') {
          const q = qp.get(v)!, b = actQ(qn, 1, 2, 'QuantizeLinear');
          if (b.scale === q.scale && b.zeroPoint === q.zeroPoint) {
            skip.add(relu).add(qn);
            // After an add: add_relu (QFunctional's / QLinearAdd + Relu), else a ReLU module.
            const prev = specNodes[specNodes.length - 1];
            if (prev && prev.output === v && prev.op === 'add' && consumers.get(v)?.length === 1) {
              prev.op = 'add_relu';
              prev.output = qn.output[0];
              qp.set(qn.output[0], q);
              return;
            }
            emit(n, { name: slot(relu, index), op: 'module', inputs: [v], module: { type: 'ReLU' } }, q, new ReLU(), qn.output[0]);
            return;
          }
        }
        throw ctx.error(n, 'DequantizeLinear in the middle of the graph (a float part inside an int8 graph) is not supported');
      }
      case 'QLinearConv': {
        ctx.onlyAttrs(n, ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad']);
        const [x] = quantIn(n, 0, 1, 2);
        const out = actQ(n, 6, 7, 'output');
        const wc = ctx.constInput(n, 3, 'weight');
        if (wc.dims.length !== 4) throw ctx.error(n, `weight has rank ${wc.dims.length}; only 2-D convolutions are supported`, 'kernel_shape');
        const [cout, cinG, kh, kw] = wc.dims;
        const group = ctx.int(n, 'group', 1);
        if (cout % group) throw ctx.error(n, `${cout} output channels are not divisible by group ${group}`, 'group');
        const stride: [number, number] = [ctx.ints(n, 'strides')?.[0] ?? 1, ctx.ints(n, 'strides')?.[1] ?? 1];
        const dilation: [number, number] = [ctx.ints(n, 'dilations')?.[0] ?? 1, ctx.ints(n, 'dilations')?.[1] ?? 1];
        const padding = convPadding(ctx, n, [kh, kw], stride, dilation);
        const w = weightOf(n, 3, 4, 5, cout);
        const { floatBias, onnxBias } = biasOf(n, 8, cout);
        const geometry = { inChannels: cinG * group, outChannels: cout, kernelH: kh, kernelW: kw, strideH: stride[0], strideW: stride[1], padH: padding[0], padW: padding[1], dilationH: dilation[0], dilationW: dilation[1], groups: group };
        const reluOut = foldRelu(n.output[0], out);
        const m = new QuantizedConv2d(geometry, w, floatBias, out.scale, out.zeroPoint, !!reluOut);
        if (onnxBias) m.onnxBias = onnxBias;
        const desc: ModuleDesc = { type: 'Conv2d', inChannels: geometry.inChannels, outChannels: cout, kernel: [kh, kw], stride, padding, dilation, groups: group, bias: !!floatBias };
        emit(n, { name: slot(n, index), op: 'module', inputs: [x], module: desc }, out, m, reluOut ?? n.output[0]);
        return;
      }
      case 'QGemm':
      case 'QLinearMatMul': {
        const gemm = op === 'QGemm';
        ctx.onlyAttrs(n, gemm ? ['transA', 'transB', 'alpha'] : []);
        if (gemm && ctx.int(n, 'transA', 0)) throw ctx.error(n, 'transA=1 is not supported', 'transA');
        if (gemm && ctx.float(n, 'alpha', 1) !== 1) throw ctx.error(n, 'alpha other than 1 is not supported', 'alpha');
        const [x] = quantIn(n, 0, 1, 2);
        const yi = gemm ? 7 : 6;
        if (gemm && !ctx.has(n, 7)) throw ctx.error(n, 'QGemm with a float output (no y_scale) is not supported');
        const out = actQ(n, yi, yi + 1, 'output');
        const wc = ctx.constInput(n, 3, 'B (weight)');
        if (wc.dims.length !== 2) throw ctx.error(n, 'the weight must be 2-D');
        const transB = gemm && ctx.int(n, 'transB', 0) === 1;
        const [outF, inF] = transB ? wc.dims : [wc.dims[1], wc.dims[0]];
        const w = weightOf(n, 3, 4, 5, outF, !transB);
        const { floatBias, onnxBias } = gemm ? biasOf(n, 6, outF) : { floatBias: null, onnxBias: undefined };
        const reluOut = foldRelu(n.output[0], out);
        const m = new QuantizedLinear(inF, outF, w, floatBias, out.scale, out.zeroPoint, !!reluOut);
        if (onnxBias) m.onnxBias = onnxBias;
        emit(n, { name: slot(n, index), op: 'module', inputs: [x], module: { type: 'Linear', inFeatures: inF, outFeatures: outF, bias: !!floatBias } }, out, m, reluOut ?? n.output[0]);
        return;
      }
      case 'QLinearAdd': {
        ctx.onlyAttrs(n, []);
        const [a] = quantIn(n, 0, 1, 2), [b] = quantIn(n, 3, 4, 5);
        const out = actQ(n, 6, 7, 'output');
        const m = pytorch ? new QFunctional(out.scale, out.zeroPoint) : new OnnxQLinearAdd(out.scale, out.zeroPoint);
        emit(n, { name: slot(n, index), op: 'add', inputs: [a, b] }, out, m);
        return;
      }
      case 'QLinearConcat': {
        ctx.onlyAttrs(n, ['axis']);
        if ((n.input.length - 2) % 3 !== 0 || n.input.length < 5) throw ctx.error(n, 'inputs must be Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) triples');
        const out = actQ(n, 0, 1, 'output');
        const ins: string[] = [];
        for (let i = 2; i < n.input.length; i += 3) ins.push(quantIn(n, i, i + 1, i + 2)[0]);
        if (pytorch) throw ctx.error(n, 'QLinearConcat has no PyTorch-semantics counterpart in ptq-node exports');
        emit(n, { name: slot(n, index), op: 'cat', inputs: ins, axis: ctx.int(n, 'axis', 1) }, out, new OnnxQLinearConcat(out.scale, out.zeroPoint));
        return;
      }
      case 'QLinearGlobalAveragePool': {
        ctx.onlyAttrs(n, ['channels_last']);
        if (ctx.int(n, 'channels_last', 0)) throw ctx.error(n, 'channels_last=1 is not supported', 'channels_last');
        const [x, inq] = quantIn(n, 0, 1, 2);
        const out = actQ(n, 3, 4, 'output');
        if (pytorch) {
          if (out.scale !== inq.scale || out.zeroPoint !== inq.zeroPoint) throw ctx.error(n, 'PyTorch semantics keep the input qparams, but the output qparams differ');
          if (meta!.mean_nodes.includes(n.output[0])) emit(n, { name: slot(n, index), op: 'mean', inputs: [x], keepdims: true }, out);
          else emit(n, { name: slot(n, index), op: 'module', inputs: [x], module: { type: 'AdaptiveAvgPool2d' } }, out, new AdaptiveAvgPool2d([1, 1]));
        } else {
          emit(n, { name: slot(n, index), op: 'module', inputs: [x], module: { type: 'AdaptiveAvgPool2d' } }, out, new OnnxQGlobalAveragePool(out.scale, out.zeroPoint));
        }
        return;
      }
      case 'MaxPool': {
        ctx.onlyAttrs(n, ['kernel_shape', 'strides', 'pads', 'dilations', 'ceil_mode', 'auto_pad', 'storage_order']);
        const v = resolve(n.input[0]);
        const q = qp.get(v);
        if (!q) throw ctx.error(n, 'MaxPool of a float value inside an int8 graph is not supported');
        const k = ctx.ints(n, 'kernel_shape') ?? [];
        const s = ctx.ints(n, 'strides') ?? [1, 1];
        if (k.length !== 2 || k[0] !== k[1] || s[0] !== s[1]) throw ctx.error(n, `kernel_shape [${k.join(', ')}] / strides [${s.join(', ')}]: only square 2-D pooling is supported`, 'kernel_shape');
        if (ctx.int(n, 'ceil_mode', 0)) throw ctx.error(n, 'ceil_mode=1 is not supported', 'ceil_mode');
        const d = ctx.ints(n, 'dilations');
        if (d && d.some((x) => x !== 1)) throw ctx.error(n, 'dilations are not supported for quantized MaxPool', 'dilations');
        const pad = convPadding(ctx, n, [k[0], k[1]], [s[0], s[1]], [1, 1]);
        if (pad[0] !== pad[1]) throw ctx.error(n, 'different vertical and horizontal padding is not supported', 'pads');
        emit(n, { name: slot(n, index), op: 'module', inputs: [v], module: { type: 'MaxPool2d', kernel: k[0], stride: s[0], padding: pad[0] } }, q, new MaxPool2d(k[0], s[0], pad[0]));
        return;
      }
      case 'Flatten':
      case 'Reshape':
      case 'Identity':
      case 'Transpose': {
        const v = resolve(n.input[0]);
        const q = qp.get(v);
        if (!q) throw ctx.error(n, `${op} of a float value inside an int8 graph is not supported`);
        if (op === 'Identity') {
          alias.set(n.output[0], v);
          return;
        }
        if (op === 'Flatten') {
          ctx.onlyAttrs(n, ['axis']);
          if (ctx.int(n, 'axis', 1) !== 1) throw ctx.error(n, 'only axis 1 is supported', 'axis');
          emit(n, { name: slot(n, index), op: 'module', inputs: [v], module: { type: 'Flatten', startDim: 1 } }, q);
        } else if (op === 'Reshape') {
          ctx.onlyAttrs(n, ['allowzero']);
          emit(n, { name: slot(n, index), op: 'reshape', inputs: [v], shape: Array.from(ctx.constInput(n, 1, 'shape').data as number[]) }, q);
        } else {
          ctx.onlyAttrs(n, ['perm']);
          const perm = ctx.ints(n, 'perm');
          if (!perm) throw ctx.error(n, 'perm is required', 'perm');
          emit(n, { name: slot(n, index), op: 'transpose', inputs: [v], perm }, q);
        }
        return;
      }
      default:
        throw ctx.error(n, `op type '${op}' is not supported in an int8 model; ptq-node imports QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, ` +
          'QGemm, QLinearAdd, QLinearGlobalAveragePool, MaxPool, Flatten, Reshape, Transpose, Identity (QOperator form) and their QDQ equivalents');
    }
  });

  function isOutputVia(v: string): boolean {
    // DequantizeLinear -> Identity -> graph output.
    let cur = v;
    for (;;) {
      const c = only(cur);
      if (!c || c.op_type !== 'Identity') return cur === graphOutput;
      skip.add(c);
      cur = c.output[0];
    }
  }

  if (!quantModule || !quantOut) throw new OnnxImportError('the int8 graph does not start with QuantizeLinear of its input', file);
  if (!finalValue) throw new OnnxImportError('the int8 graph does not end with DequantizeLinear to its output', file);
  const spec: GraphSpec = { format: GRAPH_FORMAT, input: quantOut, output: finalValue, inputShape, nodes: specNodes };
  // The spec's input is the quantized value: 'quant' (the QuantizeLinear) produces it from the graph input.
  // Slots without a quantized module of their own (Flatten, MaxPool in the spec) keep the float module, which handles QTensors.
  const model = new GraphModule(spec);
  model._modules.set('quant', quantModule);
  model._modules.set('dequant', new DeQuantize());
  for (const [name, m] of modules) model._modules.set(name, m);
  return model.eval();
}

/**
 * QDQ form to QOperator form: DequantizeLinear(int8 constant) weights and
 * DequantizeLinear(x) -> Conv | Gemm | MatMul | Add | GlobalAveragePool -> [Relu ->] QuantizeLinear
 * become QLinearConv / QGemm / QLinearMatMul / QLinearAdd / QLinearGlobalAveragePool; DequantizeLinear
 * -> MaxPool | Flatten | Reshape -> QuantizeLinear with equal qparams become the uint8 op.
 */
function rewriteQdq(ctx: OnnxContext, nodes: OnnxNodeProto[]): OnnxNodeProto[] {
  const producer = new Map<string, OnnxNodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const consumers = new Map<string, OnnxNodeProto[]>();
  for (const n of nodes) for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const single = (v: string) => {
    const c = consumers.get(v);
    return c && c.length === 1 ? c[0] : undefined;
  };
  const isQdq = nodes.some((n) => n.op_type === 'DequantizeLinear' && ['Conv', 'Gemm', 'MatMul', 'Add'].includes(single(n.output[0])?.op_type ?? ''));
  if (!isQdq) return nodes;
  const removed = new Set<OnnxNodeProto>();
  const replaced = new Map<OnnxNodeProto, OnnxNodeProto>();
  const actDqs = new Set<OnnxNodeProto>();
  /** DequantizeLinear of an activation: [x, scale, zp]. */
  const dqAct = (v: string): OnnxNodeProto | undefined => {
    const p = producer.get(v);
    return p && p.op_type === 'DequantizeLinear' && !ctx.consts.has(p.input[0]) ? p : undefined;
  };
  /** DequantizeLinear of a constant: [q, scale, zp]. */
  const dqConst = (v: string): OnnxNodeProto | undefined => {
    const p = producer.get(v);
    return p && p.op_type === 'DequantizeLinear' && ctx.consts.has(p.input[0]) ? p : undefined;
  };
  let k = 0;
  const synth = (name: string, dt: number, data: OnnxConst['data'], dims: number[]): string => {
    const id = `__qdq_${k++}_${name}`;
    ctx.consts.set(id, { name: id, dims, dataType: dt, data });
    return id;
  };
  for (const n of nodes) {
    if (!['Conv', 'Gemm', 'MatMul', 'Add', 'Concat', 'GlobalAveragePool', 'MaxPool', 'Flatten', 'Reshape'].includes(n.op_type)) continue;
    const acts = n.op_type === 'Add' ? [0, 1] : n.op_type === 'Concat' ? n.input.map((_, i) => i) : [0];
    const dqs = acts.map((i) => dqAct(n.input[i]));
    if (dqs.some((d) => !d)) continue;
    let out = n.output[0];
    let relu: OnnxNodeProto | undefined;
    let q = single(out);
    if (q && q.op_type === 'Relu') {
      relu = q;
      q = single(q.output[0]);
    }
    if (!q || q.op_type !== 'QuantizeLinear') continue;
    out = q.output[0];
    const xs = dqs.map((d) => [d!.input[0], d!.input[1], d!.input[2]]);
    let rewritten: OnnxNodeProto;
    const base = { name: n.name, domain: '', attribute: n.attribute ?? [] };
    if (n.op_type === 'Conv' || n.op_type === 'Gemm' || n.op_type === 'MatMul') {
      const wdq = dqConst(n.input[1]);
      if (!wdq) throw ctx.error(n, 'QDQ: the weight is not DequantizeLinear of an int8 constant');
      let bias = '';
      if (n.input[2]) {
        const bdq = dqConst(n.input[2]);
        if (!bdq) throw ctx.error(n, 'QDQ: the bias is not DequantizeLinear of an int32 constant');
        bias = bdq.input[0];
        removed.add(bdq);
      }
      removed.add(wdq);
      // Per-channel weights: the scales must run along the output channels.
      const wScale = ctx.consts.get(wdq.input[1]);
      if (wScale && wScale.data.length > 1) {
        const transB = n.op_type === 'Gemm' && (n.attribute ?? []).some((a) => a.name === 'transB' && Number(a.i) === 1);
        const want = n.op_type === 'Conv' || transB ? 0 : 1;
        const rank = ctx.consts.get(wdq.input[0])?.dims.length ?? 0;
        const axis = (ctx.int(wdq, 'axis', 1) + rank) % rank; // DequantizeLinear's default axis is 1
        if (axis !== want) throw ctx.error(wdq, `per-channel weight scales on axis ${axis}; ${n.op_type} '${n.name}' needs them on the output-channel axis ${want}`, 'axis');
      }
      const w = [wdq.input[0], wdq.input[1], wdq.input[2] || synth('wzp', 3, new Int8Array(1), [])];
      if (n.op_type === 'Conv') rewritten = { ...base, op_type: 'QLinearConv', input: [...xs[0], ...w, q.input[1], q.input[2], ...(bias ? [bias] : [])], output: [out] };
      else if (n.op_type === 'MatMul') {
        if (bias) throw ctx.error(n, 'QDQ MatMul with a bias');
        rewritten = { ...base, op_type: 'QLinearMatMul', input: [...xs[0], ...w, q.input[1], q.input[2]], output: [out] };
      } else rewritten = { ...base, op_type: 'QGemm', domain: 'com.microsoft', input: [...xs[0], ...w, bias, q.input[1], q.input[2]], output: [out] };
    } else if (n.op_type === 'Add') {
      rewritten = { ...base, op_type: 'QLinearAdd', domain: 'com.microsoft', input: [...xs[0], ...xs[1], q.input[1], q.input[2]], output: [out] };
    } else if (n.op_type === 'Concat') {
      rewritten = { ...base, op_type: 'QLinearConcat', domain: 'com.microsoft', input: [q.input[1], q.input[2], ...xs.flat()], output: [out] };
    } else if (n.op_type === 'GlobalAveragePool') {
      rewritten = { ...base, op_type: 'QLinearGlobalAveragePool', domain: 'com.microsoft', input: [...xs[0], q.input[1], q.input[2]], output: [out], attribute: [] };
    } else {
      // MaxPool / Flatten / Reshape: the uint8 op, when the QuantizeLinear after it keeps the DequantizeLinear's qparams.
      const same = (a: string, b: string) => {
        const ca = ctx.consts.get(a), cb = ctx.consts.get(b);
        return !!ca && !!cb && ca.data.length === 1 && cb.data.length === 1 && Number(ca.data[0]) === Number(cb.data[0]);
      };
      if (relu || !same(xs[0][1], q.input[1]) || !same(xs[0][2], q.input[2])) continue;
      rewritten = { ...n, input: [xs[0][0], ...n.input.slice(1)], output: [out] };
    }
    if (relu) {
      // The Relu is folded: relu(x) quantized with zero point z clamps at z, which the op's
      // uint8 output then needs: a DequantizeLinear -> Relu -> QuantizeLinear triple the importer fuses.
      const mid = `${out}__pre_relu`;
      rewritten.output = [mid];
      const dq: OnnxNodeProto = { name: `${relu.name}__dq`, op_type: 'DequantizeLinear', domain: '', attribute: [], input: [mid, q.input[1], q.input[2]], output: [`${mid}__f`] };
      const r: OnnxNodeProto = { ...relu, input: [`${mid}__f`], output: [`${mid}__r`] };
      const qq: OnnxNodeProto = { ...q, input: [`${mid}__r`, q.input[1], q.input[2]], output: [out] };
      replaced.set(n, rewritten);
      replaced.set(relu, dq);
      replaced.set(q, { ...r, __next: qq } as unknown as OnnxNodeProto);
    } else {
      replaced.set(n, rewritten);
      removed.add(q);
    }
    for (const d of dqs) actDqs.add(d!);
  }
  // An activation DequantizeLinear goes when every consumer was rewritten (a residual's is shared).
  for (const d of actDqs) if ((consumers.get(d.output[0]) ?? []).every((c) => replaced.has(c))) removed.add(d);
  const out: OnnxNodeProto[] = [];
  for (const n of nodes) {
    if (removed.has(n)) continue;
    const r = replaced.get(n);
    if (!r) {
      out.push(n);
      continue;
    }
    const next = (r as unknown as { __next?: OnnxNodeProto }).__next;
    if (next) {
      const { __next: _drop, ...rest } = r as unknown as OnnxNodeProto & { __next?: unknown };
      void _drop;
      out.push(rest as OnnxNodeProto, next);
    } else out.push(r);
  }
  return out;
}
