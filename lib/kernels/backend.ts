// One interface over the two implementations of every kernel: the pure-TS reference (the spec)
// and the native addon. Both validate arguments here, identically, before any work.
import type { IsaName } from '../../binding';
import { checkInt, checkScale, invalidRange, invalidType } from '../errors';
import type { Conv2dGeometry } from './float';
import type { QAddParams } from './reference/qops';
import { QGemmSpec } from './requant';

export type { QAddParams };

export type { IsaName };
export type BackendName = 'native' | 'reference';

/** GEMM weights packed once (at convert) for one backend. */
export interface PackedQGemm {
  readonly k: number;
  readonly n: number;
  /** The ISA the weights were packed for, or 'reference'. */
  readonly isa: IsaName | 'reference';
}

/** A quantized conv2d: geometry, OIHW int8 weights and the requantization numerics. */
export interface QConv2dSpec extends Omit<QGemmSpec, 'k' | 'n' | 'weight'> {
  geometry: Conv2dGeometry;
  /** int8 weights [outChannels][inChannels/groups][kh][kw] (PyTorch's layout). */
  weight: Int8Array;
}

/** Conv weights packed once for one backend. */
export interface PackedQConv2d {
  readonly geometry: Conv2dGeometry;
  readonly inputZeroPoint: number;
  readonly isa: IsaName | 'reference';
}

/** The kernels a quantized model needs, behind one interface. */
export interface Backend {
  readonly name: BackendName;
  /** The ISA level new packs use ('reference' for the TS backend); packed weights record theirs. */
  readonly isa: IsaName | 'reference';
  /** The backend that makes this one's packs, when another does (a tracing wrapper packs natively): pack caches key on it. */
  readonly packer?: Backend;
  /** Packs weights and epilogue constants of a quantized GEMM (1x1 conv, linear). */
  packQGemm(spec: QGemmSpec, options?: { isa?: IsaName }): PackedQGemm;
  /** c[i*ldc + j] = requantize(sum_k a[i*lda + k] * w[j][k]) for i < m, j < n. */
  qgemm(packed: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number): void;
  /** Packs a quantized conv2d (any stride, padding, dilation, groups). */
  packQConv2d(spec: QConv2dSpec, options?: { isa?: IsaName }): PackedQConv2d;
  /** y (NHWC [n][oh][ow][cout]) = quantized conv of x (NHWC [n][h][w][cin]). */
  qconv2d(p: PackedQConv2d, x: Uint8Array, n: number, h: number, w: number, y: Uint8Array): void;
  /** quint8 quantization of float32 values (torch.quantize_per_tensor). */
  quantize(x: Float32Array, y: Uint8Array, scale: number, zeroPoint: number): void;
  /** float32 values of quint8 ones (Tensor.dequantize()). */
  dequantize(x: Uint8Array, y: Float32Array, scale: number, zeroPoint: number): void;
  /** Quantized add / add_relu of two tensors of equal length. */
  qadd(a: Uint8Array, b: Uint8Array, y: Uint8Array, p: QAddParams): void;
  /** Mean over H and W of NHWC [n][hw][c] into [n][c], keeping the qparams. */
  qmeanHW(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, scale: number, zeroPoint: number): void;
  /** adaptive_avg_pool2d to 1x1 (PyTorch's integer-sum formula), NHWC [n][hw][c] into [n][c]. */
  qadaptiveAvgPool(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, inScale: number, inZeroPoint: number, outScale: number, outZeroPoint: number): void;
  /** Max pooling (k x k, stride, symmetric padding) over NHWC quint8. */
  qmaxpool2d(x: Uint8Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number, y: Uint8Array): void;
}

