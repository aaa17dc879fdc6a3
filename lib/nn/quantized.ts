// Quantized modules (torch.ao.nn.quantized / .intrinsic.quantized): what convert() produces.
// They hold int8 weights (quantized once), float bias and output qparams, print like PyTorch's,
// and run on a kernel backend (native or reference) through packed weights made once.
import { pyFloatRepr } from '../quantization/observer';
import { Module, pyTuple } from './module';
import type { Conv2dGeometry } from '../kernels/float';

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
  forward(x: unknown): unknown {
    return x;
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
  forward(x: unknown): unknown {
    return x;
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
  ) {
    super(scale, zeroPoint);
  }
  forward(x: unknown): unknown {
    return x;
  }
  typeName(): string {
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
  forward(x: unknown): unknown {
    return x;
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
  forward(): never {
    throw new Error('QFunctional is not meant to be called: use add, add_relu, mul or cat');
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
