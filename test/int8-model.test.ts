// The converted int8 model end to end: PyTorch 1.13 int8 outputs reproduced byte for byte (given
// torch's qparams), native == reference on every ISA, save/load round trip, bad files rejected.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { setDefaultBackend } from '../lib/kernels/default';
import { loadNative } from '../lib/kernels';
import { setIsa } from '../lib/kernels/native';
import { encodeQuantizedModel, loadQuantizedModel, modelChecksum, saveQuantizedModel } from '../lib/io/model-file';
import { encodeSafetensors, readSafetensors } from '../lib/io/safetensors';
import { FormatError } from '../lib/io/types';
import { Module } from '../lib/nn/module';
import { QuantizedModule } from '../lib/nn/quantized';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { QTensor } from '../lib/qtensor';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { rows, smallExpected, smallInput, smallModel } from './helpers/fixtures';

const e = smallExpected();
const x = smallInput();

function quantized(name: string, torchQParams: boolean): Module {
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName(name);
  prepare(m, true);
  for (let i = 0; i < 8; i += 4) m.call(rows(x, i, 4));
  const q = convert(m);
  if (torchQParams)
    for (const o of e[name].observed) Object.assign(q.getSubmodule(o.name) as QuantizedModule, { scale: Math.fround(o.scale), zeroPoint: o.zero_point });
  return q;
}

/** int8 logits (before DeQuantize) of the tutorial MobileNetV2. */
function int8Logits(q: Module, input: Tensor): QTensor {
  const get = (n: string) => q._modules.get(n)!;
  let t = get('quant').call(input) as QTensor;
  t = get('features').call(t) as QTensor;
  t = t.mean([2, 3]);
  return get('classifier').call(t) as QTensor;
}

afterEach(() => setDefaultBackend('native'));

describe.each([['default'], ['fbgemm']])('%s qconfig', (name) => {
  test.each([['reference'], ['native']] as const)('with torch qparams the %s int8 outputs equal PyTorch (onednn) exactly', (backend) => {
    setDefaultBackend(backend);
    const y = int8Logits(quantized(name, true), x);
    expect(y.scale).toBe(Math.fround(e[name].logits_scale));
    expect(Array.from(y.data)).toEqual(e[name].logits_q);
  });

  test('own calibration: every int8 logit within one step of PyTorch', () => {
    const y = int8Logits(quantized(name, false), x);
    const ref: number[] = e[name].logits_q;
    ref.forEach((v, i) => expect(Math.abs(y.data[i] - v)).toBeLessThanOrEqual(1));
  });

  test('native and reference backends give byte-identical outputs on every ISA level', () => {
    const q = quantized(name, false);
    setDefaultBackend('reference');
    const want = Array.from(int8Logits(q, x).data);
    setDefaultBackend('native');
    const addon = loadNative();
    try {
      for (const isa of addon.supported) {
        setIsa(isa); // the modules repack their weights for this level
        expect({ isa, logits: Array.from(int8Logits(q, x).data) }).toEqual({ isa, logits: want });
      }
    } finally {
      setIsa(addon.supported[addon.supported.length - 1]);
    }
  });

  test('save / load: about 4x smaller than float, identical outputs, no calibration data needed', () => {
    const q = quantized(name, false);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-'));
    const file = path.join(dir, 'm.safetensors');
    const arch = { arch: 'mobilenet_v2' as const, numClasses: 10, widthMult: e.width_mult, invertedResidualSetting: e.setting };
    saveQuantizedModel(file, q, { architecture: arch, qconfig: name });
    const floatBytes = fs.statSync(path.join(__dirname, 'fixtures', 'mnv2-small', 'weights.pth')).size;
    expect(fs.statSync(file).size).toBeLessThan(floatBytes / 2.8);
    const loaded = loadQuantizedModel(file).model;
    expect(loaded.toString()).toBe(q.toString());
    expect(Array.from((loaded.call(x) as Tensor).data)).toEqual(Array.from((q.call(x) as Tensor).data));
    // A model file for another architecture does not load into this one.
    const other = { ...arch, invertedResidualSetting: undefined };
    saveQuantizedModel(file, q, { architecture: other, qconfig: name });
    expect(() => loadQuantizedModel(file)).toThrow(FormatError);
    // A file whose records miss a conv would leave a float layer without weights: refused.
    const bytes = encodeQuantizedModel(q, { architecture: arch, qconfig: name });
    const { tensors, metadata } = readSafetensors(bytes);
    const records = JSON.parse(metadata.modules).filter((r: { name: string }) => r.name !== 'features.1.conv.0.0');
    const edited: Record<string, string> = { ...metadata, modules: JSON.stringify(records) };
    edited.checksum = modelChecksum(tensors, edited); // a consistent file, so the record check is what refuses it
    fs.writeFileSync(file, encodeSafetensors(tensors, edited));
    expect(() => loadQuantizedModel(file)).toThrow(/features\.1\.conv\.0\.0.*no quantized record/);
    fs.rmSync(dir, { recursive: true });
  });
});

test('corrupted and foreign files are clear errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-'));
  const f = path.join(dir, 'x.safetensors');
  fs.writeFileSync(f, Buffer.from('not a model at all'));
  expect(() => loadQuantizedModel(f)).toThrow(FormatError);
  fs.rmSync(dir, { recursive: true });
});
