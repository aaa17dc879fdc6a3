// The quantized model file: one .safetensors with int8 weights, float biases, weight qparams and,
// in its metadata, the architecture and every quantized module's type, configuration and output
// qparams. Loading rebuilds the architecture, fuses it and swaps in the quantized modules.
import { ArchitectureSpec, createModel } from '../models';
import { Module } from '../nn/module';
import { fuseStructureOnly } from '../quantization/fuse';
import { GRAPH_FORMAT, GraphModule, GraphSpec } from '../nn/graph';
import { OnnxQGlobalAveragePool, OnnxQLinearAdd, OnnxQLinearConcat } from '../nn/onnx-quantized';
import { DeQuantize, QFunctional, QuantizedConv2d, QuantizedDropout, QuantizedLinear, Quantize, QWeight } from '../nn/quantized';
import type { Conv2dGeometry } from '../kernels/float';
import type { ImagePreprocess } from './images';
import { FloatIsland } from '../nn/float-island';
import { ConvReLU2d, LinearReLU } from '../nn/intrinsic';
import { Conv2d, Linear } from '../nn/layers';
import { Tensor } from '../tensor';
import { readSafetensors, encodeSafetensors, writeFileAtomic } from './safetensors';
import { FormatError, RawTensor } from './types';

/** The format tag in the metadata. */
export const MODEL_FORMAT = 'ptq-node.quantized-model/1';

/** One quantized module as recorded in the file. */
export interface ModuleRecord {
  name: string;
  type: string;
  scale?: number;
  zero_point?: number;
  geometry?: Conv2dGeometry;
  in_features?: number;
  out_features?: number;
  qscheme?: string;
  bias?: boolean;
  p?: number;
  /** Upper clamp of a fused ReLU6 conv (QuantizedConvReLU62d), in float. */
  clamp_max?: number;
  /** Quantize with ONNX QuantizeLinear's division (imported int8 ONNX). */
  onnx_divide?: boolean;
  /** Conv / linear with ONNX's int32 bias (tensor `<name>.bias_int32`) instead of a float one. */
  onnx_bias?: boolean;
}

/** The architecture of a model imported from ONNX: its graph is stored in the file (metadata 'graph'). */
export interface GraphArchitecture {
  arch: 'graph';
  /** Where the graph came from (e.g. the ONNX file name). */
  source?: string;
}

/** What the file holds besides the tensors. */
export interface QuantizedModelInfo {
  /** A zoo architecture, or { arch: 'graph' } for a GraphModule (imported ONNX), whose graph is stored too. */
  architecture: ArchitectureSpec | GraphArchitecture;
  qconfig: string;
  /** Free-form provenance (tool version, calibration data). */
  provenance?: Record<string, unknown>;
  /** Class names, by output index (optional; `ptq serve` uses them). */
  labels?: string[];
  /** The image preprocessing the model expects (optional; `ptq serve` uses it). */
  preprocess?: ImagePreprocess;
}

/** The conv / linear inside a float island (fused or plain). */
function floatLayerOf(m: Module, name: string): Conv2d | Linear {
  if (m instanceof ConvReLU2d) return m.conv;
  if (m instanceof LinearReLU) return m.linear;
  if (m instanceof Conv2d || m instanceof Linear) return m;
  throw new Error(`${name}: a float module of type ${m.typeName()} cannot be saved (conv / linear layers only)`);
}

