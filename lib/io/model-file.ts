// The quantized model file: one .safetensors with int8 weights, float biases, weight qparams and,
// in its metadata, the architecture and every quantized module's type, configuration and output
// qparams. Loading rebuilds the architecture, fuses it and swaps in the quantized modules.
import { ARCHITECTURES, ArchitectureSpec, createModel } from '../models';
import { Module } from '../nn/module';
import { fuseStructureOnly } from '../quantization/fuse';
import { GRAPH_FORMAT, GraphModule, GraphSpec } from '../nn/graph';
import { OnnxQGlobalAveragePool, OnnxQLinearAdd, OnnxQLinearConcat } from '../nn/onnx-quantized';
import { DeQuantize, QFunctional, QuantizedConv2d, QuantizedDropout, QuantizedLinear, Quantize, QWeight } from '../nn/quantized';
import type { Conv2dGeometry } from '../kernels/float';
import type { ImagePreprocess } from './images';
import { createHash } from 'crypto';
import { FloatIsland } from '../nn/float-island';
import { ConvReLU2d, LinearReLU } from '../nn/intrinsic';
import { Conv2d, Linear } from '../nn/layers';
import { Tensor } from '../tensor';
import { readSafetensors, encodeSafetensors, writeFileAtomic } from './safetensors';
import { bytesOf, FormatError, RawTensor } from './types';

/**
 * The format tag in the metadata. Version 2 adds the `checksum` metadata entry (required);
 * version 1 files (no checksum) still load, with a warning.
 */
export const MODEL_FORMAT = 'ptq-node.quantized-model/2';
/** The previous format tag: same layout, no checksum. */
export const MODEL_FORMAT_V1 = 'ptq-node.quantized-model/1';

/**
 * SHA-256 over everything the file holds: each tensor's name, dtype, shape and bytes (in file
 * order), then every metadata entry but `checksum` itself (sorted by key). Any changed byte of
 * the data or of a header value changes it.
 */
