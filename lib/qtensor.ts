// Quantized tensors: quint8 values, per-tensor affine qparams (real = scale * (q - zero_point)),
// PyTorch's logical shape and, for 4-D, channels_last memory (NHWC) as quantized convs produce.
import type { MemoryFormat } from './tensor';
import { getBackend } from './kernels';
import { defaultBackend } from './kernels/default';

let u8Alloc: ((n: number) => Uint8Array) | null = null;

/** A quint8 buffer for a kernel's output (every byte is written by the kernel). */
export function u8Output(n: number): Uint8Array {
  return u8Alloc ? u8Alloc(n) : new Uint8Array(n);
}

/**
 * Runs fn with kernel outputs allocated by `alloc` (plan tracing hands out views of one large
 * untouched buffer: the traced kernels do not run, so no output page is ever written).
 */
export function withU8Allocator<T>(alloc: (n: number) => Uint8Array, fn: () => T): T {
  const before = u8Alloc;
  u8Alloc = alloc;
  try {
    return fn();
  } finally {
    u8Alloc = before;
  }
}

/** A per-tensor affine quint8 tensor. */
export class QTensor {
  constructor(
    readonly data: Uint8Array,
    readonly shape: readonly number[],
    readonly scale: number,
    readonly zeroPoint: number,
    readonly memoryFormat: MemoryFormat = shape.length === 4 ? 'channels_last' : 'contiguous',
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new RangeError(`QTensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
  }
  /** Number of elements. */
  get numel(): number {
    return this.data.length;
  }
  /** Same values viewed with another shape (flatten keeps qparams, as in PyTorch). */
  reshape(shape: readonly number[]): QTensor {
    // channels_last memory is in logical (NCHW) order only when C or H*W is 1; else permute first, as PyTorch's reshape.
    if (this.memoryFormat === 'channels_last' && this.shape[1] !== 1 && this.shape[2] * this.shape[3] !== 1) return this.contiguous().reshape(shape);
    return new QTensor(this.data, shape, this.scale, this.zeroPoint, shape.length === 4 ? this.memoryFormat : 'contiguous');
  }
  /** The same values in contiguous (NCHW for 4-D) memory. */
  contiguous(): QTensor {
    if (this.memoryFormat === 'contiguous') return this;
    if (this.shape[1] === 1 || this.shape[2] * this.shape[3] === 1) return new QTensor(this.data, this.shape, this.scale, this.zeroPoint, 'contiguous');
    const [n, c, h, w] = this.shape;
    const out = new Uint8Array(this.data.length), src = this.data, hw = h * w;
    for (let b = 0; b < n; b++)
      for (let p = 0; p < hw; p++) {
        const so = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) out[(b * c + ch) * hw + p] = src[so + ch];
      }
    return new QTensor(out, this.shape, this.scale, this.zeroPoint, 'contiguous');
  }
  /** mean over dims [2, 3] (the tutorial's x.mean([2, 3])), keeping the qparams as PyTorch does. */
  mean(dims: readonly number[], keepdim = false): QTensor {
    if (this.shape.length !== 4 || dims.length !== 2 || dims[0] !== 2 || dims[1] !== 3)
      throw new RangeError(`QTensor.mean supports dims [2, 3] of a 4-D tensor, got [${dims.join(', ')}]`);
    if (this.memoryFormat !== 'channels_last') throw new RangeError('QTensor.mean expects channels_last data');
    const [n, c, h, w] = this.shape;
    const y = u8Output(n * c);
    getBackend(defaultBackend()).qmeanHW(this.data, n, h * w, c, y, this.scale, this.zeroPoint);
    return new QTensor(y, keepdim ? [n, c, 1, 1] : [n, c], this.scale, this.zeroPoint, keepdim ? 'channels_last' : 'contiguous');
  }
  /** flatten(startDim) keeping the qparams (supported when it is a pure reshape). */
  flatten(startDim = 1): QTensor {
    const tail = this.shape.slice(startDim).reduce((a, b) => a * b, 1);
    return this.reshape([...this.shape.slice(0, startDim), tail]);
  }
  /** Float values (scale * (q - zero_point)) as a Tensor. */
  dequantize(): import('./tensor').Tensor {
    // Lazy import: tensor.ts does not depend on quantized code.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Tensor } = require('./tensor') as typeof import('./tensor');
    const y = new Float32Array(this.numel);
    getBackend(defaultBackend()).dequantize(this.data, y, this.scale, this.zeroPoint);
    return new Tensor(y, this.shape, this.memoryFormat);
  }
  toString(): string {
    return `QTensor([${this.shape.join(', ')}], quint8, scale=${this.scale}, zero_point=${this.zeroPoint})`;
  }
}