function recordOf(name: string, m: Module, tensors: Map<string, RawTensor>): ModuleRecord | null {
  const putWeight = (w: QWeight) => {
    tensors.set(`${name}.weight`, { dtype: 'int8', shape: w.shape, data: w.data });
    tensors.set(`${name}.weight_scale`, { dtype: 'float32', shape: [w.scale.length], data: w.scale });
    tensors.set(`${name}.weight_zero_point`, { dtype: 'int32', shape: [w.zeroPoint.length], data: w.zeroPoint });
  };
  if (m instanceof FloatIsland) {
    // mixed precision: the float layer's weights as float32; its Quantize / DeQuantize follow as records
    const l = floatLayerOf(m.inner, name);
    tensors.set(`${name}.float_weight`, { dtype: 'float32', shape: [...l.weight.shape], data: l.weight.data });
    if (l.bias) tensors.set(`${name}.float_bias`, { dtype: 'float32', shape: [...l.bias.shape], data: l.bias.data });
    return { name, type: 'FloatIsland', bias: !!l.bias };
  }
  if (m instanceof Quantize) return { name, type: 'Quantize', scale: m.scale, zero_point: m.zeroPoint, ...(m.onnxDivide ? { onnx_divide: true } : {}) };
  if (m instanceof OnnxQLinearAdd) return { name, type: 'QLinearAdd', scale: m.scale, zero_point: m.zeroPoint };
  if (m instanceof OnnxQGlobalAveragePool) return { name, type: 'QLinearGlobalAveragePool', scale: m.scale, zero_point: m.zeroPoint };
  if (m instanceof OnnxQLinearConcat) return { name, type: 'QLinearConcat', scale: m.scale, zero_point: m.zeroPoint };
  const putOnnxBias = (r: ModuleRecord, b?: Int32Array) => {
    if (!b) return r;
    tensors.set(`${name}.bias_int32`, { dtype: 'int32', shape: [b.length], data: b });
    return { ...r, onnx_bias: true };
  };
  if (m instanceof DeQuantize) return { name, type: 'DeQuantize' };
  if (m instanceof QFunctional) return { name, type: 'QFunctional', scale: m.scale, zero_point: m.zeroPoint };
  if (m instanceof QuantizedDropout) return { name, type: 'QuantizedDropout', p: m.p };
  if (m instanceof QuantizedConv2d) {
    putWeight(m.weight);
    if (m.bias) tensors.set(`${name}.bias`, { dtype: 'float32', shape: [m.bias.length], data: m.bias });
    const r: ModuleRecord = { name, type: m.typeName(), scale: m.scale, zero_point: m.zeroPoint, geometry: m.geometry, qscheme: m.weight.qscheme, bias: !!m.bias };
    if (m.clampMax !== undefined) r.clamp_max = m.clampMax;
    return putOnnxBias(r, m.onnxBias);
  }
  if (m instanceof QuantizedLinear) {
    putWeight(m.weight);
    if (m.bias) tensors.set(`${name}.bias`, { dtype: 'float32', shape: [m.bias.length], data: m.bias });
    return putOnnxBias({ name, type: m.typeName(), scale: m.scale, zero_point: m.zeroPoint, in_features: m.inFeatures, out_features: m.outFeatures, qscheme: m.weight.qscheme, bias: !!m.bias }, m.onnxBias);
  }
  return null;
}

/** Serializes a converted model to the file format's bytes. */
export function encodeQuantizedModel(model: Module, info: QuantizedModelInfo): Uint8Array {
  const tensors = new Map<string, RawTensor>();
  const records: ModuleRecord[] = [];
  for (const [name, m] of model.namedModules()) {
    const r = recordOf(name, m, tensors);
    if (r) records.push(r);
  }
  if (!records.some((r) => r.type === 'Quantize')) throw new Error('the model is not converted: it has no Quantize module');
  const isGraph = model instanceof GraphModule;
  if (isGraph !== (info.architecture.arch === 'graph'))
    throw new Error(isGraph ? "a GraphModule (imported ONNX) is saved with architecture { arch: 'graph' }" : "architecture 'graph' is only for a GraphModule");
  const meta: Record<string, string> = {
    format: MODEL_FORMAT,
    architecture: JSON.stringify(info.architecture),
    qconfig: info.qconfig,
    modules: JSON.stringify(records),
    provenance: JSON.stringify(info.provenance ?? {}),
    ...(info.labels ? { labels: JSON.stringify(info.labels) } : {}),
    ...(info.preprocess ? { preprocess: JSON.stringify(info.preprocess) } : {}),
  };
  if (model instanceof GraphModule) meta.graph = JSON.stringify(model.spec);
  return encodeSafetensors(tensors, meta);
}

/** Writes a converted model to one .safetensors file, atomically (temp file + rename). */
export function saveQuantizedModel(file: string, model: Module, info: QuantizedModelInfo): void {
  writeFileAtomic(file, encodeQuantizedModel(model, info));
}

/** A parsed quantized model file. */
export interface QuantizedModelFile extends QuantizedModelInfo {
  records: ModuleRecord[];
  tensors: Map<string, RawTensor>;
  /** The graph of a model imported from ONNX. */
  graph?: GraphSpec;
}

