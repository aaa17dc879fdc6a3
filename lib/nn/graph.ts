// GraphModule: a model given as a list of nodes in topological order (what the ONNX importer
// builds), in the eager-mode module world: every parameterized or observable op is a submodule
// named after its ONNX node (state_dict keys are stable), element-wise ops are FloatFunctional
// slots, and the graph input / output go through QuantStub 'quant' / DeQuantStub 'dequant'. So
// fuse (fuseModel, by pattern), prepare, convert, compileModel and the model file work unchanged.
import { QTensor } from '../qtensor';
import { outputBuffer, Tensor } from '../tensor';
import { convOutSize } from '../kernels/float';
import { roundHalfEven } from '../quantization/qparams';
import { fuseModules } from '../quantization/fuse';
import { FloatFunctional } from './functional';
import { ConvReLU62d } from './intrinsic';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, ReLU6,
} from './layers';
import { Module, pyTuple } from './module';
import type { QFunctional } from './quantized';
import { DeQuantStub, QuantStub } from './stubs';

/** The graph description format tag (stored in quantized model files). */
export const GRAPH_FORMAT = 'ptq-node.graph/1';

/** How to rebuild one submodule of a graph (a JSON-able description). */
export type ModuleDesc =
  | { type: 'Conv2d'; inChannels: number; outChannels: number; kernel: [number, number]; stride: [number, number];
      padding: [number, number]; dilation: [number, number]; groups: number; bias: boolean }
  | { type: 'BatchNorm2d'; numFeatures: number; eps: number; momentum: number }
  | { type: 'ReLU' }
  | { type: 'ReLU6' }
  | { type: 'Linear'; inFeatures: number; outFeatures: number; bias: boolean }
  | { type: 'MaxPool2d'; kernel: number; stride: number; padding: number }
  | { type: 'AvgPool2d'; kernel: number; stride: number; padding: number; countIncludePad: boolean }
  | { type: 'AdaptiveAvgPool2d' }
  | { type: 'Flatten'; startDim: number }
  | { type: 'Dropout'; p: number }
  | { type: 'Activation'; kind: ActivationKind; alpha?: number; beta?: number; axis?: number };

/** Float-only activations (kept in float between DeQuantize / Quantize when quantizing). */
export type ActivationKind = 'sigmoid' | 'tanh' | 'hardsigmoid' | 'hardswish' | 'softmax';

/** What a node computes. */
export type GraphOp = 'module' | 'add' | 'add_relu' | 'mul' | 'cat' | 'mean' | 'reshape' | 'transpose' | 'pad';

/** One node: a submodule call or a tensor op, from input value names to one output value name. */
export interface GraphNodeSpec {
  /** Slot (submodule) name, unique in the graph. */
  name: string;
  /** The ONNX node it came from (name and op type), for messages. */
  onnxName: string;
  opType: string;
  op: GraphOp;
  inputs: string[];
  output: string;
  module?: ModuleDesc;
  /** cat axis. */
  axis?: number;
  /** reshape target (ONNX semantics: 0 copies the input dim, -1 is inferred). */
  shape?: number[];
  /** transpose permutation. */
  perm?: number[];
  /** pad: [top, left, bottom, right] zeros (the zero point when quantized) around H and W. */
  pads?: [number, number, number, number];
  /** mean: keep the reduced dims. */
  keepdims?: boolean;
  /**
   * Runs in float in a quantized model (fallback for ops ptq-node cannot quantize): DeQuantStub
   * slots '<name>_dequant<i>' before it and a QuantStub '<name>_quant' after it, as in eager mode.
   */
  float?: boolean;
}

/** A whole graph: one float input, one float output. */
export interface GraphSpec {
  format: typeof GRAPH_FORMAT;
  input: string;
  output: string;
  /** The input's shape with null for dynamic dims, e.g. [null, 3, 28, 28]. */
  inputShape: (number | null)[];
  nodes: GraphNodeSpec[];
}

