// Quantized modules (torch.ao.nn.quantized / .intrinsic.quantized): what convert() produces.
// They hold int8 weights (quantized once), float bias and output qparams, print like PyTorch's,
// and run on a kernel backend (native or reference) through packed weights made once.
import { pyFloatRepr } from '../quantization/observer';
import { DEEP_COPY, Module, pyTuple } from './module';
import { Conv2dGeometry, convOutSize } from '../kernels/float';
import type { Backend, PackedQConv2d, PackedQGemm } from '../kernels/backend';
import { getBackend } from '../kernels';
import { defaultBackend } from '../kernels/default';
import { QTensor, u8Output } from '../qtensor';
import { Tensor } from '../tensor';
import { roundHalfEven } from '../quantization/qparams';

/** The backend a quantized module runs on: its own override or the process default. */
function backendOf(m: { backendName?: 'native' | 'reference' }): Backend {
  return getBackend(m.backendName ?? defaultBackend());
}

function expectQ(name: string, x: unknown): QTensor {
  if (!(x instanceof QTensor)) throw new TypeError(`${name} expects a quantized tensor (QTensor); is a Quantize (QuantStub) missing before it?`);
  return x;
}

/** Packed weights cached per backend, ISA level and input qparams: packed once, again only on change. */
class PackCache<P extends { isa: string }> {
  private entry?: { backend: Backend; scale: number; zeroPoint: number; p: P };
  /** deepCopy: a copy starts with an empty cache (packs are cheap to redo, handles are not copied). */
  [DEEP_COPY](): PackCache<P> {
    return new PackCache<P>();
  }
  /**
   * The cached pack for these keys, or a fresh one from make(). Keyed on the backend that packs
   * (compiling a plan traces through a wrapper of the native backend: it reuses the native pack
   * instead of packing again, and the cache never holds the wrapper and its trace).
   */
  get(backend: Backend, scale: number, zeroPoint: number, make: () => P): P {
    const packer = backend.packer ?? backend;
    const c = this.entry;
    if (c && c.backend === packer && c.p.isa === packer.isa && c.scale === scale && c.zeroPoint === zeroPoint) return c.p;
    const p = make();
    this.entry = { backend: packer, scale, zeroPoint, p };
    return p;
  }
}

/** Output quantization parameters of an activation (quint8, per tensor). */
export interface ActQParams {
  scale: number;
  zeroPoint: number;
}

/** int8 weights with their quantization parameters (symmetric: zero points are 0 for qint8). */
export interface QWeight {
  /** int8 values in PyTorch's layout (OIHW for conv, [out][in] for linear). */
  data: Int8Array;
  shape: number[];
  qscheme: 'per_tensor_affine' | 'per_channel_affine';
  scale: Float32Array;
  zeroPoint: Int32Array;
}

/** Base of modules that produce a quantized tensor with known output qparams. */
export abstract class QuantizedModule extends Module {
  constructor(readonly scale: number, readonly zeroPoint: number) {
    super();
  }
}

/** nnq.Quantize: float -> quint8 with fixed qparams (what QuantStub becomes). */
export class Quantize extends QuantizedModule {
  backendName?: 'native' | 'reference';
  /**
   * ONNX QuantizeLinear semantics: saturate(rne(x / scale) + zero_point), a true division (PyTorch
   * multiplies by 1/scale, which can differ by one step). Runs in TS: not compiled into native plans.
   */
  onnxDivide = false;
  forward(input: unknown): QTensor {
    if (!(input instanceof Tensor)) throw new TypeError('Quantize expects a float Tensor');
    const x = input.shape.length === 4 ? input.toChannelsLast() : input.contiguous();
    const y = u8Output(x.numel);
    if (this.onnxDivide) {
      const s = Math.fround(this.scale), z = this.zeroPoint, d = x.data;
      for (let i = 0; i < d.length; i++) {
        // ORT clamps the quotient to [-z, 255 - z] before rounding: same result for finite values.
        const v = Math.fround(d[i] / s);
        const q = v > 512 ? 255 : v < -512 ? 0 : roundHalfEven(v) + z;
        y[i] = q < 0 ? 0 : q > 255 ? 255 : q;
      }
      return new QTensor(y, x.shape, this.scale, this.zeroPoint, x.memoryFormat);
    }
    backendOf(this).quantize(x.data, y, this.scale, this.zeroPoint);
    return new QTensor(y, x.shape, this.scale, this.zeroPoint, x.memoryFormat);
  }
  typeName(): string {
    return 'Quantize';
  }
  extraRepr(): string {
    return `scale=tensor([${formatTensorScalar(this.scale)}]), zero_point=tensor([${this.zeroPoint}]), dtype=torch.quint8`;
  }
}

