// The public entry point exposes the tutorial's flow end to end.
import * as path from 'path';
import * as api from '../lib';
import { smallModel } from './helpers/fixtures';

test('the README flow runs through the public API', () => {
  const model = smallModel();
  model.fuseModel();
  model.qconfig = api.getDefaultQConfig('fbgemm');
  api.prepare(model, true);
  const train = new api.FashionMnist(path.join(__dirname, '..', 'assets', 'fashion-mnist'), 'train');
  for (let i = 0; i < 60; i += 30) model.call(train.batch(i, 30).images);
  const q = api.convert(model);
  expect(q.getSubmodule('features.1.conv').toString()).toMatch(/QuantizedConvReLU2d\(16, 16, kernel_size=\(3, 3\)/);
  const r = api.evaluate(q, new api.FashionMnist(path.join(__dirname, '..', 'assets', 'fashion-mnist'), 'test'), { limit: 40, batchSize: 20 });
  expect(r.count).toBe(40);
  expect(r.top5).toBeGreaterThanOrEqual(r.top1);
});

test('the entry point exports each step under its PyTorch-style name', () => {
  for (const n of ['Module', 'Sequential', 'Conv2d', 'BatchNorm2d', 'ReLU', 'Linear', 'Dropout', 'Identity', 'QuantStub', 'DeQuantStub',
    'FloatFunctional', 'fuseModules', 'prepare', 'convert', 'defaultQConfig', 'getDefaultQConfig', 'HistogramObserver',
    'mobilenetV2', 'resnet18', 'resnet50', 'loadWeights', 'saveQuantizedModel', 'loadQuantizedModel', 'evaluate'])
    expect((api as Record<string, unknown>)[n]).toBeDefined();
});

test('setNumThreads changes the eager float ops thread count, never their results', () => {
  const model = smallModel();
  model.fuseModel();
  const x = new api.Tensor(new Float32Array(2 * 3 * 28 * 28).map((_, i) => Math.sin(i)), [2, 3, 28, 28]);
  const all = Array.from((model.call(x) as api.Tensor).data);
  try {
    api.setNumThreads(1);
    expect(api.getNumThreads()).toBe(1);
    expect(Array.from((model.call(x) as api.Tensor).data)).toEqual(all);
  } finally {
    api.setNumThreads(0);
  }
  expect(api.getNumThreads()).toBeGreaterThanOrEqual(1);
  expect(() => api.setNumThreads(-1)).toThrow(/threads/);
  expect(() => api.setNumThreads(1.5)).toThrow(/threads/);
});
