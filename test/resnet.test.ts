// torchvision's quantizable ResNet-18/50: state_dict keys and shapes, printed model after
// prepare and convert, and the quantized ops only ResNet uses (adaptive avg pool, max pool,
// add_relu) against torch 1.13 outputs, on both backends.
import * as fs from 'fs';
import * as path from 'path';
import { getBackend } from '../lib/kernels';
import { resnet18, resnet50 } from '../lib/models';
import { Module } from '../lib/nn/module';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { defaultQConfig } from '../lib/quantization/qconfig';
import { Tensor } from '../lib/tensor';
import { convOutSize } from '../lib/kernels/float';
import { rng } from './helpers/random';

const e = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'resnet', 'expected.json'), 'utf8'));
// Output qparams depend on float rounding details; the structure and every other field must match.
const mask = (s: string) => s.replace(/scale=(tensor\(\[[^\]]*\]\)|[0-9.e-]+)/g, 'scale=*').replace(/zero_point=(tensor\(\[\d+\]\)|\d+)/g, 'zero_point=*');

function randomize(m: Module, seed: number): void {
  const r = rng(seed);
  for (const [k, t] of m.stateDict())
    for (let i = 0; i < t.numel; i++)
      t.data[i] = k.endsWith('running_var') ? 0.5 + r() : k.endsWith('num_batches_tracked') ? 0 : t.shape.length === 1 ? 0.1 * (r() - 0.5) + (k.endsWith('weight') ? 1 : 0)
        : (r() - 0.5) * 0.2;
}

describe.each([['resnet18', resnet18], ['resnet50', resnet50]] as const)('%s', (name, ctor) => {
  test('state_dict keys and shapes equal torchvision', () => {
    const got = [...ctor(10).stateDict()].map(([k, t]) => [k, [...t.shape]]);
    expect(got).toEqual(e[name].keys);
  });
  test('fuse + prepare + calibrate + convert print like torch; int8 runs on both backends identically', () => {
    const m = ctor(10);
    randomize(m, 1);
    m.eval();
    m.fuseModel();
    m.qconfig = defaultQConfig;
    prepare(m, true);
    expect(m.getSubmodule('layer1.0').toString()).toBe(e[name].prepared_layer1_0);
    const x = new Tensor(new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.37)), [2, 3, 32, 32]);
    m.call(x);
    const q = convert(m);
    expect(mask(q.getSubmodule('layer1.0').toString())).toBe(mask(e[name].converted_layer1_0));
    for (const [k, v] of Object.entries(e[name].converted_top as Record<string, string>))
      expect(mask(q.getSubmodule(k).toString())).toBe(mask(v));
    const yn = q.call(x) as Tensor;
    const { setDefaultBackend } = require('../lib/kernels/default');
    setDefaultBackend('reference');
    try {
      expect(Array.from((q.call(x) as Tensor).data)).toEqual(Array.from(yn.data));
    } finally {
      setDefaultBackend('native');
    }
  });
});

describe.each([['native'], ['reference']] as const)('ResNet quantized ops equal torch 1.13 (%s)', (b) => {
  const backend = getBackend(b);
  const cases: Array<[string, number]> = e.ops.map((o: { c: number; h: number; w: number }, i: number) => [`${o.c}x${o.h}x${o.w}`, i]);
  test.each(cases)('%s', (_n: string, i: number) => {
    const o = e.ops[i];
    const x = Uint8Array.from(o.x), hw = o.h * o.w;
    const aap = new Uint8Array(2 * o.c);
    backend.qadaptiveAvgPool(x, 2, hw, o.c, aap, o.scale, o.zero_point, o.aap_scale, o.aap_zero_point);
    expect(Array.from(aap)).toEqual(o.aap);
    const oh = convOutSize(o.h, 3, 2, 1, 1), ow = convOutSize(o.w, 3, 2, 1, 1);
    const mp = new Uint8Array(2 * oh * ow * o.c);
    backend.qmaxpool2d(x, 2, o.h, o.w, o.c, 3, 2, 1, mp);
    expect(Array.from(mp)).toEqual(o.maxpool);
    const ar = new Uint8Array(x.length);
    backend.qadd(x, Uint8Array.from(o.y), ar, { aScale: o.scale, aZeroPoint: o.zero_point, bScale: o.y_scale, bZeroPoint: o.y_zero_point, outScale: 0.09, outZeroPoint: 17, relu: true });
    expect(Array.from(ar)).toEqual(o.add_relu);
  });
});