/** torch prints a 1-element float tensor with 4 decimals ('0.0250') or scientific when tiny. */
function formatTensorScalar(v: number): string {
  if (v !== 0 && (Math.abs(v) < 1e-4 || Math.abs(v) >= 1e8)) return v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2');
  return v.toFixed(4);
}

/** nnq.DeQuantize: quint8 -> float (what DeQuantStub becomes). */
export class DeQuantize extends Module {
  backendName?: 'native' | 'reference';
  forward(input: unknown): Tensor {
    const x = expectQ('DeQuantize', input);
    const y = new Float32Array(x.numel);
    backendOf(this).dequantize(x.data, y, x.scale, x.zeroPoint);
    return new Tensor(y, x.shape, x.memoryFormat);
  }
  typeName(): string {
    return 'DeQuantize';
  }
}

/** nnq.Conv2d / nniq.ConvReLU2d: int8 conv with requantized quint8 output. */
export class QuantizedConv2d extends QuantizedModule {
  constructor(
    readonly geometry: Conv2dGeometry,
    readonly weight: QWeight,
    readonly bias: Float32Array | null,
    scale: number,
    zeroPoint: number,
    readonly relu: boolean,
    /** Upper bound of a fused clamp (ReLU6: 6), in float; the quantized output is clamped to q(clampMax). */
    readonly clampMax?: number,
  ) {
    super(scale, zeroPoint);
  }
  backendName?: 'native' | 'reference';
  /** ONNX's int32 bias (an imported QLinearConv), used instead of `bias`; see QGemmSpec.onnxBias. */
  onnxBias?: Int32Array;
  private packed = new PackCache<PackedQConv2d>();

  /** The quantized upper clamp: 255, or zero_point + rne(clampMax * (1/scale)) for a fused ReLU6. */
  outMax(): number {
    if (this.clampMax === undefined) return 255;
    const q = this.zeroPoint + roundHalfEven(Math.fround(this.clampMax * Math.fround(1 / this.scale)));
    return Math.max(this.relu ? this.zeroPoint : 0, Math.min(255, q));
  }

  /** Packs the weights for a backend and input qparams (once; again only if they change). */
  pack(backend: Backend, inputScale: number, inputZeroPoint: number): PackedQConv2d {
    return this.packed.get(backend, inputScale, inputZeroPoint, () => backend.packQConv2d({
      geometry: this.geometry, weight: this.weight.data, weightScale: this.weight.scale, bias: this.onnxBias ? null : this.bias,
      ...(this.onnxBias ? { onnxBias: this.onnxBias } : {}),
      inputScale, inputZeroPoint, outputScale: this.scale, outputZeroPoint: this.zeroPoint,
      outMin: this.relu ? this.zeroPoint : 0, outMax: this.outMax(),
    }));
  }