/** Builds the float module a descriptor describes (weights zero until loaded). */
export function moduleFromDesc(d: ModuleDesc): Module {
  switch (d.type) {
    case 'Conv2d':
      return new Conv2d(d.inChannels, d.outChannels, d.kernel, { stride: d.stride, padding: d.padding, dilation: d.dilation, groups: d.groups, bias: d.bias });
    case 'BatchNorm2d': return new BatchNorm2d(d.numFeatures, d.eps, d.momentum);
    case 'ReLU': return new ReLU();
    case 'ReLU6': return new ReLU6();
    case 'Linear': return new Linear(d.inFeatures, d.outFeatures, d.bias);
    case 'MaxPool2d': return new MaxPool2d(d.kernel, d.stride, d.padding);
    case 'AvgPool2d': return new AvgPool2d(d.kernel, d.stride, d.padding, d.countIncludePad);
    case 'AdaptiveAvgPool2d': return new AdaptiveAvgPool2d([1, 1]);
    case 'Flatten': return new Flatten(d.startDim);
    case 'Dropout': return new Dropout(d.p);
    case 'Activation': return new Activation(d.kind, d.alpha, d.beta, d.axis);
    default: throw new RangeError(`unknown module type '${(d as { type: string }).type}' in a graph description`);
  }
}

/** Float-only activations of imported graphs (ONNX Sigmoid, Tanh, HardSigmoid, HardSwish, Softmax). */
export class Activation extends Module {
  constructor(readonly kind: ActivationKind, readonly alpha = 0.2, readonly beta = 0.5, readonly axis = -1) {
    super();
  }
  forward(input: unknown): Tensor {
    if (input instanceof QTensor) throw new Error(`${this.kind} is float only: keep it in float (importOnnx fallback 'float')`);
    if (!(input instanceof Tensor)) throw new TypeError(`${this.kind} expects a Tensor`);
    const f = Math.fround;
    if (this.kind === 'softmax') {
      const x = input.contiguous();
      const axis = this.axis < 0 ? this.axis + x.shape.length : this.axis;
      if (axis !== x.shape.length - 1) throw new RangeError(`softmax supports the last axis, got ${this.axis} of rank ${x.shape.length}`);
      const n = x.shape[axis], y = new Float32Array(x.numel);
      for (let o = 0; o < x.numel; o += n) {
        let m = -Infinity;
        for (let i = 0; i < n; i++) m = Math.max(m, x.data[o + i]);
        let sum = 0;
        for (let i = 0; i < n; i++) sum += (y[o + i] = f(Math.exp(x.data[o + i] - m)));
        for (let i = 0; i < n; i++) y[o + i] = f(y[o + i] / sum);
      }
      return new Tensor(y, x.shape);
    }
    const d = input.data, y = outputBuffer(d.length), a = this.alpha, b = this.beta;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      y[i] = this.kind === 'sigmoid' ? f(1 / (1 + Math.exp(-v))) : this.kind === 'tanh' ? f(Math.tanh(v))
        : this.kind === 'hardsigmoid' ? Math.max(0, Math.min(1, f(f(a * v) + b)))
        : f(v * Math.max(0, Math.min(1, f(f(v / 6) + 0.5))));
    }
    return new Tensor(y, input.shape, input.memoryFormat);
  }
  typeName(): string {
    return { sigmoid: 'Sigmoid', tanh: 'Tanh', hardsigmoid: 'Hardsigmoid', hardswish: 'Hardswish', softmax: 'Softmax' }[this.kind];
  }
}

