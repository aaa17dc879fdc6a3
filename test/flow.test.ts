// The tutorial's flow on a small MobileNetV2 against PyTorch 1.13 golden values: float forward,
// fusion (bit-exact weights), prepare (printed model), calibration qparams, convert (printed model,
// int8 weights).
import { FusableModel } from '../lib/models';
import { convert } from '../lib/quantization/convert';
import { fuseModules } from '../lib/quantization/fuse';
import { prepare, observedModules } from '../lib/quantization/quantize';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { QuantizedConv2d, QuantizedLinear } from '../lib/nn/quantized';
import { Sequential } from '../lib/nn/layers';
import { rows, smallExpected, smallInput, smallModel } from './helpers/fixtures';

const expected = smallExpected();
const x = smallInput();

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
}

test('float forward matches PyTorch to float32 accuracy', () => {
  const y = smallModel().call(x) as Tensor;
  expect(y.shape).toEqual([8, 10]);
  const ref: number[] = expected.float_logits;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(y.data[i] - ref[i]) / (Math.abs(ref[i]) + 1e-3));
  expect(worst).toBeLessThan(1e-4);
});

describe.each([['default'], ['fbgemm']])('qconfig %s', (name) => {
  const e = expected[name];
  let model: FusableModel;
  beforeAll(() => {
    model = smallModel();
    model.fuseModel();
  });

  test('qconfig prints like torch', () => expect(String(qconfigByName(name))).toBe(e.qconfig_repr));

  test('fusion folds BN exactly as torch (bit-exact float32)', () => {
    const sd = model.stateDict();
    for (const [k, v] of Object.entries(e.fused as Record<string, number[]>)) {
      const got = Array.from(sd.get(k)!.data);
      expect(got).toEqual(v);
    }
  });

  test('prepare inserts observers where torch does (printed model)', () => {
    model.qconfig = qconfigByName(name);
    prepare(model, true);
    const feat = model.getSubmodule('features.1.conv') as Sequential;
    expect(feat.toString()).toBe(e.prepared_repr);
  });

  test('calibration gives torch 1.13 qparams for every observed module', () => {
    for (let i = 0; i < 8; i += 4) model.call(rows(x, i, 4));
    const got = observedModules(model).map(([n, , o]) => {
      const q = o.observer.calculateQParams();
      return { name: n, scale: q.scale[0], zero_point: q.zeroPoint[0] };
    });
    const ref = [...expected[name].observed].sort((a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name));
    got.sort((a, b) => a.name.localeCompare(b.name));
    expect(got.map((g) => g.name)).toEqual(ref.map((r: { name: string }) => r.name));
    const tol = name === 'default' ? 2e-6 : 1e-4;
    for (let i = 0; i < ref.length; i++) {
      expect({ name: got[i].name, zp: got[i].zero_point }).toEqual({ name: ref[i].name, zp: ref[i].zero_point });
      if (relErr(got[i].scale, ref[i].scale) > tol) throw new Error(`${ref[i].name}: scale ${got[i].scale} vs torch ${ref[i].scale}`);
    }
  });

  test('convert: printed model, weight qparams and int8 weights equal torch', () => {
    const q = convert(model, false);
    // Scales agree to float32 rounding (float conv summation order differs from oneDNN's by ulps):
    // compare the text with scales masked, and the scales numerically.
    const mask = (s: string) => s.replace(/scale=[0-9.e-]+/g, 'scale=*');
    const scales = (s: string) => [...s.matchAll(/scale=([0-9.e-]+)/g)].map((m) => Number(m[1]));
    const got = (q.getSubmodule('features.1.conv') as Sequential).toString();
    expect(mask(got)).toBe(mask(e.converted_repr));
    scales(got).forEach((v, i) => expect(relErr(v, scales(e.converted_repr)[i])).toBeLessThan(name === 'default' ? 2e-6 : 1e-4));
    for (const [n, w] of Object.entries(e.weights as Record<string, { scale: number[]; zero_point: number[] }>)) {
      const m = q.getSubmodule(n);
      if (!(m instanceof QuantizedConv2d || m instanceof QuantizedLinear)) throw new Error(`${n} is ${m.typeName()}`);
      expect(Array.from(m.weight.scale)).toEqual(w.scale);
      expect(Array.from(m.weight.zeroPoint)).toEqual(w.zero_point);
      expect(Array.from(m.weight.data)).toEqual(e.qweights[n]);
    }
  });
});

test('fuseModules rejects unknown patterns and fuses copies by default', () => {
  const m = smallModel();
  expect(() => fuseModules(m, ['features.0.1', 'features.0.2'])).toThrow(/Cannot fuse modules: \(BatchNorm2d, ReLU\)/);
  const f = fuseModules(m, ['features.0.0', 'features.0.1', 'features.0.2']);
  expect(f.getSubmodule('features.0.0').typeName()).toBe('ConvReLU2d');
  expect(m.getSubmodule('features.0.0').typeName()).toBe('Conv2d');
});

test('Fashion-MNIST preprocessing equals torchvision ToTensor + Normalize bit for bit', () => {
  const fs = require('fs') as typeof import('fs');
  const path = require('path') as typeof import('path');
  const { FashionMnist } = require('../lib/data/datasets') as typeof import('../lib/data/datasets');
  const p = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'mnv2-small', 'preprocess.json'), 'utf8'));
  const ds = new FashionMnist(path.join(__dirname, '..', 'assets', 'fashion-mnist'), 'test');
  // Every pixel value maps through the same table; check it against torch for all 256 values.
  const lut: Float32Array = (ds as unknown as { lut: Float32Array }).lut;
  expect(Array.from(lut)).toEqual(p.normalize_tensor);
  const b = ds.batch(0, 2);
  expect(b.images.shape).toEqual([2, 3, 28, 28]);
  expect(b.images.data[0]).toBe(b.images.data[28 * 28]); // grey replicated to 3 channels
});

test('a deep copy of a prepared model calibrates its own observers; convert keeps user hooks', () => {
  const { deepCopy } = require('../lib/nn/module') as typeof import('../lib/nn/module');
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName('default');
  prepare(m, true);
  const copy = deepCopy(m);
  copy.call(rows(x, 0, 4));
  expect(m.getSubmodule('quant').toString()).toMatch(/min_val=inf/); // original untouched
  expect(copy.getSubmodule('quant').toString()).not.toMatch(/min_val=inf/);
  let calls = 0;
  copy.getSubmodule('dequant').registerForwardHook(() => calls++);
  const q = convert(copy);
  q.call(rows(x, 0, 2));
  expect(calls).toBe(1);
});