  forward(input: unknown): QTensor {
    const x = expectQ(this.typeName(), input);
    if (x.shape.length !== 4) throw new RangeError(`${this.typeName()} expects a 4-D input, got [${x.shape.join(', ')}]`);
    const [n, c, h, w] = x.shape;
    const g = this.geometry;
    if (c !== g.inChannels) throw new RangeError(`${this.typeName()} expects ${g.inChannels} input channels, got ${c}`);
    const backend = backendOf(this);
    const p = this.pack(backend, x.scale, x.zeroPoint);
    const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH), ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
    const y = u8Output(n * oh * ow * g.outChannels);
    backend.qconv2d(p, x.data, n, h, w, y);
    return new QTensor(y, [n, g.outChannels, oh, ow], this.scale, this.zeroPoint, 'channels_last');
  }
  typeName(): string {
    if (this.clampMax !== undefined) return 'QuantizedConvReLU62d';
    return this.relu ? 'QuantizedConvReLU2d' : 'QuantizedConv2d';
  }
  extraRepr(): string {
    const g = this.geometry;
    let s = `${g.inChannels}, ${g.outChannels}, kernel_size=${pyTuple([g.kernelH, g.kernelW])}, ` +
      `stride=${pyTuple([g.strideH, g.strideW])}, scale=${pyFloatRepr(this.scale)}, zero_point=${this.zeroPoint}`;
    if (g.padH || g.padW) s += `, padding=${pyTuple([g.padH, g.padW])}`;
    if (g.dilationH !== 1 || g.dilationW !== 1) s += `, dilation=${pyTuple([g.dilationH, g.dilationW])}`;
    if (g.groups !== 1) s += `, groups=${g.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

/** nnq.Linear / nniq.LinearReLU. */
export class QuantizedLinear extends QuantizedModule {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly weight: QWeight,
    readonly bias: Float32Array | null,
    scale: number,
    zeroPoint: number,
    readonly relu: boolean,
  ) {
    super(scale, zeroPoint);
  }
  backendName?: 'native' | 'reference';
  /** ONNX's int32 bias (an imported QGemm / QLinearMatMul), used instead of `bias`. */
  onnxBias?: Int32Array;
  private packed = new PackCache<PackedQGemm>();

  /** Packs the weights for a backend and input qparams (once; again only if they change). */
  pack(backend: Backend, inputScale: number, inputZeroPoint: number): PackedQGemm {
    return this.packed.get(backend, inputScale, inputZeroPoint, () => backend.packQGemm({
      k: this.inFeatures, n: this.outFeatures, weight: this.weight.data, weightScale: this.weight.scale, bias: this.onnxBias ? null : this.bias,
      ...(this.onnxBias ? { onnxBias: this.onnxBias } : {}),
      inputScale, inputZeroPoint, outputScale: this.scale, outputZeroPoint: this.zeroPoint,
      outMin: this.relu ? this.zeroPoint : 0, outMax: 255,
    }));
  }

  forward(input: unknown): QTensor {
    const x = expectQ(this.typeName(), input);
    const k = x.shape[x.shape.length - 1];
    if (k !== this.inFeatures || x.memoryFormat !== 'contiguous')
      throw new RangeError(`${this.typeName()} expects [N, ${this.inFeatures}] input, got [${x.shape.join(', ')}]`);
    const m = x.numel / k;
    const backend = backendOf(this);
    const p = this.pack(backend, x.scale, x.zeroPoint);
    const y = u8Output(m * this.outFeatures);
    backend.qgemm(p, m, x.data, y);
    return new QTensor(y, [...x.shape.slice(0, -1), this.outFeatures], this.scale, this.zeroPoint, 'contiguous');
  }
  typeName(): string {
    return this.relu ? 'QuantizedLinearReLU' : 'QuantizedLinear';
  }
  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, scale=${pyFloatRepr(this.scale)}, ` +
      `zero_point=${this.zeroPoint}, qscheme=torch.${this.weight.qscheme}`;
  }
}

/** nnq.QFunctional: quantized add / add_relu / cat / mul with fixed output qparams. */
export class QFunctional extends QuantizedModule {
  constructor(scale: number, zeroPoint: number) {
    super(scale, zeroPoint);
    this.addModule('activation_post_process', new IdentityModule());
  }
  backendName?: 'native' | 'reference';
  forward(): never {
    throw new Error('QFunctional is not meant to be called: use add or add_relu');
  }
  private binary(op: string, a: unknown, b: unknown, relu: boolean): QTensor {
    const x = expectQ(`QFunctional.${op}`, a), y = expectQ(`QFunctional.${op}`, b);
    if (x.shape.join() !== y.shape.join() || x.memoryFormat !== y.memoryFormat)
      throw new RangeError(`QFunctional.${op}: shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}] differ`);
    const out = u8Output(x.numel);
    backendOf(this).qadd(x.data, y.data, out, {
      aScale: x.scale, aZeroPoint: x.zeroPoint, bScale: y.scale, bZeroPoint: y.zeroPoint,
      outScale: this.scale, outZeroPoint: this.zeroPoint, relu,
    });
    return new QTensor(out, x.shape, this.scale, this.zeroPoint, x.memoryFormat);
  }
  /** Quantized x + y with this module's output qparams. */
  add(x: unknown, y: unknown): QTensor {
    return this.binary('add', x, y, false);
  }
  /** Quantized relu(x + y). */
  add_relu(x: unknown, y: unknown): QTensor {
    return this.binary('add_relu', x, y, true);
  }

