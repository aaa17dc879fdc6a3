// Native float32 conv2d / linear (NHWC) behind the FloatKernels interface. Every argument is
// validated here (TypeError/RangeError naming it) before the binding, which re-checks only what
// memory safety depends on. Weights are packed once for one ISA level (default: the level chosen
// at load, which honours PTQ_ISA; avxvnni runs the AVX2 float kernels).
//
// Methods (chosen at pack time): depthwise (groups == in == out channels) runs a direct NHWC
// kernel; 1x1 stride-1 unpadded convs run a GEMM directly on x; other convs (incl. grouped) an
// im2col of a block of output pixels, then the GEMM per group. Packed handles are immutable; the
// im2col scratch is per thread in the addon, so a packed layer may be shared freely.
import type { F32ConvPacked, F32LinearPacked, F32Method, IsaName } from '../../binding';
import { checkInt, invalidRange, invalidType } from '../errors';
import { BinaryOpF32, Conv2dGeometry, convOutSize, FloatKernels, PackedConv2dF32, PackedLinearF32 } from './float';
import { loadNative } from './native';

/** Pack-time options of the native float kernels. */
export interface NativeFloatPackOptions {
  /** ISA level to pack for (default: `loadNative().isa`); must be supported by this CPU. */
  isa?: IsaName;
}

/** Conv weights packed by the native float kernels. */
export interface NativePackedConv2dF32 extends PackedConv2dF32 {
  /** The ISA level packed for. */
  readonly isa: IsaName;
  /** How the conv runs (see the file comment). */
  readonly method: F32Method;
}

/** Linear weights packed by the native float kernels. */
export interface NativePackedLinearF32 extends PackedLinearF32 {
  readonly isa: IsaName;
}

/** The native FloatKernels; the pack functions also take an optional ISA level. */
export interface NativeFloatKernels extends FloatKernels {
  readonly name: 'native';
  packConv2d(weight: Float32Array, bias: Float32Array | null, g: Conv2dGeometry, options?: NativeFloatPackOptions): NativePackedConv2dF32;
  packLinear(weight: Float32Array, bias: Float32Array | null, inFeatures: number, outFeatures: number, options?: NativeFloatPackOptions): NativePackedLinearF32;
}

const MAX_DIM = 1 << 24;
const MAX_KERNEL = 1 << 16;

class NativeConv implements NativePackedConv2dF32 {
  constructor(readonly geometry: Conv2dGeometry, readonly isa: IsaName, readonly method: F32Method, readonly handle: F32ConvPacked) {}
}

class NativeLinear implements NativePackedLinearF32 {
  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly isa: IsaName, readonly handle: F32LinearPacked) {}
}

/** Validates a conv geometry; returns a frozen copy with only the known fields. */
export function validateConv2dGeometry(g: Conv2dGeometry): Conv2dGeometry {
  if (typeof g !== 'object' || g === null) throw invalidType('geometry', 'an object', g);
  const inChannels = checkInt('geometry.inChannels', g.inChannels, 1, MAX_DIM);
  const outChannels = checkInt('geometry.outChannels', g.outChannels, 1, MAX_DIM);
  const kernelH = checkInt('geometry.kernelH', g.kernelH, 1, MAX_KERNEL);
  const kernelW = checkInt('geometry.kernelW', g.kernelW, 1, MAX_KERNEL);
  const strideH = checkInt('geometry.strideH', g.strideH, 1, MAX_KERNEL);
  const strideW = checkInt('geometry.strideW', g.strideW, 1, MAX_KERNEL);
  const padH = checkInt('geometry.padH', g.padH, 0, MAX_KERNEL);
  const padW = checkInt('geometry.padW', g.padW, 0, MAX_KERNEL);
  const dilationH = checkInt('geometry.dilationH', g.dilationH, 1, MAX_KERNEL);
  const dilationW = checkInt('geometry.dilationW', g.dilationW, 1, MAX_KERNEL);
  const groups = checkInt('geometry.groups', g.groups, 1, inChannels);
  if (inChannels % groups !== 0 || outChannels % groups !== 0)
    throw invalidRange('geometry.groups', `a divisor of inChannels (${inChannels}) and outChannels (${outChannels})`, groups);
  return Object.freeze({ inChannels, outChannels, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, groups });
}

