// Eager float forwards of a batch in chunks of samples. A batch of 16 224x224 images has
// activations of up to 77 MB (MobileNetV2's 112x112x96), so each layer's output went to DRAM and
// came back (one core's stores reach about 8 GB/s here); a chunk's activations stay in cache and
// reuse the same recycled buffers. Results are bit-identical: every float kernel computes a
// sample the same way whatever the batch (the same sums in the same order).
//
// Only for module trees known to treat each sample on its own: the classes registered below, all
// in eval mode, with no hook below the root (a hook or an observer would see chunks instead of
// the batch; a histogram observer's result depends on how the data is split).
import { getNumThreads } from '../kernels/native';
import { outputBuffer, recycleBuffer, Tensor } from '../tensor';
import { FloatFunctional } from './functional';
import { ConvReLU2d, ConvReLU62d, LinearReLU } from './intrinsic';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, ReLU6, Sequential } from './layers';
import { Module } from './module';
import { DeQuantStub, QuantStub } from './stubs';

// Exact classes (a subclass may override forward): those whose forward (in eval mode) computes
// each sample from that sample alone. FloatFunctional is here because only registered forwards
// call it, and they call add/add_relu (elementwise).
const sampleWise = new Set<Function>([
  Sequential, Conv2d, BatchNorm2d, ReLU, ReLU6, Linear, Dropout, Identity, MaxPool2d, AdaptiveAvgPool2d, Flatten,
  ConvReLU2d, ConvReLU62d, LinearReLU, FloatFunctional, QuantStub, DeQuantStub,
]);

/** Registers a module class whose eval-mode forward computes each sample on its own (model zoo blocks). */
export function registerSampleWise(cls: Function): void {
  sampleWise.add(cls);
}

// Input pixels a chunk has at least: small images run their batch at once (a batch of 50 28x28
// images fits in cache, and chunks of it only add per-call overhead: 38 -> 50-62 ms).
const MIN_CHUNK_PIXELS = 224 * 224;

/**
 * Samples per chunk for the current eager thread count and an input of `pixels` pixels a sample:
 * 1 on one thread, 2 per thread otherwise (one per thread would leave them little to share), and
 * at least MIN_CHUNK_PIXELS of input.
 */
export function chunkSamples(pixels: number, threads: number = getNumThreads()): number {
  return Math.max(threads <= 1 ? 1 : 2 * threads, Math.ceil(MIN_CHUNK_PIXELS / Math.max(1, pixels)));
}

/**
 * The chunk size to run root.forward(input) with, or 0 to run the batch at once: a 4-D float
 * input (N, C, H, W) with more samples than a chunk, and a tree of registered classes in eval mode without
 * hooks below the root (its own hooks still see the whole batch).
 */
export function forwardChunk(root: Module, input: unknown): number {
  if (!(input instanceof Tensor) || input.shape.length !== 4) return 0;
  const chunk = chunkSamples(input.shape[2] * input.shape[3]);
  if (input.shape[0] <= chunk) return 0;
  for (const m of root.modules()) {
    if (m.training || !sampleWise.has(m.constructor)) return 0;
    if (m !== root && m._forwardHooks.length > 0) return 0;
  }
  return chunk;
}

/** root's forward of input: forward(input) at once, or on chunks of samples when forwardChunk allows (outputs concatenated). */
export function chunkedForward(root: Module, input: unknown, forward: (x: unknown) => Tensor): Tensor {
  const chunk = forwardChunk(root, input);
  return chunk ? forwardInChunks(input as Tensor, chunk, forward) : forward(input);
}

/** Runs forward on chunks of `chunk` samples of x and concatenates the outputs (batch first). */
function forwardInChunks(x: Tensor, chunk: number, forward: (x: Tensor) => Tensor): Tensor {
  const n = x.shape[0], per = x.numel / n;
  let out: Float32Array | undefined;
  let outShape: readonly number[] = [];
  let format = x.memoryFormat;
  for (let s = 0; s < n; s += chunk) {
    const c = Math.min(chunk, n - s);
    // A view of the caller's tensor: never recycled (not made by outputBuffer), never written.
    const y = forward(new Tensor(x.data.subarray(s * per, (s + c) * per), [c, ...x.shape.slice(1)], x.memoryFormat));
    if (!(y instanceof Tensor) || y.shape[0] !== c) throw new Error(`a chunked forward must return a Tensor with the chunk's ${c} samples first`);
    const yPer = y.numel / c;
    if (!out) {
      out = outputBuffer(n * yPer);
      outShape = [n, ...y.shape.slice(1)];
      format = y.memoryFormat;
    } else if (yPer * n !== out.length) {
      throw new Error('chunks of one batch gave outputs of different shapes');
    }
    out.set(y.data, s * yPer);
    // Made inside this forward and copied out: dead, so the next chunk writes it again.
    if (y.data.buffer !== x.data.buffer) recycleBuffer(y);
  }
  return new Tensor(out!, outShape, format);
}
