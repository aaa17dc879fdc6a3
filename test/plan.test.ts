// Whole-model native plans: identical outputs to the module-by-module forward, any batch size,
// any thread count, sync and async, many runs in flight; bad inputs are clear errors.
import * as crypto from 'crypto';
import { compileModel } from '../lib/inference';
import { nativeBackend } from '../lib/kernels/native';
import { QuantizedConv2d } from '../lib/nn/quantized';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { Module } from '../lib/nn/module';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { resnet18 } from '../lib/models';
import { defaultQConfig } from '../lib/quantization/qconfig';
import { rows, smallInput, smallModel, quantizedSmall } from './helpers/fixtures';

const x = smallInput();


describe.each([['default'], ['fbgemm']])('%s qconfig', (name) => {
  const q = quantizedSmall(name);
  const want = Array.from((q.call(x) as Tensor).data);

  test('runSync equals the module forward for every batch split and thread count', () => {
    for (const maxBatch of [1, 3, 8]) for (const threads of [1, 2, 0]) {
      const c = compileModel(q, { inputShape: [3, 28, 28], maxBatch, threads });
      expect(c.info().depthFirstOps).toBe(0);
      expect({ maxBatch, threads, y: Array.from(c.runSync(x).data) }).toEqual({ maxBatch, threads, y: want });
    }
  });

  test('run() resolves to the same values with 64 runs in flight', async () => {
    const c = compileModel(q, { inputShape: [3, 28, 28], maxBatch: 4 });
    const runs = Array.from({ length: 64 }, (_, i) => c.run(rows(x, i % 8, 1 + (i % 3 === 0 && i % 8 < 7 ? 1 : 0))));
    const outs = await Promise.all(runs);
    outs.forEach((o, i) => {
      const k = i % 8, n = o.shape[0];
      expect(Array.from(o.data)).toEqual(want.slice(k * 10, (k + n) * 10));
    });
  });

  test('RGB inputs of every pixel count class (64- and 16-pixel blocks, a scalar tail) give the module forward, sync and async', async () => {
    for (const [h, w] of [[8, 8], [5, 7], [29, 31], [9, 16]]) {
      const xi = new Tensor(new Float32Array(2 * 3 * h * w).map((_, i) => Math.sin(i * 0.61) * 2.5), [2, 3, h, w]);
      const wantI = Array.from((q.call(xi) as Tensor).data);
      const c = compileModel(q, { inputShape: [3, h, w], maxBatch: 2 });
      expect({ h, w, y: Array.from(c.runSync(xi).data) }).toEqual({ h, w, y: wantI });
      // run() quantizes its snapshot on the calling thread (streamed stores into an aligned copy).
      expect({ h, w, y: Array.from((await c.run(xi)).data) }).toEqual({ h, w, y: wantI });
      expect({ h, w, y: Array.from((await c.run(rows(xi, 1, 1))).data) }).toEqual({ h, w, y: wantI.slice(10) });
    }
  });

  test('bad inputs are errors naming the argument', () => {
    const c = compileModel(q, { inputShape: [3, 28, 28] });
    expect(() => c.runSync(new Float32Array(10))).toThrow(/input/);
    expect(() => c.runSync(new Float64Array(3 * 28 * 28) as unknown as Float32Array)).toThrow(TypeError);
    expect(() => c.runSync(new Tensor(new Float32Array(3 * 28 * 27), [1, 3, 28, 27]))).toThrow(/shape/);
    expect(() => compileModel(q, { inputShape: [3, 28, 28], maxBatch: 0 })).toThrow(/maxBatch/);
  });
});

/** A ResNet-18 (10 classes) with pseudo-random weights from `seed`, fused, calibrated on x, converted. */
function quantizedResnet18(seed: number, x: Tensor): Module {
  const m = resnet18(10);
  let s = seed;
  for (const [, t] of m.stateDict()) for (let i = 0; i < t.numel; i++) { s = (s * 1103515245 + 12345) % 2147483648; t.data[i] = (s / 2147483648 - 0.5) * 0.2 + (t.shape.length === 1 ? 1 : 0); }
  m.eval();
  m.fuseModel();
  m.qconfig = defaultQConfig;
  prepare(m, true);
  m.call(x);
  return convert(m);
}