function checkIsa(options: NativeFloatPackOptions | undefined): IsaName {
  const addon = loadNative();
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw invalidType('options', 'an object or undefined', options);
  const isa = options?.isa ?? addon.isa;
  if (!addon.supported.includes(isa))
    throw new RangeError(`Expected one of ${addon.supported.join(', ')} for options.isa but received '${String(isa)}'`);
  return isa;
}

function checkBias(bias: unknown, n: number, what: string): Float32Array | null {
  if (bias === null) return null;
  if (!(bias instanceof Float32Array)) throw invalidType('bias', 'a Float32Array or null', bias);
  if (bias.length !== n) throw invalidRange('bias', `length ${what} = ${n}`, bias);
  return bias;
}

function checkF32(name: string, a: unknown, length: number, shape: string): Float32Array {
  if (!(a instanceof Float32Array)) throw invalidType(name, 'a Float32Array', a);
  if (a.length !== length) throw invalidRange(name, `length ${shape} = ${length}`, a);
  return a;
}

function checkRelu(relu: unknown): boolean {
  if (typeof relu !== 'boolean') throw invalidType('relu', 'a boolean', relu);
  return relu;
}

/** Throws when y shares memory with x (the kernels read x while writing y). */
function checkNoOverlap(x: Float32Array, y: Float32Array): void {
  if (x.buffer !== y.buffer || x.length === 0 || y.length === 0) return;
  const xs = x.byteOffset, xe = xs + x.byteLength, ys = y.byteOffset, ye = ys + y.byteLength;
  if (xs < ye && ys < xe) throw invalidRange('y', 'a buffer that does not overlap x', y);
}

