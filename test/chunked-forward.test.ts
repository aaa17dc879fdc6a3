// Eval-mode float forwards of the zoo models run a batch in chunks of samples (lib/nn/chunked):
// bit-identical to the whole batch, and never where a hook, an observer or training mode would
// see the difference.
import * as api from '../lib';
import { chunkSamples, forwardChunk } from '../lib/nn/chunked';
import { Module } from '../lib/nn/module';
import { Tensor } from '../lib/tensor';
import { smallInput, smallModel } from './helpers/fixtures';

/** Batch sizes the module's forward sees during fn (patched forward: no hook, which would stop the chunking). */
function batchesSeen(m: Module, fn: () => void): number[] {
  const seen: number[] = [];
  const forward = m.forward.bind(m);
  m.forward = (...a: unknown[]) => {
    seen.push((a[0] as Tensor).shape[0]);
    return forward(...a);
  };
  try {
    fn();
  } finally {
    m.forward = forward;
  }
  return seen;
}

/** The model's output on x with chunking off (a no-op hook on a child turns it off). */
function unchunked(m: Module, x: Tensor): number[] {
  const child = [...m.children()][0];
  const remove = child.registerForwardHook(() => undefined);
  try {
    expect(forwardChunk(m, x)).toBe(0);
    return Array.from((m.call(x) as Tensor).data);
  } finally {
    remove();
  }
}

afterEach(() => api.setNumThreads(0));

/** n images of s x s pixels. */
const images = (n: number, s: number) => new Tensor(new Float32Array(n * 3 * s * s).map((_, i) => Math.sin(i * 0.37)), [n, 3, s, s]);

test.each([
  [1, 224, 3, [1, 1, 1]],
  [2, 112, 9, [4, 4, 1]],
])('with %i thread(s), %i-pixel-square images in a batch of %i: ResNet-18 and MobileNetV2 run in chunks, bit-identical to the whole batch', (threads, size, n, chunks) => {
  api.setNumThreads(threads);
  // 1 sample a chunk on one thread, 2 per thread otherwise, at least one 224x224 image of input.
  expect(chunkSamples(size * size)).toBe(chunks[0]);
  const r = api.resnet18(10).eval();
  r.fuseModel();
  const x = images(n, size);
  const want = unchunked(r, x);
  let got: number[] = [];
  const seen = batchesSeen(r.getSubmodule('conv1'), () => (got = Array.from((r.call(x) as Tensor).data)));
  expect(seen).toEqual(chunks);
  expect(got).toEqual(want);
  // A channels_last input (batch outermost as well) is cut the same way.
  expect(Array.from((r.call(x.toChannelsLast()) as Tensor).data)).toEqual(want);
  // The MobileNetV2 fixture's weights, unfused (BatchNorm modules run on their own).
  const m = smallModel();
  const wantM = unchunked(m, x);
  const y = m.call(x) as Tensor;
  expect(y.shape).toEqual([n, wantM.length / n]);
  expect(Array.from(y.data)).toEqual(wantM);
});

test('the root sees the whole batch; small images, hooks below the root, training mode and observers turn chunking off', () => {
  api.setNumThreads(2);
  const m = smallModel();
  const x = images(5, 224);
  expect(forwardChunk(m, x)).toBe(4);
  const roots: number[] = [];
  m.registerForwardHook((_mod, inputs, out) => roots.push((inputs[0] as Tensor).shape[0], (out as Tensor).shape[0]));
  m.call(x);
  expect(roots).toEqual([5, 5]);
  // A batch no larger than a chunk, small images (a batch of 8 28x28 images fits in cache), or
  // not a 4-D tensor: at once.
  expect(forwardChunk(m, images(4, 224))).toBe(0);
  expect(forwardChunk(m, smallInput())).toBe(0);
  expect(forwardChunk(m, new Tensor(new Float32Array(8 * 3 * 28), [8, 3, 28]))).toBe(0);
  // A hook deeper in the tree would see chunks.
  const seenByHook: number[] = [];
  const remove = m.getSubmodule('features.1').registerForwardHook((_mod, inputs) => seenByHook.push((inputs[0] as Tensor).shape[0]));
  m.call(x);
  expect(seenByHook).toEqual([5]);
  remove();
  // Training mode (BatchNorm would use the batch's statistics).
  m.train();
  expect(forwardChunk(m, x)).toBe(0);
  m.eval();
  // Observers (prepare) see the whole calibration batch.
  m.fuseModel();
  m.qconfig = api.getDefaultQConfig('fbgemm');
  api.prepare(m, true);
  expect(forwardChunk(m, x)).toBe(0);
});

test('a model with a class not known to be sample-wise runs its batch at once', () => {
  api.setNumThreads(1);
  class Custom extends api.Module {
    forward(x: unknown): unknown {
      return x;
    }
  }
  const m = smallModel();
  m.addModule('extra', new Custom());
  expect(forwardChunk(m, images(5, 224))).toBe(0);
  // A subclass of a registered class may override forward: not sample-wise either.
  class MySequential extends api.Sequential {}
  const m2 = smallModel();
  m2.addModule('extra', new MySequential());
  expect(forwardChunk(m2, images(5, 224))).toBe(0);
});