/** torch.nn.AvgPool2d (float only; ceil_mode=False). */
export class AvgPool2d extends Module {
  constructor(readonly kernelSize: number, readonly stride: number, readonly padding = 0, readonly countIncludePad = true) {
    super();
  }
  forward(input: unknown): Tensor | QTensor {
    if (input instanceof QTensor) return this.quantized(input);
    if (!(input instanceof Tensor) || input.shape.length !== 4) throw new TypeError('AvgPool2d expects a 4-D Tensor');
    const x = input.toChannelsLast();
    const [n, c, h, w] = x.shape;
    const k = this.kernelSize, s = this.stride, p = this.padding;
    const oh = convOutSize(h, k, s, p, 1), ow = convOutSize(w, k, s, p, 1);
    const y = outputBuffer(n * oh * ow * c), d = x.data;
    const acc = new Float32Array(c);
    for (let b = 0; b < n; b++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          acc.fill(0);
          let count = 0;
          const y0 = oy * s - p, x0 = ox * s - p;
          const yEnd = Math.min(y0 + k, h + p), xEnd = Math.min(x0 + k, w + p);
          const padCount = (yEnd - y0) * (xEnd - x0);
          for (let iy = Math.max(y0, 0); iy < Math.min(y0 + k, h); iy++)
            for (let ix = Math.max(x0, 0); ix < Math.min(x0 + k, w); ix++) {
              const o = ((b * h + iy) * w + ix) * c;
              for (let ch = 0; ch < c; ch++) acc[ch] = Math.fround(acc[ch] + d[o + ch]);
              count++;
            }
          const div = this.countIncludePad ? padCount : count;
          const yo = ((b * oh + oy) * ow + ox) * c;
          for (let ch = 0; ch < c; ch++) y[yo + ch] = Math.fround(acc[ch] / div);
        }
    return new Tensor(y, [n, c, oh, ow], 'channels_last');
  }
  /**
   * Quantized avg_pool2d (torch 1.13 NHWC kernel), output qparams = input's: the int32 sum of the
   * window minus zp * (valid count), then zp + rne(f32(acc) * f32(1 / divisor)). TS only.
   */
  private quantized(x: QTensor): QTensor {
    if (x.shape.length !== 4 || x.memoryFormat !== 'channels_last') throw new RangeError('quantized AvgPool2d expects a 4-D channels_last QTensor');
    const [n, c, h, w] = x.shape;
    const k = this.kernelSize, s = this.stride, p = this.padding, z = x.zeroPoint, d = x.data;
    const oh = convOutSize(h, k, s, p, 1), ow = convOutSize(w, k, s, p, 1);
    const y = new Uint8Array(n * oh * ow * c);
    const acc = new Int32Array(c);
    for (let b = 0; b < n; b++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const y0 = oy * s - p, x0 = ox * s - p;
          const poolSize = (Math.min(y0 + k, h + p) - y0) * (Math.min(x0 + k, w + p) - x0);
          acc.fill(0);
          let count = 0;
          for (let iy = Math.max(y0, 0); iy < Math.min(y0 + k, h); iy++)
            for (let ix = Math.max(x0, 0); ix < Math.min(x0 + k, w); ix++) {
              const o = ((b * h + iy) * w + ix) * c;
              for (let ch = 0; ch < c; ch++) acc[ch] += d[o + ch];
              count++;
            }
          const mult = Math.fround(1 / (this.countIncludePad ? poolSize : count));
          const yo = ((b * oh + oy) * ow + ox) * c;
          for (let ch = 0; ch < c; ch++) {
            const q = z + roundHalfEven(Math.fround((acc[ch] - z * count) * mult));
            y[yo + ch] = q < 0 ? 0 : q > 255 ? 255 : q;
          }
        }
    return new QTensor(y, [n, c, oh, ow], x.scale, x.zeroPoint, 'channels_last');
  }
  extraRepr(): string {
    return `kernel_size=${this.kernelSize}, stride=${this.stride}, padding=${this.padding}`;
  }
}

type Value = Tensor | QTensor;

/** Zero padding of H and W (a quantized tensor is padded with its zero point, i.e. real 0). */
function padHW(x: Value, [t, l, b, r]: [number, number, number, number]): Value {
  if (x.shape.length !== 4) throw new RangeError(`pad expects a 4-D tensor, got [${x.shape.join(', ')}]`);
  const [n, c, h, w] = x.shape;
  const oh = h + t + b, ow = w + l + r;
  const q = x instanceof QTensor;
  const src = q ? (x as QTensor).data : (x as Tensor).toChannelsLast().data;
  const out = q ? new Uint8Array(n * oh * ow * c).fill((x as QTensor).zeroPoint) : new Float32Array(n * oh * ow * c);
  const xs = q && (x as QTensor).memoryFormat !== 'channels_last' ? null : src;
  if (!xs) throw new RangeError('pad expects a channels_last quantized tensor');
  for (let bi = 0; bi < n; bi++)
    for (let y = 0; y < h; y++) {
      const so = ((bi * h + y) * w) * c, dOff = ((bi * oh + y + t) * ow + l) * c;
      out.set(xs.subarray(so, so + w * c) as never, dOff);
    }
  return q ? new QTensor(out as Uint8Array, [n, c, oh, ow], (x as QTensor).scale, (x as QTensor).zeroPoint, 'channels_last')
    : new Tensor(out as Float32Array, [n, c, oh, ow], 'channels_last');
}

