// Float layers (torch.nn equivalents) over channels_last activations. Inference only: they run in
// eval mode; training-time behaviour (batch statistics, dropout) is out of scope and refused.
import { Conv2dGeometry, convOutSize, FloatKernels, PackedConv2dF32, PackedLinearF32 } from '../kernels/float';
import { getFloatKernels } from '../kernels/float-select';
import { outputBuffer, recycleBuffer, Tensor } from '../tensor';
import { QTensor, u8Output } from '../qtensor';
import { getBackend } from '../kernels';
import { defaultBackend } from '../kernels/default';
import { pyFloatRepr as pyFloat } from '../quantization/observer';
import { Module, pyTuple, subtreeKeepsNothing } from './module';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

function expect4d(name: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${name} expects a Tensor input`);
  if (x.shape.length !== 4) throw new RangeError(`${name} expects a 4-D input [N, C, H, W], got [${x.shape.join(', ')}]`);
  return x;
}

function refuseTraining(m: Module): void {
  if (m.training)
    throw new Error(`${m.typeName()} is in training mode; ptq-node runs inference only: call model.eval() first`);
}

/**
 * Hands a dead float activation's buffer back to outputBuffer: x was made inside a forward and
 * every module that saw it (`seenBy`: its producer and its readers) is done with it. Nothing is
 * recycled that shares memory with a tensor still `alive` (the forward's own input, results), or
 * that a forward hook (other than prepare()'s observers) anywhere inside those modules could have
 * kept. A custom module that stores a tensor it returns, without a hook, must copy it (`clone()`).
 */
export function releaseActivation(x: unknown, alive: readonly unknown[], seenBy: readonly Module[]): void {
  if (!(x instanceof Tensor)) return;
  for (const a of alive) if (a === x || (a instanceof Tensor && a.data.buffer === x.data.buffer)) return;
  for (const m of seenBy) if (!subtreeKeepsNothing(m)) return;
  recycleBuffer(x);
}

/**
 * Calls parent's children `names` in order, each on the previous one's result, recycling the
 * activations passed between them as Sequential does.
 */
export function callChain(parent: Module, names: readonly string[], input: unknown): unknown {
  let x = input, prev: Module | null = null;
  for (const n of names) {
    const m = parent._modules.get(n);
    if (!m) throw new RangeError(`${parent.typeName()} has no child '${n}'`);
    const y = m.call(x);
    if (prev) releaseActivation(x, [input, y], [prev, m]);
    prev = m;
    x = y;
  }
  return x;
}

/**
 * Sequential container: calls its children in order. A float activation passed from one child to
 * the next is dead once the next child returns, and its buffer is reused by later outputs (see
 * releaseActivation). The container's own input is never recycled, even when a first child such
 * as Identity passes it on.
 */
export class Sequential extends Module {
  constructor(...mods: Module[]) {
    super();
    mods.forEach((m, i) => this.addModule(String(i), m));
  }
  forward(input: unknown): unknown {
    let x = input, prev: Module | null = null;
    for (const m of this.children()) {
      const y = m.call(x);
      if (prev) releaseActivation(x, [input, y], [prev, m]);
      prev = m;
      x = y;
    }
    return x;
  }
  /** Number of slots. */
  get length(): number {
    return this._modules.size;
  }
  /** Child at an index. */
  at(i: number): Module {
    const m = this._modules.get(String(i));
    if (!m) throw new RangeError(`Sequential index ${i} out of range`);
    return m;
  }
}

/** Options of Conv2d, as torch.nn.Conv2d's keyword arguments. */
export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** 2-D convolution (weights OIHW, activations channels_last). */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  private packed?: { kernels: FloatKernels; weight: Tensor; bias: Tensor | null; p: PackedConv2dF32 };

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(o.stride ?? 1);
    this.padding = pair(o.padding ?? 0);
    this.dilation = pair(o.dilation ?? 1);
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups)
      throw new RangeError(`in_channels (${inChannels}) and out_channels (${outChannels}) must be divisible by groups (${this.groups})`);
    const [kh, kw] = this.kernelSize;
    this.registerParameter('weight', Tensor.zeros([outChannels, inChannels / this.groups, kh, kw]));
    this.registerParameter('bias', o.bias === false ? null : Tensor.zeros([outChannels]));
  }

  get weight(): Tensor {
    return this._parameters.get('weight')!;
  }
  set weight(t: Tensor) {
    this.registerParameter('weight', t);
  }
  get bias(): Tensor | null {
    return this._parameters.get('bias') ?? null;
  }
  set bias(t: Tensor | null) {
    this.registerParameter('bias', t);
  }

  /** The geometry the kernels take. */
  geometry(): Conv2dGeometry {
    return {
      inChannels: this.inChannels, outChannels: this.outChannels, kernelH: this.kernelSize[0], kernelW: this.kernelSize[1],
      strideH: this.stride[0], strideW: this.stride[1], padH: this.padding[0], padW: this.padding[1],
      dilationH: this.dilation[0], dilationW: this.dilation[1], groups: this.groups,
    };
  }

  /** Float forward; relu fuses max(0, .) into the kernel (used by ConvReLU2d). */
  convForward(input: unknown, relu: boolean): Tensor {
    const given = expect4d('Conv2d', input), x = given.toChannelsLast();
    const [n, c, h, w] = x.shape;
    if (c !== this.inChannels) throw new RangeError(`Conv2d expects ${this.inChannels} input channels, got ${c} (input [${x.shape.join(', ')}])`);
    const kernels = getFloatKernels();
    const wt = this.weight, b = this.bias;
    if (!this.packed || this.packed.kernels !== kernels || this.packed.weight !== wt || this.packed.bias !== b)
      this.packed = { kernels, weight: wt, bias: b, p: kernels.packConv2d(wt.data, b ? b.data : null, this.geometry()) };
    const oh = convOutSize(h, this.kernelSize[0], this.stride[0], this.padding[0], this.dilation[0]);
    const ow = convOutSize(w, this.kernelSize[1], this.stride[1], this.padding[1], this.dilation[1]);
    if (oh < 1 || ow < 1) throw new RangeError(`Conv2d input ${h}x${w} is smaller than the kernel`);
    const y = outputBuffer(n * oh * ow * this.outChannels);
    kernels.conv2d(this.packed.p, x.data, n, h, w, y, relu);
    // A channels_last copy made here (of an NCHW model input) is dead now.
    if (x.data !== given.data) recycleBuffer(x);
    return new Tensor(y, [n, this.outChannels, oh, ow], 'channels_last');
  }

  forward(x: unknown): Tensor {
    return this.convForward(x, false);
  }

  onStateLoaded(): void {
    this.packed = undefined;
  }

  extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`;
    if (this.padding.some((p) => p !== 0)) s += `, padding=${pyTuple(this.padding)}`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=${pyTuple(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

/** Batch normalization over channels (eval mode: running statistics). */
export class BatchNorm2d extends Module {
  constructor(readonly numFeatures: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.registerParameter('weight', new Tensor(new Float32Array(numFeatures).fill(1), [numFeatures]));
    this.registerParameter('bias', Tensor.zeros([numFeatures]));
    this.registerBuffer('running_mean', Tensor.zeros([numFeatures]));
    this.registerBuffer('running_var', new Tensor(new Float32Array(numFeatures).fill(1), [numFeatures]));
    this.registerBuffer('num_batches_tracked', Tensor.zeros([]));
  }
  forward(input: unknown): Tensor {
    refuseTraining(this);
    const x = expect4d('BatchNorm2d', input).toChannelsLast();
    const c = this.numFeatures;
    if (x.shape[1] !== c) throw new RangeError(`BatchNorm2d expects ${c} channels, got ${x.shape[1]}`);
    const w = this._parameters.get('weight')!.data, b = this._parameters.get('bias')!.data;
    const rm = this._buffers.get('running_mean')!.data, rv = this._buffers.get('running_var')!.data;
    // ATen's eval batch norm: y = x * alpha + beta, alpha = w / sqrt(var + eps), beta = b - mean * alpha.
    const alpha = new Float32Array(c), beta = new Float32Array(c);
    const fr = Math.fround;
    for (let i = 0; i < c; i++) {
      alpha[i] = fr(w[i] / fr(Math.sqrt(fr(rv[i] + fr(this.eps)))));
      beta[i] = fr(b[i] - fr(rm[i] * alpha[i]));
    }
    const y = outputBuffer(x.data.length);
    getFloatKernels().channelAffine(x.data, x.data.length / c, c, alpha, beta, y);
    return new Tensor(y, x.shape, 'channels_last');
  }
  extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${pyFloat(this.momentum)}, affine=True, track_running_stats=True`;
  }
}

/** Element-wise max(x, 0) into a new tensor of the same shape and format. */
export function relu(x: Tensor, max = Infinity): Tensor {
  const y = outputBuffer(x.data.length);
  getFloatKernels().relu(x.data, y, max);
  return new Tensor(y, x.shape, x.memoryFormat);
}

/** ReLU activation. */
export class ReLU extends Module {
  constructor(readonly inplace = false) {
    super();
  }
  forward(x: unknown): Tensor | QTensor {
    if (x instanceof QTensor) {
      // Quantized ReLU keeps the qparams: max(q, zero_point).
      const y = new Uint8Array(x.numel), z = x.zeroPoint, d = x.data;
      for (let i = 0; i < d.length; i++) y[i] = d[i] > z ? d[i] : z;
      return new QTensor(y, x.shape, x.scale, x.zeroPoint, x.memoryFormat);
    }
    if (!(x instanceof Tensor)) throw new TypeError('ReLU expects a Tensor');
    return relu(x);
  }
  extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}

/** ReLU6 activation: min(max(x, 0), 6). */
export class ReLU6 extends Module {
  constructor(readonly inplace = false) {
    super();
  }
  forward(x: unknown): Tensor {
    if (!(x instanceof Tensor)) throw new TypeError('ReLU6 expects a Tensor');
    return relu(x, 6);
  }
  extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}

/** Fully connected layer y = x W^T + b over [N, in_features]. */
export class Linear extends Module {
  private packed?: { kernels: FloatKernels; weight: Tensor; bias: Tensor | null; p: PackedLinearF32 };
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.registerParameter('weight', Tensor.zeros([outFeatures, inFeatures]));
    this.registerParameter('bias', bias ? Tensor.zeros([outFeatures]) : null);
  }
  get weight(): Tensor {
    return this._parameters.get('weight')!;
  }
  set weight(t: Tensor) {
    this.registerParameter('weight', t);
  }
  get bias(): Tensor | null {
    return this._parameters.get('bias') ?? null;
  }
  set bias(t: Tensor | null) {
    this.registerParameter('bias', t);
  }
  /** Float forward with optional fused ReLU (used by LinearReLU). */
  linearForward(input: unknown, relu: boolean): Tensor {
    if (!(input instanceof Tensor)) throw new TypeError('Linear expects a Tensor');
    const x = input.contiguous();
    const k = x.shape[x.shape.length - 1];
    if (k !== this.inFeatures) throw new RangeError(`Linear expects ${this.inFeatures} input features, got ${k} (input [${x.shape.join(', ')}])`);
    const m = x.numel / k;
    const kernels = getFloatKernels();
    const wt = this.weight, b = this.bias;
    if (!this.packed || this.packed.kernels !== kernels || this.packed.weight !== wt || this.packed.bias !== b)
      this.packed = { kernels, weight: wt, bias: b, p: kernels.packLinear(wt.data, b ? b.data : null, this.inFeatures, this.outFeatures) };
    const y = outputBuffer(m * this.outFeatures);
    kernels.linear(this.packed.p, m, x.data, y, relu);
    return new Tensor(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }
  forward(x: unknown): Tensor {
    return this.linearForward(x, false);
  }
  onStateLoaded(): void {
    this.packed = undefined;
  }
  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}

/** Dropout: the identity at inference. */
export class Dropout extends Module {
  constructor(readonly p = 0.5, readonly inplace = false) {
    super();
  }
  forward(x: unknown): unknown {
    refuseTraining(this);
    return x;
  }
  extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=${this.inplace ? 'True' : 'False'}`;
  }
}

/** Identity: returns its input (what fusion leaves behind). */
export class Identity extends Module {
  forward(x: unknown): unknown {
    return x;
  }
}

/** 2-D max pooling (channels_last). */
export class MaxPool2d extends Module {
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;
  constructor(kernelSize: number, stride?: number, padding = 0, readonly dilation = 1) {
    super();
    this.kernelSize = kernelSize;
    this.stride = stride ?? kernelSize;
    this.padding = padding;
  }
  forward(input: unknown): Tensor | QTensor {
    if (input instanceof QTensor) {
      if (this.dilation !== 1) throw new RangeError('quantized MaxPool2d supports dilation 1');
      const [n, c, h, w] = input.shape;
      const oh = convOutSize(h, this.kernelSize, this.stride, this.padding, 1), ow = convOutSize(w, this.kernelSize, this.stride, this.padding, 1);
      const y = u8Output(n * oh * ow * c);
      getBackend(defaultBackend()).qmaxpool2d(input.data, n, h, w, c, this.kernelSize, this.stride, this.padding, y);
      return new QTensor(y, [n, c, oh, ow], input.scale, input.zeroPoint, 'channels_last');
    }
    const x = expect4d('MaxPool2d', input).toChannelsLast();
    const [n, c, h, w] = x.shape;
    const oh = convOutSize(h, this.kernelSize, this.stride, this.padding, this.dilation);
    const ow = convOutSize(w, this.kernelSize, this.stride, this.padding, this.dilation);
    const y = outputBuffer(n * oh * ow * c);
    getFloatKernels().maxPool2d(x.data, n, h, w, c, this, y);
    return new Tensor(y, [n, c, oh, ow], 'channels_last');
  }
  extraRepr(): string {
    return `kernel_size=${this.kernelSize}, stride=${this.stride}, padding=${this.padding}, dilation=${this.dilation}, ceil_mode=False`;
  }
}

/** Adaptive average pooling to 1x1 (the only output size the model zoo uses). */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: [number, number] = [1, 1]) {
    super();
    if (outputSize[0] !== 1 || outputSize[1] !== 1) throw new RangeError('AdaptiveAvgPool2d supports output size (1, 1)');
  }
  forward(x: unknown): Tensor | QTensor {
    // Quantized: PyTorch's adaptive_avg_pool2d kernel (integer sum), output qparams = input's.
    if (x instanceof QTensor) {
      const [n, c, h, w] = x.shape;
      const y = u8Output(n * c);
      getBackend(defaultBackend()).qadaptiveAvgPool(x.data, n, h * w, c, y, x.scale, x.zeroPoint, x.scale, x.zeroPoint);
      return new QTensor(y, [n, c, 1, 1], x.scale, x.zeroPoint, 'channels_last');
    }
    return expect4d('AdaptiveAvgPool2d', x).mean([2, 3], true);
  }
  extraRepr(): string {
    return `output_size=${pyTuple(this.outputSize)}`;
  }
}

/** torch.nn.Flatten(start_dim=1). */
export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }
  forward(x: unknown): Tensor | QTensor {
    if (x instanceof QTensor) return x.flatten(this.startDim);
    if (!(x instanceof Tensor)) throw new TypeError('Flatten expects a Tensor');
    return x.flatten(this.startDim);
  }
  extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=-1`;
  }
}