  /**
   * Quantized x * y (torch 1.13 qmul_kernel): (a - za) * (b - zb) in int32, then
   * zp + rne(f32(c) * multiplier), multiplier = f32(sa * sb * f32(1 / s)) (the product in double). TS only.
   */
  mul(a: unknown, b: unknown, relu = false): QTensor {
    const x = expectQ('QFunctional.mul', a), y = expectQ('QFunctional.mul', b);
    if (x.shape.join() !== y.shape.join() || x.memoryFormat !== y.memoryFormat)
      throw new RangeError(`QFunctional.mul: shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}] differ`);
    const mult = Math.fround(x.scale * y.scale * Math.fround(1 / this.scale));
    const za = x.zeroPoint, zb = y.zeroPoint, z = this.zeroPoint, lo = relu ? z : 0;
    const out = u8Output(x.numel), ad = x.data, bd = y.data;
    for (let i = 0; i < out.length; i++) {
      const q = z + roundHalfEven(Math.fround((ad[i] - za) * (bd[i] - zb) * mult));
      out[i] = q < lo ? lo : q > 255 ? 255 : q;
    }
    return new QTensor(out, x.shape, this.scale, this.zeroPoint, x.memoryFormat);
  }

  /**
   * torch.ops.quantized.cat along channels of channels_last 4-D tensors (torch 1.13 qcat_nhwc):
   * inputs with the output's qparams are copied, others dequantized (fma(q, s, -zp * s) on
   * 64-channel blocks, (q - zp) * s on the rest) and quantized with 1 / scale. TS only.
   */
  cat(xs: unknown[], dim = 0): QTensor {
    const qs = xs.map((t) => expectQ('QFunctional.cat', t));
    if (qs.length === 0) throw new RangeError('QFunctional.cat needs at least one tensor');
    const d = dim < 0 ? dim + qs[0].shape.length : dim;
    if (qs.some((q) => q.shape.length !== 4 || q.memoryFormat !== 'channels_last') || d !== 1)
      throw new RangeError('QFunctional.cat supports the channel dim of 4-D channels_last tensors');
    const [n, , h, w] = qs[0].shape;
    if (qs.some((q) => q.shape[0] !== n || q.shape[2] !== h || q.shape[3] !== w)) throw new RangeError('QFunctional.cat: tensors must match except in the channel dim');
    const C = qs.reduce((s, q) => s + q.shape[1], 0);
    const out = u8Output(n * h * w * C);
    const f = Math.fround, inv = f(1 / f(this.scale)), z = this.zeroPoint;
    for (let p = 0; p < n * h * w; p++) {
      let off = 0;
      for (const q of qs) {
        const c = q.shape[1], src = q.data, base = p * c;
        if (f(q.scale) === f(this.scale) && q.zeroPoint === z) out.set(src.subarray(base, base + c), p * C + off);
        else {
          const s = f(q.scale), zi = q.zeroPoint, pre = f(-zi * s), vecEnd = c - (c % 64);
          for (let ch = 0; ch < c; ch++) {
            const v = src[base + ch];
            const x = ch < vecEnd ? f(v * s + pre) : f((v - zi) * s);
            const r = z + roundHalfEven(f(x * inv));
            out[p * C + off + ch] = r < 0 ? 0 : r > 255 ? 255 : r;
          }
        }
        off += c;
      }
    }
    return new QTensor(out, [n, C, h, w], this.scale, this.zeroPoint, 'channels_last');
  }
  typeName(): string {
    return 'QFunctional';
  }
  extraRepr(): string {
    return `scale=${pyFloatRepr(this.scale)}, zero_point=${this.zeroPoint}`;
  }
}

/** nnq.Dropout: identity at inference (prints as QuantizedDropout). */
export class QuantizedDropout extends Module {
  constructor(readonly p: number) {
    super();
  }
  forward(x: unknown): unknown {
    return x;
  }
  typeName(): string {
    return 'QuantizedDropout';
  }
  extraRepr(): string {
    return `p=${pyFloatRepr(this.p)}, inplace=False`;
  }
}

class IdentityModule extends Module {
  forward(x: unknown): unknown {
    return x;
  }
  typeName(): string {
    return 'Identity';
  }
}