export function modelChecksum(tensors: Map<string, RawTensor>, metadata: Record<string, string>): string {
  const h = createHash('sha256');
  for (const [name, t] of tensors) {
    h.update(`${JSON.stringify([name, t.dtype, t.shape])}\n`);
    h.update(bytesOf(t.data));
  }
  for (const k of Object.keys(metadata).filter((key) => key !== 'checksum').sort()) h.update(`${JSON.stringify([k, metadata[k]])}\n`);
  return `sha256:${h.digest('hex')}`;
}

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
  const metadata: Record<string, string> = {
    format: MODEL_FORMAT,
    architecture: JSON.stringify(info.architecture),
    qconfig: info.qconfig,
    modules: JSON.stringify(records),
    provenance: JSON.stringify(info.provenance ?? {}),
    ...(info.labels ? { labels: JSON.stringify(info.labels) } : {}),
    ...(info.preprocess ? { preprocess: JSON.stringify(info.preprocess) } : {}),
  };
  if (model instanceof GraphModule) metadata.graph = JSON.stringify(model.spec);
  metadata.checksum = modelChecksum(tensors, metadata);
  return encodeSafetensors(tensors, metadata);
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
  if (metadata.format !== MODEL_FORMAT && metadata.format !== MODEL_FORMAT_V1)
    throw new FormatError(`not a ptq-node quantized model (format '${String(metadata.format ?? 'missing').slice(0, 80)}', expected '${MODEL_FORMAT}')`, label);
  if (metadata.checksum !== undefined || metadata.format === MODEL_FORMAT) {
    if (typeof metadata.checksum !== 'string') throw new FormatError('the checksum is missing (a damaged file?)', label);
    if (modelChecksum(tensors, metadata) !== metadata.checksum)
      throw new FormatError('checksum mismatch: the file is damaged or was modified after it was written', label);
  } else {
    process.emitWarning(`${label ?? 'model file'}: format ${MODEL_FORMAT_V1} has no checksum, so damage cannot be detected; re-save it to add one`,
      { code: 'PTQ_MODEL_NO_CHECKSUM' });
  }
  const parse = <T>(key: string): T => {
    try {
      return JSON.parse(metadata[key]) as T;
    } catch {
      throw new FormatError(`metadata '${key}' is missing or not JSON`, label);
    }
  };
  const records = parse<ModuleRecord[]>('modules');
  if (!Array.isArray(records)) throw new FormatError("metadata 'modules' is not a list", label);
  records.forEach((r, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r) || typeof r.name !== 'string' || typeof r.type !== 'string')
      throw new FormatError(`metadata 'modules'[${i}] is not a {name, type, ...} record`, label);
  });
  const architecture = parse<ArchitectureSpec | GraphArchitecture>('architecture');
  if (typeof architecture !== 'object' || architecture === null || Array.isArray(architecture)) throw new FormatError("metadata 'architecture' is not an object", label);
  let graph: GraphSpec | undefined;
  if (architecture.arch === 'graph') {
    graph = parse<GraphSpec>('graph');
    if (!graph || graph.format !== GRAPH_FORMAT || !Array.isArray(graph.nodes))
      throw new FormatError(`metadata 'graph' is not a ${GRAPH_FORMAT} description`, label);
  }
  const labels = metadata.labels !== undefined ? parse<string[]>('labels') : undefined;
  if (labels !== undefined && (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')))
    throw new FormatError("metadata 'labels' is not a list of strings", label);
  const preprocess = metadata.preprocess !== undefined ? parse<ImagePreprocess>('preprocess') : undefined;
  if (preprocess !== undefined && (typeof preprocess !== 'object' || preprocess === null || Array.isArray(preprocess)))
    throw new FormatError("metadata 'preprocess' is not an object", label);
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

const makeDivisible = (v: number, d = 8): number => {
  const n = Math.max(d, Math.floor((v + d / 2) / d) * d);
  return n < 0.9 * v ? n + d : n;
};

/** Float parameters the architecture's skeleton allocates (an estimate within a few percent), without building it. */
function skeletonParams(spec: ArchitectureSpec): number {
  if (spec.arch === 'resnet18') return 11.2e6 + 513 * spec.numClasses;
  if (spec.arch === 'resnet50') return 23.6e6 + 2049 * spec.numClasses;
  const wm = spec.widthMult ?? 1;
  const rows = spec.invertedResidualSetting ?? [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  let inp = makeDivisible(32 * wm);
  const last = makeDivisible(1280 * Math.max(1, wm));
  let p = 27 * inp;
  for (const [t, c, n] of rows) {
    const out = makeDivisible(c * wm);
    for (let i = 0; i < n; i++) {
      const hidden = Math.round(inp * t);
      p += (t !== 1 ? inp * hidden : 0) + 9 * hidden + hidden * out;
      inp = out;
    }
  }
  return p + inp * last + (last + 1) * spec.numClasses;
}

/**
 * The architecture spec is checked before the skeleton is built: plain values in sane ranges,
 * and a skeleton (float weights, about 4 bytes per int8 weight in the file) no larger than the
 * file's tensors justify, so a few changed metadata bytes cannot make the loader allocate
 * gigabytes.
 */
function checkArchitecture(f: QuantizedModelFile, label?: string): void {
  const a = f.architecture as unknown as Record<string, unknown>;
  const bad = (msg: string): FormatError => new FormatError(`metadata 'architecture': ${msg}`, label);
  let fileBytes = 0;
  for (const t of f.tensors.values()) fileBytes += t.data.byteLength;
  if (a.arch === 'graph') {
    // An imported graph: its conv / linear / batch-norm descriptors size the skeleton.
    const nodes = f.graph?.nodes ?? [];
    if (nodes.length > 100_000) throw new FormatError(`metadata 'graph': ${nodes.length} nodes`, label);
    let params = 0;
    for (const n of nodes) {
      const d = n.module as Record<string, unknown> | undefined;
      if (!d || typeof d !== 'object') continue;
      const num = (k: string): number => {
        const v = d[k];
        const x = Array.isArray(v) ? v.reduce((p: number, q) => p * (typeof q === 'number' ? q : NaN), 1) : v;
        if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new FormatError(`metadata 'graph': node '${String(n.name)}' has a bad ${k}`, label);
        return x;
      };
      if (d.type === 'Conv2d') params += num('outChannels') * (num('inChannels') / Math.max(1, num('groups'))) * num('kernel') * (Array.isArray(d.kernel) ? 1 : num('kernel'));
      else if (d.type === 'Linear') params += num('inFeatures') * num('outFeatures');
      else if (d.type === 'BatchNorm2d') params += 4 * num('numFeatures');
    }
    if (!(4 * params <= 6 * fileBytes + (16 << 20)))
      throw new FormatError(`metadata 'graph' needs ~${Math.round((4 * params) / 2 ** 20)} MiB of float weights, far more than the ${fileBytes} bytes of weights in the file`, label);
    return;
  }
  if (typeof a.arch !== 'string' || !(ARCHITECTURES as readonly string[]).includes(a.arch)) throw bad(`unknown arch ${JSON.stringify(a.arch)?.slice(0, 40)}; known: ${ARCHITECTURES.join(', ')}`);
  if (typeof a.numClasses !== 'number' || !Number.isInteger(a.numClasses) || a.numClasses < 1 || a.numClasses > 1 << 20) throw bad('numClasses must be an integer in [1, 2^20]');
  if (a.widthMult !== undefined && (typeof a.widthMult !== 'number' || !(a.widthMult > 0 && a.widthMult <= 4))) throw bad('widthMult must be in (0, 4]');
  const s = a.invertedResidualSetting;
  if (s !== undefined && (!Array.isArray(s) || s.length > 64 || !s.every((r) => Array.isArray(r) && r.length === 4 &&
    r.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4096)))) throw bad('invertedResidualSetting must be up to 64 rows of 4 integers in [1, 4096]');
  const need = 4 * skeletonParams(f.architecture as ArchitectureSpec);
  if (!(need <= 6 * fileBytes + (16 << 20)))
    throw bad(`${f.architecture.arch} with these settings needs ~${Math.round(need / 2 ** 20)} MiB of float weights, far more than the ${fileBytes} bytes of weights in the file`);
}

/** Loads a quantized model file: the converted model, ready to run (no calibration data needed). */
export function loadQuantizedModel(file: string | Uint8Array): { model: Module; info: QuantizedModelFile } {
  const label = typeof file === 'string' ? file : undefined;
  const f = readQuantizedModelFile(file);
  checkArchitecture(f, label);
  let model: Module;
  try {
    model = f.graph ? new GraphModule(f.graph) : createModel(f.architecture as ArchitectureSpec);
  } catch (e) {
    throw new FormatError(`${f.graph ? 'bad graph' : 'unknown architecture'}: ${(e as Error).message}`, label);
  }
  model.eval();
  // Every fused conv is replaced by its record below: only the fused structure is needed.
  fuseStructureOnly(() => (model as Module & { fuseModel(): void }).fuseModel());
  const seen = new Set<string>();
  for (const r of f.records) {
    if (seen.has(r.name)) throw new FormatError(`module '${r.name}' has two records`, label);
    seen.add(r.name);
    if (r.name === '') throw new FormatError('a record names the root module', label);
    let slot: Module;
    try {
      slot = model.getSubmodule(r.name);
    } catch {
      throw new FormatError(`module '${r.name}' does not exist in ${f.architecture.arch}`, label);
    }
    let q: Module;
    try {
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
        throw new FormatError(`unknown module type '${String(r.type).slice(0, 80)}' for '${r.name}'`, label);
    }
    } catch (e) {
      // Constructors validate their arguments (TypeError/RangeError): from a file, that is a format error.
      if (e instanceof FormatError) throw e;
      throw new FormatError(`${r.name}: ${(e as Error).message}`, label);
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