/** Reads and validates a quantized model file without building the model. */
export function readQuantizedModelFile(file: string | Uint8Array): QuantizedModelFile {
  const label = typeof file === 'string' ? file : undefined;
  // Weights are views into the file's bytes when we read the file ourselves.
  const { tensors, metadata } = readSafetensors(file, { view: true });
  if (metadata.format !== MODEL_FORMAT)
    throw new FormatError(`not a ptq-node quantized model (format '${metadata.format ?? 'missing'}', expected '${MODEL_FORMAT}')`, label);
  const parse = <T>(key: string): T => {
    try {
      return JSON.parse(metadata[key]) as T;
    } catch {
      throw new FormatError(`metadata '${key}' is missing or not JSON`, label);
    }
  };
  const records = parse<ModuleRecord[]>('modules');
  if (!Array.isArray(records)) throw new FormatError("metadata 'modules' is not a list", label);
  const architecture = parse<ArchitectureSpec | GraphArchitecture>('architecture');
  let graph: GraphSpec | undefined;
  if (architecture && architecture.arch === 'graph') {
    graph = parse<GraphSpec>('graph');
    if (!graph || graph.format !== GRAPH_FORMAT || !Array.isArray(graph.nodes))
      throw new FormatError(`metadata 'graph' is not a ${GRAPH_FORMAT} description`, label);
  }
  const labels = metadata.labels !== undefined ? parse<string[]>('labels') : undefined;
  if (labels !== undefined && (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')))
    throw new FormatError("metadata 'labels' is not a list of strings", label);
  const preprocess = metadata.preprocess !== undefined ? parse<ImagePreprocess>('preprocess') : undefined;
  return {
    architecture, qconfig: metadata.qconfig ?? '', provenance: parse('provenance'), records, tensors, graph,
    ...(labels ? { labels } : {}), ...(preprocess ? { preprocess } : {}),
  };
}

function tensorOf(f: QuantizedModelFile, key: string, dtype: RawTensor['dtype'], label?: string): RawTensor {
  const t = f.tensors.get(key);
  if (!t) throw new FormatError(`tensor '${key}' is missing`, label);
  if (t.dtype !== dtype) throw new FormatError(`tensor '${key}' has dtype ${t.dtype}, expected ${dtype}`, label);
  return t;
}

function weightOf(f: QuantizedModelFile, r: ModuleRecord, expectShape: number[], label?: string): QWeight {
  const w = tensorOf(f, `${r.name}.weight`, 'int8', label);
  if (w.shape.join() !== expectShape.join()) throw new FormatError(`${r.name}.weight has shape [${w.shape}], expected [${expectShape}]`, label);
  const s = tensorOf(f, `${r.name}.weight_scale`, 'float32', label).data as Float32Array;
  const z = tensorOf(f, `${r.name}.weight_zero_point`, 'int32', label).data as Int32Array;
  const perChannel = r.qscheme === 'per_channel_affine';
  if (s.length !== (perChannel ? expectShape[0] : 1) || z.length !== s.length) throw new FormatError(`${r.name}: weight qparams have the wrong length`, label);
  if (!s.every((v) => v > 0 && Number.isFinite(v))) throw new FormatError(`${r.name}: weight scales must be positive`, label);
  if (!z.every((v) => v === 0)) throw new FormatError(`${r.name}: weight zero points must be 0`, label);
  return { data: w.data as Int8Array, shape: w.shape, qscheme: perChannel ? 'per_channel_affine' : 'per_tensor_affine', scale: s, zeroPoint: z };
}

function onnxBiasOf(f: QuantizedModelFile, r: ModuleRecord, n: number, label?: string): Int32Array {
  const t = tensorOf(f, `${r.name}.bias_int32`, 'int32', label);
  if (t.data.length !== n) throw new FormatError(`${r.name}.bias_int32 has ${t.data.length} values, expected ${n}`, label);
  return t.data as Int32Array;
}

function actQParams(r: ModuleRecord, label?: string): [number, number] {
  const s = r.scale, z = r.zero_point;
  if (typeof s !== 'number' || !(s > 0) || !Number.isFinite(s)) throw new FormatError(`${r.name}: bad scale ${String(s)}`, label);
  if (typeof z !== 'number' || !Number.isInteger(z) || z < 0 || z > 255) throw new FormatError(`${r.name}: bad zero_point ${String(z)}`, label);
  return [Math.fround(s), z];
}

/** Loads a quantized model file: the converted model, ready to run (no calibration data needed). */
export function loadQuantizedModel(file: string | Uint8Array): { model: Module; info: QuantizedModelFile } {
  const label = typeof file === 'string' ? file : undefined;
  const f = readQuantizedModelFile(file);
  let model: Module;
  try {
    model = f.graph ? new GraphModule(f.graph) : createModel(f.architecture as ArchitectureSpec);
  } catch (e) {
    throw new FormatError(`${f.graph ? 'bad graph' : 'unknown architecture'}: ${(e as Error).message}`, label);
  }
  model.eval();
  // Every fused conv is replaced by its record below: only the fused structure is needed.
  fuseStructureOnly(() => (model as Module & { fuseModel(): void }).fuseModel());
  for (const r of f.records) {
    let slot: Module;
    try {
      slot = model.getSubmodule(r.name);
    } catch {
      throw new FormatError(`module '${r.name}' does not exist in ${f.architecture.arch}`, label);
    }
    let q: Module;
    switch (r.type) {
      case 'Quantize': {
        const qm = new Quantize(...actQParams(r, label));
        qm.onnxDivide = r.onnx_divide === true;
        q = qm;
        break;
      }
      case 'QLinearAdd': q = new OnnxQLinearAdd(...actQParams(r, label)); break;
      case 'QLinearGlobalAveragePool': q = new OnnxQGlobalAveragePool(...actQParams(r, label)); break;
      case 'QLinearConcat': q = new OnnxQLinearConcat(...actQParams(r, label)); break;
      case 'DeQuantize': q = new DeQuantize(); break;
      case 'QFunctional': q = new QFunctional(...actQParams(r, label)); break;
      case 'QuantizedDropout': q = new QuantizedDropout(r.p ?? 0.5); break;
      case 'QuantizedConv2d':
      case 'QuantizedConvReLU2d':
      case 'QuantizedConvReLU62d': {
        const conv = (slot as Module & { conv?: Module }).conv ?? slot;
        const g = (conv as unknown as { geometry(): Conv2dGeometry }).geometry?.();
        if (!g || JSON.stringify(g) !== JSON.stringify(r.geometry)) throw new FormatError(`${r.name}: conv geometry differs from the architecture`, label);
        const w = weightOf(f, r, [g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW], label);
        const bias = r.bias ? (tensorOf(f, `${r.name}.bias`, 'float32', label).data as Float32Array) : null;
        if (r.type === 'QuantizedConvReLU62d' && !(typeof r.clamp_max === 'number' && r.clamp_max > 0)) throw new FormatError(`${r.name}: clamp_max missing`, label);
        const qc = new QuantizedConv2d(g, w, bias, ...actQParams(r, label), r.type !== 'QuantizedConv2d', r.type === 'QuantizedConvReLU62d' ? r.clamp_max : undefined);
        if (r.onnx_bias) qc.onnxBias = onnxBiasOf(f, r, g.outChannels, label);
        q = qc;
        break;
      }
      case 'QuantizedLinear':
      case 'QuantizedLinearReLU': {
        const inF = r.in_features!, outF = r.out_features!;
        const w = weightOf(f, r, [outF, inF], label);
        const bias = r.bias ? (tensorOf(f, `${r.name}.bias`, 'float32', label).data as Float32Array) : null;
        const ql = new QuantizedLinear(inF, outF, w, bias, ...actQParams(r, label), r.type === 'QuantizedLinearReLU');
        if (r.onnx_bias) ql.onnxBias = onnxBiasOf(f, r, outF, label);
        q = ql;
        break;
      }
      case 'FloatIsland': {
        let l: Conv2d | Linear;
        try {
          l = floatLayerOf(slot, r.name);
        } catch (e) {
          throw new FormatError((e as Error).message, label);
        }
        const w = tensorOf(f, `${r.name}.float_weight`, 'float32', label);
        if (w.shape.join() !== l.weight.shape.join()) throw new FormatError(`${r.name}.float_weight has shape [${w.shape}], expected [${l.weight.shape}]`, label);
        l.weight = new Tensor(Float32Array.from(w.data as Float32Array), l.weight.shape);
        const b = r.bias ? tensorOf(f, `${r.name}.float_bias`, 'float32', label) : null;
        if (b && b.shape.join() !== String(l.weight.shape[0])) throw new FormatError(`${r.name}.float_bias has shape [${b.shape}]`, label);
        l.bias = b ? new Tensor(Float32Array.from(b.data as Float32Array), [l.weight.shape[0]]) : null;
        q = new FloatIsland(slot);
        break;
      }
      default:
        throw new FormatError(`unknown module type '${r.type}' for '${r.name}'`, label);
    }
    model.setSubmodule(r.name, q);
  }
  // The skeleton's float layers hold no weights (zeros, or unfolded after a structure-only fuse):
  // one left without a record would run silently wrong.
  // (Float islands are records too: their layers hold the file's float weights.)
  const recorded = f.records.map((r) => r.name);
  for (const [name, m] of model.namedModules())
    if (m._parameters.size > 0 && [...m._parameters.values()].some((p) => p !== null) && !recorded.some((r) => name === r || name.startsWith(`${r}.`)))
      throw new FormatError(`module '${name}' (${m.typeName()}) has no quantized record in the file`, label);
  return { model, info: f };
}
