// Quantized ops with ONNX Runtime's numerics where they differ from PyTorch's (imported int8 ONNX
// models): com.microsoft QLinearAdd and QLinearGlobalAveragePool as MLAS computes them. They run
// in TypeScript (module by module; not compiled into native plans).
import { pyFloatRepr } from '../quantization/observer';
import { roundHalfEven } from '../quantization/qparams';
import { QTensor } from '../qtensor';
import { QuantizedModule } from './quantized';

const fround = Math.fround;

function expectQ(name: string, x: unknown): QTensor {
  if (!(x instanceof QTensor)) throw new TypeError(`${name} expects a quantized tensor (QTensor)`);
  return x;
}

/** rne(v) + zp clamped to [lo, 255] (MLAS: clamp in float, round half to even, add the zero point). */
function requant(v: number, zp: number, lo: number): number {
  const q = v > 512 ? 255 : v < -512 ? 0 : roundHalfEven(v) + zp;
  return q < lo ? lo : q > 255 ? 255 : q;
}

/**
 * QLinearAdd (MLAS, qladd.cpp): c = rne((a - za) * (sa / sc) + (b - zb) * (sb / sc)) + zc, each
 * product and the sum in float32. add_relu clamps the result below at zc (QLinearAdd + Relu).
 */
export class OnnxQLinearAdd extends QuantizedModule {
  forward(): never {
    throw new Error('QLinearAdd is not meant to be called: use add or add_relu');
  }
  private binary(op: string, a: unknown, b: unknown, relu: boolean): QTensor {
    const x = expectQ(`QLinearAdd.${op}`, a), y = expectQ(`QLinearAdd.${op}`, b);
    if (x.shape.join() !== y.shape.join() || x.memoryFormat !== y.memoryFormat)
      throw new RangeError(`QLinearAdd.${op}: shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}] differ`);
    const rA = fround(fround(x.scale) / fround(this.scale)), rB = fround(fround(y.scale) / fround(this.scale));
    const za = x.zeroPoint, zb = y.zeroPoint, zc = this.zeroPoint, lo = relu ? zc : 0;
    const out = new Uint8Array(x.numel), ad = x.data, bd = y.data;
    for (let i = 0; i < out.length; i++) out[i] = requant(fround(fround(rA * (ad[i] - za)) + fround(rB * (bd[i] - zb))), zc, lo);
    return new QTensor(out, x.shape, this.scale, this.zeroPoint, x.memoryFormat);
  }
  add(x: unknown, y: unknown): QTensor {
    return this.binary('add', x, y, false);
  }
  add_relu(x: unknown, y: unknown): QTensor {
    return this.binary('add_relu', x, y, true);
  }
  typeName(): string {
    return 'QLinearAdd';
  }
  extraRepr(): string {
    return `scale=${pyFloatRepr(this.scale)}, zero_point=${this.zeroPoint}`;
  }
}

/**
 * QLinearGlobalAveragePool (MLAS, qlgavgpool.cpp): the int32 sum over H*W minus zx*H*W,
 * requantized with the float32 scale sx / (sy * H*W).
 */
export class OnnxQGlobalAveragePool extends QuantizedModule {
  forward(input: unknown): QTensor {
    const x = expectQ('QLinearGlobalAveragePool', input);
    if (x.shape.length !== 4 || x.memoryFormat !== 'channels_last') throw new RangeError('QLinearGlobalAveragePool expects a 4-D channels_last QTensor');
    const [n, c, h, w] = x.shape;
    const hw = h * w;
    const scale = fround(fround(x.scale) / fround(fround(this.scale) * hw));
    const y = new Uint8Array(n * c), d = x.data;
    const acc = new Int32Array(c);
    for (let b = 0; b < n; b++) {
      acc.fill(-x.zeroPoint * hw);
      for (let p = 0; p < hw; p++) {
        const o = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) acc[ch] += d[o + ch];
      }
      for (let ch = 0; ch < c; ch++) y[b * c + ch] = requant(fround(fround(acc[ch]) * scale), this.zeroPoint, 0);
    }
    return new QTensor(y, [n, c, 1, 1], this.scale, this.zeroPoint, 'channels_last');
  }
  typeName(): string {
    return 'QLinearGlobalAveragePool';
  }
  extraRepr(): string {
    return `scale=${pyFloatRepr(this.scale)}, zero_point=${this.zeroPoint}`;
  }
}