/** Validates a QConv2dSpec (geometry and numerics). */
export function validateQConv2dSpec(spec: QConv2dSpec): void {
  if (typeof spec !== 'object' || spec === null) throw invalidType('spec', 'an object', spec);
  const g = spec.geometry;
  if (typeof g !== 'object' || g === null) throw invalidType('spec.geometry', 'an object', g);
  for (const k of ['inChannels', 'outChannels', 'kernelH', 'kernelW', 'strideH', 'strideW', 'dilationH', 'dilationW', 'groups'] as const)
    checkInt(`spec.geometry.${k}`, g[k], 1, 1 << 20);
  checkInt('spec.geometry.padH', g.padH, 0, 1 << 20);
  checkInt('spec.geometry.padW', g.padW, 0, 1 << 20);
  if (g.inChannels % g.groups || g.outChannels % g.groups)
    throw invalidRange('spec.geometry.groups', `a divisor of inChannels (${g.inChannels}) and outChannels (${g.outChannels})`, g.groups);
  const k = (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  validateQGemmSpec({ ...spec, k, n: g.outChannels });
}

/** Validates conv buffers; returns [oh, ow]. */
export function validateQConv2dCall(p: PackedQConv2d, x: Uint8Array, n: number, h: number, w: number, y: Uint8Array): [number, number] {
  const g = p.geometry;
  checkInt('n', n, 0, 1 << 24);
  checkInt('h', h, 1, 1 << 20);
  checkInt('w', w, 1, 1 << 20);
  const oh = Math.floor((h + 2 * g.padH - g.dilationH * (g.kernelH - 1) - 1) / g.strideH) + 1;
  const ow = Math.floor((w + 2 * g.padW - g.dilationW * (g.kernelW - 1) - 1) / g.strideW) + 1;
  if (oh < 1 || ow < 1) throw invalidRange('h, w', `an input of at least the kernel's extent`, `${h}x${w}`);
  if (!(x instanceof Uint8Array)) throw invalidType('x', 'a Uint8Array', x);
  if (!(y instanceof Uint8Array)) throw invalidType('y', 'a Uint8Array', y);
  if (x.length !== n * h * w * g.inChannels) throw invalidRange('x', `length n*h*w*inChannels = ${n * h * w * g.inChannels}`, x);
  if (y.length !== n * oh * ow * g.outChannels) throw invalidRange('y', `length n*oh*ow*outChannels = ${n * oh * ow * g.outChannels}`, y);
  return [oh, ow];
}

/** Validates quantize/dequantize arguments. */
export function validateQuantizeCall(x: ArrayBufferView, y: ArrayBufferView, scale: number, zeroPoint: number): void {
  checkScale('scale', scale);
  checkInt('zeroPoint', zeroPoint, 0, 255);
  if ((x as Uint8Array).length !== (y as Uint8Array).length) throw invalidRange('y', `length ${(x as Uint8Array).length} (as x)`, y);
}

/** Validates qadd arguments. */
export function validateQAddCall(a: Uint8Array, b: Uint8Array, y: Uint8Array, p: QAddParams): void {
  for (const [n, v] of [['a', a], ['b', b], ['y', y]] as const) if (!(v instanceof Uint8Array)) throw invalidType(n, 'a Uint8Array', v);
  if (a.length !== y.length || b.length !== y.length) throw invalidRange('a, b, y', 'equal lengths', `${a.length}, ${b.length}, ${y.length}`);
  checkScale('p.aScale', p.aScale);
  checkScale('p.bScale', p.bScale);
  checkScale('p.outScale', p.outScale);
  checkInt('p.aZeroPoint', p.aZeroPoint, 0, 255);
  checkInt('p.bZeroPoint', p.bZeroPoint, 0, 255);
  checkInt('p.outZeroPoint', p.outZeroPoint, 0, 255);
}

/** Validates a QGemmSpec; throws TypeError/RangeError naming the bad field. */
export function validateQGemmSpec(spec: QGemmSpec): void {
  if (typeof spec !== 'object' || spec === null) throw invalidType('spec', 'an object', spec);
  const k = checkInt('spec.k', spec.k, 1, 1 << 24);
  const n = checkInt('spec.n', spec.n, 1, 1 << 24);
  if (!(spec.weight instanceof Int8Array)) throw invalidType('spec.weight', 'an Int8Array', spec.weight);
  if (spec.weight.length !== n * k) throw invalidRange('spec.weight', `length n*k = ${n * k}`, spec.weight);
  if (!(spec.weightScale instanceof Float32Array)) throw invalidType('spec.weightScale', 'a Float32Array', spec.weightScale);
  if (spec.weightScale.length !== 1 && spec.weightScale.length !== n)
    throw invalidRange('spec.weightScale', `length 1 or n = ${n}`, spec.weightScale);
  // The element's name is built only for an error: a string per channel was most of what
  // compiling a model allocated.
  for (let j = 0; j < spec.weightScale.length; j++) {
    const v = spec.weightScale[j];
    if (!(v > 0) || v === Infinity) checkScale(`spec.weightScale[${j}]`, v);
  }
  if (spec.bias !== null) {
    if (!(spec.bias instanceof Float32Array)) throw invalidType('spec.bias', 'a Float32Array or null', spec.bias);
    if (spec.bias.length !== n) throw invalidRange('spec.bias', `length n = ${n}`, spec.bias);
    for (let j = 0; j < n; j++)
      if (!Number.isFinite(spec.bias[j])) throw invalidRange(`spec.bias[${j}]`, 'a finite number', spec.bias[j]);
  }
  if (spec.onnxBias !== undefined) {
    if (!(spec.onnxBias instanceof Int32Array)) throw invalidType('spec.onnxBias', 'an Int32Array', spec.onnxBias);
    if (spec.onnxBias.length !== n) throw invalidRange('spec.onnxBias', `length n = ${n}`, spec.onnxBias);
    if (spec.bias !== null) throw invalidRange('spec.bias', 'null when spec.onnxBias is given', spec.bias);
  }
  checkScale('spec.inputScale', spec.inputScale);
  checkScale('spec.outputScale', spec.outputScale);
  checkInt('spec.inputZeroPoint', spec.inputZeroPoint, 0, 255);
  checkInt('spec.outputZeroPoint', spec.outputZeroPoint, 0, 255);
  const lo = checkInt('spec.outMin', spec.outMin, 0, 255);
  checkInt('spec.outMax', spec.outMax, lo, 255);
}

/** Validates the buffers of a qgemm call against the packed shape; returns [lda, ldc]. */
export function validateQGemmCall(
  p: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number,
): [number, number] {
  checkInt('m', m, 0, 1 << 30);
  const la = lda === undefined ? p.k : checkInt('lda', lda, p.k, 1 << 30);
  const lc = ldc === undefined ? p.n : checkInt('ldc', ldc, p.n, 1 << 30);
  if (!(a instanceof Uint8Array)) throw invalidType('a', 'a Uint8Array', a);
  if (!(c instanceof Uint8Array)) throw invalidType('c', 'a Uint8Array', c);
  if (m > 0 && a.length < (m - 1) * la + p.k) throw invalidRange('a', `length >= ${(m - 1) * la + p.k} (m=${m}, lda=${la}, k=${p.k})`, a);
  if (m > 0 && c.length < (m - 1) * lc + p.n) throw invalidRange('c', `length >= ${(m - 1) * lc + p.n} (m=${m}, ldc=${lc}, n=${p.n})`, c);
  return [la, lc];
}
