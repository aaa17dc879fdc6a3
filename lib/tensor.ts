// Float32 tensors with PyTorch's logical shape (NCHW for images) and a memory format: 4-D
// activations inside models are channels_last (NHWC in memory), like PyTorch's
// torch.channels_last, because every native kernel works on NHWC.

import { getFloatKernels } from './kernels/float-select';

export type MemoryFormat = 'contiguous' | 'channels_last';


/**
 * A float32 buffer for results that are written entirely: uninitialized memory (no zero fill)
 * and 64-byte aligned, which the SIMD kernels prefer.
 */
export function outputBuffer(n: number): Float32Array {
  // Most recently freed first: its lines are the likeliest still in cache.
  for (let i = free.length - 1; i >= 0; i--) {
    const b = free[i];
    if (b.capacity < n || b.capacity > n * MAX_SLACK) continue;
    free.splice(i, 1);
    pooledBytes -= b.capacity * 4;
    if (b.view.length !== n) {
      b.view = new Float32Array(b.buffer, b.byteOffset, n);
      blockOf.set(b.view, b);
    }
    b.pooled = false;
    return b.view;
  }
  const bytes = Buffer.allocUnsafeSlow(n * 4 + 64);
  const skew = (64 - (bytes.byteOffset % 64)) % 64;
  const view = new Float32Array(bytes.buffer, bytes.byteOffset + skew, n);
  blockOf.set(view, { buffer: bytes.buffer, byteOffset: view.byteOffset, capacity: n, view, pooled: false });
  return view;
}

// Output buffers that containers know to be dead (see recycleBuffer). Eager mode cannot free a
// layer's output when the next layer is done with it (the GC does, much later), and a fresh
// multi-megabyte buffer is slow to write (page faults, cache misses): a 56x56 1x1 conv took 2-5x
// its compute. Reusing dead buffers brings the module path close to the kernels' own speed.
// A pooled block serves any request from its capacity down to 1/MAX_SLACK of it: pooling by
// exact size held 280 MB for a MobileNetV2 forward at batch 16, so the 256 MB cap turned the
// 14x14 activations away and they page-faulted in every forward (its fp32 forward 5-10% slower).
interface Block {
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  /** Floats the block holds. */
  readonly capacity: number;
  /** The view last handed out; an older view of the block is stale and never recycled. */
  view: Float32Array;
  pooled: boolean;
}
const blockOf = new WeakMap<Float32Array, Block>();
/** Pooled blocks, least recently freed first. */
const free: Block[] = [];
let pooledBytes = 0;
const MAX_SLACK = 2;
const MAX_POOLED = 64;
const MAX_POOLED_BYTES = 256 * 2 ** 20;

/**
 * Hands a dead tensor's buffer back to outputBuffer for reuse. Only for buffers no one can reach
 * any more (Sequential calls it on a child's input once the next child has consumed it and no
 * hook could have kept it); buffers not made by outputBuffer are ignored.
 */
export function recycleBuffer(t: Tensor): void {
  const b = blockOf.get(t.data);
  if (!b || b.pooled || b.view !== t.data || b.capacity * 4 > MAX_POOLED_BYTES) return;
  // Over the caps, the least recently freed blocks go (to the GC): the hot ones stay.
  while (free.length >= MAX_POOLED || pooledBytes + b.capacity * 4 > MAX_POOLED_BYTES) {
    const old = free.shift()!;
    old.pooled = false;
    pooledBytes -= old.capacity * 4;
  }
  b.pooled = true;
  free.push(b);
  pooledBytes += b.capacity * 4;
}

/** A float32 tensor: data, logical shape (PyTorch order) and memory format. */
export class Tensor {
  constructor(
    readonly data: Float32Array,
    readonly shape: readonly number[],
    readonly memoryFormat: MemoryFormat = 'contiguous',
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`Invalid tensor shape [${shape.join(', ')}]`);
    if (data.length !== n) throw new RangeError(`Tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
    if (memoryFormat === 'channels_last' && shape.length !== 4) throw new RangeError('channels_last needs a 4-D tensor');
  }

  /** A tensor of zeros. */
  static zeros(shape: readonly number[], memoryFormat: MemoryFormat = 'contiguous'): Tensor {
    return new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, memoryFormat);
  }

  /** A tensor from nested-free values and a shape. */
  static from(values: ArrayLike<number>, shape: readonly number[]): Tensor {
    return new Tensor(Float32Array.from(values), shape);
  }

  /** Number of elements. */
  get numel(): number {
    return this.data.length;
  }

  /** Number of dimensions. */
  get dim(): number {
    return this.shape.length;
  }

  /** The same values in channels_last (NHWC) memory order; returns this when already so. */
  toChannelsLast(): Tensor {
    if (this.memoryFormat === 'channels_last') return this;
    if (this.shape.length !== 4) throw new RangeError(`toChannelsLast needs a 4-D tensor, got [${this.shape.join(', ')}]`);
    const [n, c, h, w] = this.shape;
    const out = outputBuffer(this.data.length);
    getFloatKernels().toChannelsLast(this.data, n, c, h * w, out);
    return new Tensor(out, this.shape, 'channels_last');
  }

  /** The same values in contiguous (row-major in logical order) memory. */
  contiguous(): Tensor {
    if (this.memoryFormat === 'contiguous') return this;
    const [n, c, h, w] = this.shape;
    const out = new Float32Array(this.data.length);
    const src = this.data, hw = h * w;
    for (let b = 0; b < n; b++)
      for (let p = 0; p < hw; p++) {
        const so = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) out[(b * c + ch) * hw + p] = src[so + ch];
      }
    return new Tensor(out, this.shape, 'contiguous');
  }

  /** mean over dims [2, 3] of a 4-D tensor (x.mean([2, 3]) in the tutorial), giving [N, C]. */
  mean(dims: readonly number[], keepdim = false): Tensor {
    if (this.shape.length !== 4 || dims.length !== 2 || dims[0] !== 2 || dims[1] !== 3)
      throw new RangeError(`mean supports dims [2, 3] of a 4-D tensor, got dims [${dims.join(', ')}] of [${this.shape.join(', ')}]`);
    const [n, c, h, w] = this.shape;
    const out = new Float32Array(n * c);
    getFloatKernels().meanHW(this.toChannelsLast().data, n, h * w, c, out);
    return new Tensor(out, keepdim ? [n, c, 1, 1] : [n, c]);
  }

  /** flatten(startDim) as torch.flatten: merges dims startDim.. into one (contiguous order). */
  flatten(startDim = 1): Tensor {
    const t = this.contiguous();
    const head = this.shape.slice(0, startDim);
    const tail = this.shape.slice(startDim).reduce((a, b) => a * b, 1);
    return new Tensor(t.data, [...head, tail]);
  }

  /** The same data viewed with another shape of the same element count (contiguous only). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.contiguous().data, shape);
  }

  /** Element-wise copy. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape, this.memoryFormat);
  }

  /** Short description, e.g. Tensor([2, 10], float32). */
  toString(): string {
    return `Tensor([${this.shape.join(', ')}], float32${this.memoryFormat === 'channels_last' ? ', channels_last' : ''})`;
  }
}