/** The native float32 kernels (AVX-512 / AVX2 FMA / portable scalar, runtime ISA dispatch). */
export const nativeFloatKernels: NativeFloatKernels = {
  name: 'native',

  packConv2d(weight, bias, g, options) {
    const geometry = validateConv2dGeometry(g);
    const isa = checkIsa(options);
    const cpg = geometry.inChannels / geometry.groups;
    const count = geometry.outChannels * cpg * geometry.kernelH * geometry.kernelW;
    checkF32('weight', weight, count, `outChannels*(inChannels/groups)*kernelH*kernelW`);
    checkBias(bias, geometry.outChannels, 'outChannels');
    const { binding } = loadNative();
    const handle = binding.f32ConvPack(isa, geometry, weight, bias);
    return new NativeConv(geometry, isa, binding.f32Info(handle).method, handle);
  },

  conv2d(p, x, n, h, w, y, relu) {
    if (!(p instanceof NativeConv)) throw new TypeError('packed conv weights come from another backend');
    const g = p.geometry;
    checkInt('n', n, 0, MAX_DIM);
    checkInt('h', h, 1, MAX_DIM);
    checkInt('w', w, 1, MAX_DIM);
    const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
    const ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
    if (oh < 1) throw invalidRange('h', `at least ${g.dilationH * (g.kernelH - 1) + 1 - 2 * g.padH} (the output would be empty)`, h);
    if (ow < 1) throw invalidRange('w', `at least ${g.dilationW * (g.kernelW - 1) + 1 - 2 * g.padW} (the output would be empty)`, w);
    checkF32('x', x, n * h * w * g.inChannels, `n*h*w*inChannels`);
    checkF32('y', y, n * oh * ow * g.outChannels, `n*oh*ow*outChannels (oh=${oh}, ow=${ow})`);
    checkRelu(relu);
    checkNoOverlap(x, y);
    loadNative().binding.f32Conv(p.handle, x, n, h, w, y, relu);
  },

  packLinear(weight, bias, inFeatures, outFeatures, options) {
    const k = checkInt('inFeatures', inFeatures, 1, MAX_DIM);
    const nOut = checkInt('outFeatures', outFeatures, 1, MAX_DIM);
    const isa = checkIsa(options);
    checkF32('weight', weight, k * nOut, 'inFeatures*outFeatures');
    checkBias(bias, nOut, 'outFeatures');
    const handle = loadNative().binding.f32LinearPack(isa, k, nOut, weight, bias);
    return new NativeLinear(k, nOut, isa, handle);
  },

  linear(p, m, x, y, relu) {
    if (!(p instanceof NativeLinear)) throw new TypeError('packed linear weights come from another backend');
    checkInt('m', m, 0, 1 << 30);
    checkF32('x', x, m * p.inFeatures, 'm*inFeatures');
    checkF32('y', y, m * p.outFeatures, 'm*outFeatures');
    checkRelu(relu);
    checkNoOverlap(x, y);
    loadNative().binding.f32Linear(p.handle, m, x, y, relu);
  },

  binary(op, a, b, y) {
    const code = BINARY_OPS[op];
    if (code === undefined) throw invalidRange('op', `one of ${Object.keys(BINARY_OPS).join(', ')}`, op);
    if (!(a instanceof Float32Array)) throw invalidType('a', 'a Float32Array', a);
    checkF32('b', b, a.length, 'a.length');
    checkF32('y', y, a.length, 'a.length');
    checkNoOverlap(a, y);
    checkNoOverlap(b, y);
    loadNative().binding.f32Binary(a, b, y, code);
  },

  channelAffine(x, pixels, c, alpha, beta, y) {
    checkInt('pixels', pixels, 0, 1 << 30);
    checkInt('c', c, 0, MAX_DIM);
    checkF32('x', x, pixels * c, 'pixels*c');
    checkF32('alpha', alpha, c, 'c');
    checkF32('beta', beta, c, 'c');
    checkF32('y', y, pixels * c, 'pixels*c');
    checkNoOverlap(x, y);
    checkNoOverlap(alpha, y);
    checkNoOverlap(beta, y);
    loadNative().binding.f32ChannelAffine(x, pixels, c, alpha, beta, y);
  },

  relu(x, y, max) {
    if (!(x instanceof Float32Array)) throw invalidType('x', 'a Float32Array', x);
    checkF32('y', y, x.length, 'x.length');
    if (typeof max !== 'number' || !(max >= 0)) throw invalidRange('max', 'a number >= 0 (Infinity for ReLU)', max);
    if (x !== y) checkNoOverlap(x, y);
    loadNative().binding.f32Relu(x, y, max);
  },

  meanHW(x, n, hw, c, y) {
    checkInt('n', n, 0, MAX_DIM);
    checkInt('hw', hw, 1, 1 << 30);
    checkInt('c', c, 0, MAX_DIM);
    checkF32('x', x, n * hw * c, 'n*hw*c');
    checkF32('y', y, n * c, 'n*c');
    checkNoOverlap(x, y);
    loadNative().binding.f32MeanHW(x, n, hw, c, y);
  },

  toChannelsLast(x, n, c, hw, y) {
    checkInt('n', n, 0, MAX_DIM);
    checkInt('c', c, 0, MAX_DIM);
    checkInt('hw', hw, 0, 1 << 30);
    checkF32('x', x, n * c * hw, 'n*c*hw');
    checkF32('y', y, n * c * hw, 'n*c*hw');
    checkNoOverlap(x, y);
    loadNative().binding.f32ToChannelsLast(x, n, c, hw, y);
  },

  maxPool2d(x, n, h, w, c, g, y) {
    checkInt('n', n, 0, MAX_DIM);
    checkInt('h', h, 1, MAX_DIM);
    checkInt('w', w, 1, MAX_DIM);
    checkInt('c', c, 0, MAX_DIM);
    const k = checkInt('kernelSize', g.kernelSize, 1, 1024), s = checkInt('stride', g.stride, 1, 1024);
    const pad = checkInt('padding', g.padding, 0, 1024), d = checkInt('dilation', g.dilation, 1, 1024);
    if (2 * pad > k) throw invalidRange('padding', `at most half the kernel size (${k})`, pad);
    const oh = convOutSize(h, k, s, pad, d), ow = convOutSize(w, k, s, pad, d);
    if (oh < 1 || ow < 1) throw invalidRange('h, w', `a window of ${d * (k - 1) + 1} pixels with padding ${pad} to fit`, [h, w]);
    checkF32('x', x, n * h * w * c, 'n*h*w*c');
    checkF32('y', y, n * oh * ow * c, `n*oh*ow*c (oh=${oh}, ow=${ow})`);
    checkNoOverlap(x, y);
    loadNative().binding.f32MaxPool2d(x, n, h, w, c, k, s, pad, d, y);
  },
};

const BINARY_OPS: Record<BinaryOpF32, 0 | 1 | 2> = { add: 0, add_relu: 1, mul: 2 };