test('ResNet-18 (maxpool, adaptive avg pool, add_relu, downsample) compiles and matches', () => {
  const xi = new Tensor(new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i)), [2, 3, 32, 32]);
  const q = quantizedResnet18(1, xi);
  const want = Array.from((q.call(xi) as Tensor).data);
  // Each block's conv2 + add_relu runs as one op (the add tile by tile inside the conv): 1 and 2
  // threads, layer by layer (maxBatch 1) and depth first (maxBatch 2).
  for (const maxBatch of [1, 2]) for (const threads of [1, 2]) {
    const c = compileModel(q, { inputShape: [3, 32, 32], maxBatch, threads });
    expect(c.profile(rows(xi, 0, 1), 1).filter((o) => o.kind === 'conv+add')).toHaveLength(8);
    expect({ maxBatch, threads, y: Array.from(c.runSync(xi).data) }).toEqual({ maxBatch, threads, y: want });
  }
});

test('ResNet-18 batches run depth first up to the weight-heavy layers, which then run on the whole batch (residual slots handed over): same outputs', () => {
  const xi = new Tensor(new Float32Array(3 * 3 * 128 * 128).map((_, i) => Math.sin(i * 0.37)), [3, 3, 128, 128]);
  const q = quantizedResnet18(7, xi);
  const want = Array.from((q.call(xi) as Tensor).data);
  for (const threads of [1, 2]) {
    const c = compileModel(q, { inputShape: [3, 128, 128], maxBatch: 3, threads });
    const info = c.info();
    expect(info.depthFirstOps).toBeGreaterThan(1);
    expect(info.depthFirstOps).toBeLessThan(info.ops - 2);
    for (let k = 0; k < 2; k++) expect({ threads, k, y: Array.from(c.runSync(xi).data) }).toEqual({ threads, k, y: want });
  }
});

test('deepCopy of a converted model runs and equals the original', () => {
  const { deepCopy } = require('../lib/nn/module') as typeof import('../lib/nn/module');
  const q = quantizedSmall('default');
  const y = Array.from((q.call(x) as Tensor).data);
  const c = deepCopy(q);
  expect(Array.from((c.call(x) as Tensor).data)).toEqual(y);
});

test('large inputs run batches depth first (whole samples per thread, then the remainder layer by layer, then the weight-heavy tail on the whole batch): same outputs', () => {
  // At 96x96 a sample's activations pass the plan's depth-first threshold; at 28x28 they do not.
  // The last 1x1 conv (weights > its output per sample) and the classifier run on the whole batch.
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName('fbgemm');
  prepare(m, true);
  const big = new Tensor(new Float32Array(5 * 3 * 96 * 96).map((_, i) => Math.sin(i * 0.37) * 2), [5, 3, 96, 96]);
  m.call(big);
  const q = convert(m);
  const want = Array.from((q.call(big) as Tensor).data);
  for (const threads of [1, 2]) {
    const c = compileModel(q, { inputShape: [3, 96, 96], maxBatch: 5, threads });
    const info = c.info();
    expect(info.arenaBytes / 5).toBeGreaterThan(256 * 1024);
    expect(info.depthFirstOps).toBeGreaterThan(1);
    expect(info.depthFirstOps).toBeLessThan(info.ops - 1);
    expect({ threads, y: Array.from(c.runSync(big).data) }).toEqual({ threads, y: want });
  }
});

test('run() reads its input when called: overwriting the caller\'s buffer right after does not change the result', async () => {
  const q = quantizedSmall('fbgemm');
  for (const maxBatch of [8, 3]) { // one chunk, and several chunks
    const c = compileModel(q, { inputShape: [3, 28, 28], maxBatch });
    const want = Array.from(c.runSync(x).data);
    const buf = Float32Array.from(x.data);
    const p = c.run(new Tensor(buf, x.shape));
    buf.fill(0);
    expect({ maxBatch, y: Array.from((await p).data) }).toEqual({ maxBatch, y: want });
  }
});