function resolveShape(inShape: readonly number[], target: readonly number[], where: string): number[] {
  const out = target.map((d, i) => (d === 0 ? inShape[i] : d));
  const total = inShape.reduce((a, b) => a * b, 1);
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const neg = out.filter((d) => d === -1).length;
  if (neg > 1) throw new RangeError(`${where}: reshape with more than one -1`);
  if (neg === 1) out[out.indexOf(-1)] = total / known;
  if (out.reduce((a, b) => a * b, 1) !== total || out.some((d) => !Number.isInteger(d) || d < 0))
    throw new RangeError(`${where}: cannot reshape [${inShape.join(', ')}] to [${target.join(', ')}]`);
  return out;
}

/** A model that runs a GraphSpec; submodules are named after the graph's nodes. */
export class GraphModule extends Module {
  constructor(readonly spec: GraphSpec) {
    super();
    if (spec.format !== GRAPH_FORMAT) throw new RangeError(`graph description format '${String(spec.format)}', expected '${GRAPH_FORMAT}'`);
    this.addModule('quant', new QuantStub());
    const floatValues = new Set<string>();
    const consumers = new Map<string, GraphNodeSpec[]>();
    for (const n of spec.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
    for (const n of spec.nodes) {
      let m: Module | undefined;
      if (n.op === 'module') {
        if (!n.module) throw new RangeError(`graph node '${n.name}' has no module description`);
        m = moduleFromDesc(n.module);
      } else if (n.op === 'add' || n.op === 'add_relu' || n.op === 'mul' || n.op === 'cat') {
        m = new FloatFunctional();
      }
      if (n.float) {
        n.inputs.forEach((v, i) => {
          if (!floatValues.has(v)) this.addModule(`${n.name}_dequant${i}`, new DeQuantStub());
        });
        floatValues.add(n.output);
        // Never quantized: no observers, no swap at convert.
        if (m) for (const x of m.modules()) x.qconfig = null;
      }
      if (m) this.addModule(n.name, m);
      if (n.float && (n.output === spec.output || (consumers.get(n.output) ?? []).some((c) => !c.float)))
        this.addModule(`${n.name}_quant`, new QuantStub());
    }
    this.addModule('dequant', new DeQuantStub());
  }

  /** True when some nodes run in TypeScript: float parts, pads, quantized cat / mul (no native plan then). */
  get hasTypeScriptOps(): boolean {
    return this.spec.nodes.some((n) => n.float || n.op === 'pad' || n.op === 'cat' || n.op === 'mul' || n.module?.type === 'AvgPool2d');
  }

  typeName(): string {
    return 'GraphModule';
  }

  forward(input: unknown): Tensor {
    const env = new Map<string, Value>();
    // Float versions of values made by float nodes (their quantized version, if needed, is in env).
    const fenv = new Map<string, Tensor>();
    env.set(this.spec.input, this._modules.get('quant')!.call(input) as Value);
    let get = (n: GraphNodeSpec, i: number): Value => {
      const v = env.get(n.inputs[i]);
      if (!v) throw new Error(`graph node '${n.onnxName}' (${n.opType}): input '${n.inputs[i]}' has no value`);
      return v;
    };
    const getQ = get;
    const getF = (n: GraphNodeSpec, i: number): Value => {
      const f = fenv.get(n.inputs[i]);
      return f ?? (this._modules.get(`${n.name}_dequant${i}`)!.call(getQ(n, i)) as Tensor);
    };
    for (const n of this.spec.nodes) {
      get = n.float ? getF : getQ;
      const slot = this._modules.get(n.name) as Module;
      let y: Value;
      switch (n.op) {
        case 'module':
          y = slot.call(get(n, 0)) as Value;
          break;
        case 'add':
        case 'add_relu': {
          const f = slot as FloatFunctional | QFunctional;
          y = n.op === 'add' ? f.add(get(n, 0) as never, get(n, 1) as never) : f.add_relu(get(n, 0) as never, get(n, 1) as never);
          break;
        }
        case 'mul':
        case 'cat': {
          const f = slot as FloatFunctional;
          y = n.op === 'mul' ? f.mul(get(n, 0) as never, get(n, 1) as never) : f.cat(n.inputs.map((_, i) => get(n, i) as never), n.axis ?? 1);
          break;
        }
        case 'mean': {
          const x = get(n, 0);
          y = x.mean([2, 3], n.keepdims ?? false);
          break;
        }
        case 'reshape': {
          const x = get(n, 0);
          y = x.reshape(resolveShape(x.shape, n.shape!, `graph node '${n.onnxName}' (${n.opType})`));
          break;
        }
        case 'pad':
          y = padHW(get(n, 0), n.pads!);
          break;
        case 'transpose': {
          const x = get(n, 0);
          const perm = n.perm!;
          if (perm.length !== x.shape.length)
            throw new RangeError(`graph node '${n.onnxName}' (Transpose): perm ${pyTuple(perm)} does not match rank ${x.shape.length}`);
          // Only a layout change is supported: the dims larger than 1 keep their order.
          const big = perm.filter((p) => x.shape[p] !== 1);
          if (big.some((p, i) => i > 0 && p < big[i - 1]))
            throw new Error(`graph node '${n.onnxName}' (Transpose): perm ${pyTuple(perm)} on [${x.shape.join(', ')}] moves data; only layout-only transposes are supported`);
          const shape = perm.map((p) => x.shape[p]);
          y = x instanceof QTensor ? x.reshape(shape) : (x as Tensor).reshape(shape);
          break;
        }
        default:
          throw new Error(`graph node '${n.onnxName}': unknown op '${String(n.op)}'`);
      }
      if (n.float) {
        fenv.set(n.output, y as Tensor);
        const q = this._modules.get(`${n.name}_quant`);
        if (q) env.set(n.output, q.call(y) as Value);
      } else env.set(n.output, y);
    }
    const out = env.get(this.spec.output);
    if (!out) throw new Error(`graph output '${this.spec.output}' has no value`);
    return this._modules.get('dequant')!.call(out) as Tensor;
  }

  /**
   * Fuses by pattern, in place: Conv -> BatchNormalization (-> Relu | ReLU6 clamp), Conv -> Relu and
   * Gemm/MatMul -> Relu chains whose intermediate values have a single consumer (fuse_modules' lists).
   */
  fuseModel(): void {
    const consumers = new Map<string, number>();
    for (const n of this.spec.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
    const single = (v: string) => consumers.get(v) === 1 && v !== this.spec.output;
    const next = (n: GraphNodeSpec, type: string): GraphNodeSpec | undefined => {
      if (!single(n.output)) return undefined;
      const c = this.spec.nodes.find((m) => m.inputs.includes(n.output));
      return c && c.op === 'module' && c.module?.type === type && c.inputs[0] === n.output ? c : undefined;
    };
    const lists: string[][] = [];
    for (const n of this.spec.nodes) {
      if (n.op !== 'module') continue;
      const t = n.module!.type;
      // Already fused (fuseModel called twice): the slot is no longer the plain float module.
      if (!(this._modules.get(n.name) instanceof Conv2d) && !(this._modules.get(n.name) instanceof Linear)) continue;
      if (t === 'Conv2d') {
        const bn = next(n, 'BatchNorm2d');
        const after = bn ?? n;
        const act = next(after, 'ReLU') ?? next(after, 'ReLU6');
        const list = [n.name];
        if (bn) list.push(bn.name);
        if (act) list.push(act.name);
        if (list.length > 1) lists.push(list);
      } else if (t === 'Linear') {
        const act = next(n, 'ReLU');
        if (act) lists.push([n.name, act.name]);
      }
    }
    for (const l of lists) {
      const last = this._modules.get(l[l.length - 1]);
      if (last instanceof ReLU6) {
        // Conv(+BN)+ReLU6: fold BN with torch's numerics, then a fused conv with a clamped output.
        if (l.length === 3) fuseModules(this, [l[0], l[1]], true);
        const conv = this._modules.get(l[0]) as Conv2d;
        const fused = new ConvReLU62d(conv, last);
        fused.train(conv.training);
        this._modules.set(l[0], fused);
        const id = new Identity();
        id.training = conv.training;
        this._modules.set(l[l.length - 1], id);
      } else {
        fuseModules(this, l, true);
      }
    }
  }
}
