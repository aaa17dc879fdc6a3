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

/**
 * QLinearConcat (onnxruntime qlinearconcat.cc): inputs with the output's qparams are copied, others
 * mapped through a 256-entry table: QuantizeLinear(f32((v - zx) * sx), sy, zy) (a true division).
 */
export class OnnxQLinearConcat extends QuantizedModule {
  forward(): never {
    throw new Error('QLinearConcat is not meant to be called: use cat');
  }
  cat(xs: unknown[], dim = 1): QTensor {
    const qs = xs.map((t) => expectQ('QLinearConcat', t));
    if (qs.length === 0) throw new RangeError('QLinearConcat needs at least one input');
    const rank = qs[0].shape.length;
    const d = dim < 0 ? dim + rank : dim;
    if (rank !== 4 || d !== 1 || qs.some((q) => q.memoryFormat !== 'channels_last' || q.shape.length !== 4))
      throw new RangeError('QLinearConcat supports the channel axis of 4-D tensors');
    const [n, , h, w] = qs[0].shape;
    if (qs.some((q) => q.shape[0] !== n || q.shape[2] !== h || q.shape[3] !== w)) throw new RangeError('QLinearConcat: inputs must match except on the axis');
    const C = qs.reduce((s, q) => s + q.shape[1], 0);
    const sy = fround(this.scale), zy = this.zeroPoint;
    const tables = qs.map((q) => {
      if (fround(q.scale) === sy && q.zeroPoint === zy) return null;
      const t = new Uint8Array(256), sx = fround(q.scale);
      for (let v = 0; v < 256; v++) t[v] = requant(fround(fround((v - q.zeroPoint) * sx) / sy), zy, 0);
      return t;
    });
    const out = new Uint8Array(n * h * w * C);
    for (let p = 0; p < n * h * w; p++) {
      let off = 0;
      qs.forEach((q, k) => {
        const c = q.shape[1], base = p * c, t = tables[k];
        if (!t) out.set(q.data.subarray(base, base + c), p * C + off);
        else for (let ch = 0; ch < c; ch++) out[p * C + off + ch] = t[q.data[base + ch]];
        off += c;
      });
    }
    return new QTensor(out, [n, C, h, w], this.scale, this.zeroPoint, 'channels_last');
  }
  typeName(): string {
    return 'QLinearConcat';
  }
  extraRepr(): string {
    return `scale=${pyFloatRepr(this.scale)}, zero_point=${this.zeroPoint}`;
  }
}