test('compiling reuses the modules\' packed weights (no repacking) and keeps no reference to the trace', () => {
  const q = quantizedSmall('fbgemm');
  q.call(x); // eager run: the modules pack their weights natively
  const convs: QuantizedConv2d[] = [];
  const visit = (m: Module): void => { if (m instanceof QuantizedConv2d) convs.push(m); for (const c of m.children()) visit(c); };
  visit(q);
  expect(convs.length).toBeGreaterThan(3);
  const cache = (m: QuantizedConv2d) => (m as unknown as { packed: { entry?: { backend: unknown; p: unknown } } }).packed.entry;
  const before = convs.map((m) => cache(m)?.p);
  const packConv = jest.spyOn(nativeBackend, 'packQConv2d'), packGemm = jest.spyOn(nativeBackend, 'packQGemm');
  try {
    const c = compileModel(q, { inputShape: [3, 28, 28], maxBatch: 2 });
    expect(packConv).not.toHaveBeenCalled();
    expect(packGemm).not.toHaveBeenCalled();
    expect(Array.from(c.runSync(x).data)).toEqual(Array.from((q.call(x) as Tensor).data));
  } finally {
    packConv.mockRestore();
    packGemm.mockRestore();
  }
  convs.forEach((m, i) => {
    expect(cache(m)?.p).toBe(before[i]);
    expect(cache(m)?.backend).toBe(nativeBackend);
  });
});

describe('queued runs', () => {
  const q = quantizedSmall('fbgemm');
  const big = new Tensor(new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.37)), [1, 3, 224, 224]);

  test('runs of one plan settle in the order they were queued, each with its own input', async () => {
    const c = compileModel(q, { inputShape: [3, 28, 28], maxBatch: 1 });
    const want = Array.from({ length: 8 }, (_, k) => Array.from(c.runSync(rows(x, k, 1)).data));
    const order: number[] = [];
    const outs = await Promise.all(Array.from({ length: 40 }, (_, i) => c.run(rows(x, i % 8, 1)).then((o) => (order.push(i), o))));
    expect(order).toEqual(Array.from({ length: 40 }, (_, i) => i));
    outs.forEach((o, i) => expect({ i, y: Array.from(o.data) }).toEqual({ i, y: want[i % 8] }));
  });

  test('64 runs in flight take one libuv thread: other libuv work (crypto.pbkdf2) is not queued behind them', async () => {
    const c = compileModel(q, { inputShape: [3, 224, 224], maxBatch: 1 });
    await c.run(big);
    let settled = 0;
    const runs = Promise.all(Array.from({ length: 64 }, () => c.run(big).then(() => settled++)));
    // libuv's queue is first come first served: had each run been a work item of its own, the
    // key would wait until the last four runs had started.
    const seenAtKey = await new Promise<number>((resolve, reject) =>
      crypto.pbkdf2('pw', 'salt', 1, 16, 'sha256', (e) => (e ? reject(e) : resolve(settled))));
    await runs;
    expect(seenAtKey).toBeLessThan(32);
    c.dispose();
  });

  test('two plans run their queues side by side and each gets its own results', async () => {
    const a = compileModel(q, { inputShape: [3, 28, 28], maxBatch: 1, threads: 1 });
    const b = compileModel(quantizedSmall('default'), { inputShape: [3, 28, 28], maxBatch: 1, threads: 1 });
    const wa = Array.from(a.runSync(rows(x, 1, 1)).data), wb = Array.from(b.runSync(rows(x, 2, 1)).data);
    const outs = await Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 ? b.run(rows(x, 2, 1)) : a.run(rows(x, 1, 1)))));
    outs.forEach((o, i) => expect({ i, y: Array.from(o.data) }).toEqual({ i, y: i % 2 ? wb : wa }));
  });
});

test('odd image sizes (the NCHW -> NHWC quantize has a pixel tail): same outputs', () => {
  const q = quantizedSmall('default');
  const odd = new Tensor(new Float32Array(3 * 3 * 27 * 27).map((_, i) => Math.sin(i * 0.11) * 2), [3, 3, 27, 27]);
  const want = Array.from((q.call(odd) as Tensor).data);
  for (const threads of [1, 2]) {
    const c = compileModel(q, { inputShape: [3, 27, 27], maxBatch: 3, threads });
    expect({ threads, y: Array.from(c.runSync(odd).data) }).toEqual({ threads, y: want });
  }
});
