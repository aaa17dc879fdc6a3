// Float ONNX import (lib/io/onnx-import.ts) through the eager PTQ flow. Fixtures from
// scripts/make_onnx_import_fixtures.py: torch.onnx exports (opset 13) of the tutorial MobileNetV2 and
// torchvision's quantizable ResNet-18 with BatchNormalization kept, a BN-folded MobileNetV2, a mixed
// net (ReLU6, pools, Concat, Mul, Reshape, MatMul) and a net with an unsupported op.
// The round trip: ONNX -> importOnnx -> fuseModel -> prepare -> calibrate -> convert gives the very
// same qparams, int8 weights and int8 outputs (tolerance 0) as the hand-written TypeScript model with
// the same weights.
import * as fs from 'fs';
import * as path from 'path';
import { importOnnx, OnnxImportError } from '../lib/io/onnx-import';
import { ArchitectureSpec, createModel, InvertedResidual } from '../lib/models';
import { AvgPool2d, GraphModule } from '../lib/nn/graph';
import { Module } from '../lib/nn/module';
import { QFunctional, QuantizedConv2d, QuantizedLinear, QuantizedModule, Quantize } from '../lib/nn/quantized';
import { QTensor } from '../lib/qtensor';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { compileModel } from '../lib/inference';
import { detStateDict, refillOnnx } from './helpers/det-weights';
import { decodeOnnxModel, encodeOnnxModel, exportOnnx, OnnxModelProto } from '../lib/io/onnx-export';
import { encodeQuantizedModel, loadQuantizedModel } from '../lib/io/model-file';
import { int8Logits } from './helpers/int8';

export const ONNX_DIR = path.join(__dirname, 'fixtures', 'onnx-import');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const expected: any = JSON.parse(fs.readFileSync(path.join(ONNX_DIR, 'expected.json'), 'utf8'));

/** A float input [n, c, h, w] from a fixed LCG (the same data for both models). */
export function lcgInput(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    d[i] = (s / 4294967296 - 0.5) * 4;
  }
  return new Tensor(d, shape);
}

/** The bytes of a typed array view (not its whole backing buffer). */
function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function rows(t: Tensor, start: number, count: number): Tensor {
  const per = t.numel / t.shape[0];
  return new Tensor(t.data.slice(start * per, (start + count) * per), [count, ...t.shape.slice(1)]);
}


function handModel(spec: ArchitectureSpec): Module & { fuseModel(): void } {
  const m = createModel(spec);
  m.loadStateDict(detStateDict([...m.stateDict()].map(([k, t]) => [k, t.shape])));
  return m.eval();
}

/** The hand-written model's qualified name of a graph slot (from torch.onnx's scoped node names). */
function handName(g: GraphModule, hand: Module, slot: string): string {
  if (slot === 'quant' || slot === 'dequant') return slot;
  const node = g.spec.nodes.find((n) => n.name === slot)!;
  // torch.onnx scopes: '/features/features.1/conv/conv.0/conv.0.0/Conv' is module features.1.conv.0.0.
  const parts = node.onnxName.split('/').filter(Boolean).slice(0, -1);
  const names: string[] = [];
  parts.forEach((c, i) => names.push(i > 0 && c.startsWith(parts[i - 1] + '.') ? c.slice(parts[i - 1].length + 1) : c));
  const scope = names.join('.');
  if (node.op === 'add' || node.op === 'add_relu') {
    const block = hand.getSubmodule(scope);
    return `${scope}.${block._modules.has('skip_add') ? 'skip_add' : 'add_relu'}`;
  }
  return scope;
}

function quantizeBoth(g: Module, hand: Module & { fuseModel(): void }, qconfig: string, x: Tensor, batch: number): [Module, Module] {
  const out: Module[] = [];
  for (const m of [g, hand] as Array<Module & { fuseModel(): void }>) {
    m.fuseModel();
    m.qconfig = qconfigByName(qconfig);
    prepare(m, true);
    for (let i = 0; i < x.shape[0]; i += batch) m.call(rows(x, i, batch));
    out.push(convert(m, true));
  }
  return [out[0], out[1]];
}

function fixture(name: string): OnnxModelProto {
  return refillOnnx(fs.readFileSync(path.join(ONNX_DIR, name)));
}

describe.each([
  ['mnv2.onnx', 'mobilenet_v2', { arch: 'mobilenet_v2', numClasses: 10, widthMult: 0.5, invertedResidualSetting: expected.mnv2.setting } as ArchitectureSpec, [8, 3, 28, 28], 4],
  ['resnet18.onnx', 'resnet18', { arch: 'resnet18', numClasses: 10 } as ArchitectureSpec, [4, 3, 32, 32], 2],
])('%s (torch.onnx, BN kept) vs the hand-written %s', (file, _arch, spec, shape, batch) => {
  const x = lcgInput(shape as number[], 42);

  test('float outputs equal the hand-written model bit for bit', () => {
    const g = importOnnx(fixture(file));
    const hand = handModel(spec);
    const a = g.call(x) as Tensor, b = hand.call(x) as Tensor;
    expect(a.shape).toEqual(b.shape);
    expect(bytes(a.contiguous().data).equals(bytes(b.contiguous().data))).toBe(true);
  });

  test.each(file === 'mnv2.onnx' ? [['fbgemm'], ['default']] : [['fbgemm']])('qconfig %s: identical qparams, int8 weights and int8 outputs', (qconfig) => {
    const g = importOnnx(fixture(file));
    const hand = handModel(spec);
    const [qg, qh] = quantizeBoth(g, hand, qconfig, x, batch);
    let compared = 0;
    for (const [slot, m] of qg.namedModules()) {
      if (!(m instanceof QuantizedModule)) continue;
      const hn = handName(g as GraphModule, hand, slot);
      const h = qh.getSubmodule(hn);
      expect({ slot, type: h.typeName() }).toEqual({ slot, type: m.typeName() });
      const hq = h as QuantizedModule;
      expect({ slot, scale: m.scale, zp: m.zeroPoint }).toEqual({ slot, scale: hq.scale, zp: hq.zeroPoint });
      if (m instanceof QuantizedConv2d || m instanceof QuantizedLinear) {
        const hw = (h as QuantizedConv2d).weight;
        expect(Array.from(m.weight.scale)).toEqual(Array.from(hw.scale));
        expect(bytes(m.weight.data).equals(bytes(hw.data))).toBe(true);
        expect(m.bias ? Array.from(m.bias) : null).toEqual((h as QuantizedConv2d).bias ? Array.from((h as QuantizedConv2d).bias!) : null);
      }
      compared++;
    }
    // Every quantized module of the hand-written model has its counterpart, except the skip_add of
    // MobileNetV2 blocks without a residual (registered, never called: no node in the ONNX graph).
    const unused = [...hand.namedModules()].filter(([, m]) => m instanceof InvertedResidual && !m.useResConnect).length;
    expect(compared).toBe([...qh.modules()].filter((m) => m instanceof QuantizedModule).length - unused);
    expect(compared).toBeGreaterThan(10);
    if (process.env.PTQ_TEST_REPORT) console.log(`${file} ${qconfig}: ${compared} quantized modules with identical scale/zero_point (and int8 weights, biases)`);
    expect([...qg.modules()].filter((m) => m instanceof QFunctional).length).toBeGreaterThan(0);
    const yg = int8Logits(qg, x), yh = int8Logits(qh, x);
    expect([yg.scale, yg.zeroPoint]).toEqual([yh.scale, yh.zeroPoint]);
    expect(bytes(yg.data).equals(bytes(yh.data))).toBe(true);
    // Export of the quantized imported graph, re-imported: the same int8 outputs (tolerance 0).
    const back = importOnnx(exportOnnx(qg, { arch: 'graph' }));
    const yb = int8Logits(back, x);
    expect(bytes(yb.data).equals(bytes(yg.data))).toBe(true);
    // The native plan of the imported model gives the module forward's outputs.
    const plan = compileModel(qg, { inputShape: shape.slice(1) as number[], maxBatch: 4 });
    const yp = plan.runSync(x);
    const ym = qg.call(x) as Tensor;
    expect(bytes(yp.data).equals(bytes(ym.contiguous().data))).toBe(true);
  });
});

test.each([['mnv2.onnx', 'mnv2'], ['resnet18.onnx', 'resnet18'], ['mnv2_folded.onnx', 'mnv2_folded'], ['mixed.onnx', 'mixed'],
  ['mixed_opset11.onnx', 'mixed'], ['mixed_opset17.onnx', 'mixed']])(
  'float forward of imported %s matches torch 1.13 (logits stored by the fixture script)', (file, key) => {
    const e = expected[key];
    const g = importOnnx(fixture(file));
    const y = (g.call(lcgInput(e.input, e.seed)) as Tensor).contiguous();
    expect(y.numel).toBe(e.logits.length);
    let worst = 0;
    for (let i = 0; i < y.numel; i++) worst = Math.max(worst, Math.abs(y.data[i] - e.logits[i]) / (Math.abs(e.logits[i]) + 1e-2));
    expect(worst).toBeLessThan(1e-4);
  });

test('a BN-folded torch.onnx MobileNetV2 imports and quantizes; qparams close to the unfolded hand model', () => {
  const g = importOnnx(fs.readFileSync(path.join(ONNX_DIR, 'mnv2_folded.onnx')));
  const e = expected.mnv2_folded;
  const hand = handModel({ arch: 'mobilenet_v2', numClasses: e.num_classes, widthMult: e.width_mult, invertedResidualSetting: e.setting });
  const x = lcgInput(e.input, e.seed);
  const a = g.call(x) as Tensor, b = hand.call(x) as Tensor;
  let worst = 0;
  for (let i = 0; i < a.numel; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  expect(worst).toBeLessThan(1e-4);
  const [qg, qh] = quantizeBoth(g, hand, 'fbgemm', x, 2);
  // torch.onnx folds BN in another float order than fuse_conv_bn_weights: weights differ by ulps,
  // so the qparams agree closely rather than exactly.
  let n = 0;
  for (const [slot, m] of qg.namedModules()) {
    if (!(m instanceof QuantizedModule)) continue;
    const h = qh.getSubmodule(handName(g, hand, slot)) as QuantizedModule;
    expect(Math.abs(m.scale - h.scale) / h.scale).toBeLessThan(1e-3);
    expect(Math.abs(m.zeroPoint - h.zeroPoint)).toBeLessThanOrEqual(1);
    n++;
  }
  expect(n).toBe([...qh.modules()].filter((m) => m instanceof QuantizedModule).length);
});

describe('errors', () => {
  test('an unsupported op is a precise OnnxImportError naming node, op type and what is missing', () => {
    const m = decodeOnnxModel(fs.readFileSync(path.join(ONNX_DIR, 'unsupported.onnx')));
    m.graph.node.find((n) => n.op_type === 'Sigmoid')!.op_type = 'Erf';
    let err: unknown;
    try {
      importOnnx(encodeOnnxModel(m), { fallback: 'float' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OnnxImportError);
    const e = err as OnnxImportError;
    expect([e.node, e.opType]).toEqual(['/Sigmoid', 'Erf']);
    expect(e.message).toMatch(/^node '\/Sigmoid' \(Erf\): op type 'Erf' is not supported; ptq-node imports Conv, BatchNormalization, .* \(and Sigmoid, Tanh, HardSigmoid, HardSwish, Softmax kept in float with fallback 'float'\)$/);
  });

  test('a float-only op without fallback names node, op type and the way out', () => {
    expect(() => importOnnx(path.join(ONNX_DIR, 'unsupported.onnx'))).toThrow(
      /unsupported\.onnx: node '\/Sigmoid' \(Sigmoid\): op type 'Sigmoid' cannot be quantized by ptq-node; import with fallback 'float'/);
  });

  test('an unsupported attribute names it', () => {
    const m = fixture('resnet18.onnx');
    const pool = m.graph.node.find((n) => n.op_type === 'MaxPool')!;
    pool.attribute.find((a) => a.name === 'pads')!.ints = [1, 1, 0, 0];
    let err: OnnxImportError | undefined;
    try {
      importOnnx(m);
    } catch (e) {
      err = e as OnnxImportError;
    }
    expect(err?.message).toBe("node '/maxpool/MaxPool' (MaxPool): asymmetric padding [1, 1, 0, 0] is not supported here (ptq-node's kernels pad symmetrically)");
    expect([err?.node, err?.opType, err?.attribute]).toEqual(['/maxpool/MaxPool', 'MaxPool', 'pads']);
    pool.attribute.find((a) => a.name === 'pads')!.ints = [1, 1, 1, 1];
    pool.attribute.find((a) => a.name === 'ceil_mode')!.i = 1;
    expect(() => importOnnx(m)).toThrow("node '/maxpool/MaxPool' (MaxPool): ceil_mode=1 is not supported");
  });

  test('asymmetric conv padding (TensorFlow SAME, stride 2) becomes an explicit pad: float output as ONNX Runtime, quantized runs', async () => {
    const m = fixture('mnv2.onnx');
    const conv = m.graph.node.find((n) => n.op_type === 'Conv')!;
    conv.attribute = conv.attribute.filter((a) => a.name !== 'pads');
    conv.attribute.push({ name: 'auto_pad', type: 3, s: new Uint8Array(Buffer.from('SAME_UPPER')) });
    const bytesOnnx = encodeOnnxModel(m);
    const g = importOnnx(bytesOnnx);
    expect(g.spec.nodes[0].op).toBe('pad');
    expect(g.spec.nodes[0].pads).toEqual([0, 0, 1, 1]);
    const x = lcgInput([2, 3, 28, 28], 21);
    const ours = (g.call(x) as Tensor).contiguous().data;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const session = await ort.InferenceSession.create(Buffer.from(bytesOnnx), { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
    let theirs: Float32Array;
    try {
      theirs = (await session.run({ input: new ort.Tensor('float32', x.data, [...x.shape]) })).logits.data as Float32Array;
    } finally {
      await session.release();
    }
    for (let i = 0; i < ours.length; i++) expect(Math.abs(ours[i] - theirs[i])).toBeLessThan(1e-4 * (1 + Math.abs(theirs[i])));
    g.fuseModel();
    g.qconfig = qconfigByName('default');
    prepare(g, true);
    g.call(x);
    const q = convert(g, true);
    const y = (q.call(x) as Tensor).contiguous().data;
    let worst = 0;
    for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i] - ours[i]));
    expect(worst).toBeLessThan(0.25 * Math.max(...Array.from(ours, Math.abs)));
  });

  test('garbage bytes, a missing initializer and a wrong opset are errors, not crashes', () => {
    expect(() => importOnnx(new Uint8Array([1, 2, 3, 4, 5]))).toThrow(OnnxImportError);
    expect(() => importOnnx(fs.readFileSync(path.join(ONNX_DIR, 'mnv2.onnx')))).toThrow(/initializer 'features\.0\.0\.weight' has 0 values but dims \[16, 3, 3, 3\] need 432/);
    const m = fixture('mnv2.onnx');
    m.opset_import[0].version = 9;
    expect(() => importOnnx(encodeOnnxModel(m))).toThrow(/opset 9 is not supported/);
  });
});

test('mixed ops: ReLU6 (clamp or relu), MaxPool, dilated grouped conv, Concat, Mul, AveragePool, Reshape, MatMul', () => {
  const e = expected.mixed;
  const bytes = fs.readFileSync(path.join(ONNX_DIR, 'mixed.onnx'));
  const g = importOnnx(bytes);
  const types = g.spec.nodes.map((n) => n.module?.type ?? n.op);
  expect(types).toEqual(['Conv2d', 'ReLU6', 'MaxPool2d', 'Conv2d', 'ReLU', 'Conv2d', 'mul', 'cat', 'AvgPool2d', 'reshape', 'Linear']);
  const r = importOnnx(bytes, { relu6: 'relu' });
  expect(r.spec.nodes[1].module?.type).toBe('ReLU');
  // Fusion: conv1 + ReLU6 becomes one fused conv with a clamp.
  g.fuseModel();
  expect(g.getSubmodule(g.spec.nodes[0].name).typeName()).toBe('ConvReLU62d');
  expect(g.getSubmodule(g.spec.nodes[3].name).typeName()).toBe('ConvReLU2d');
  expect(e.input).toEqual([2, 3, 8, 8]);
});

test('quantized ReLU6 clamp: the fused conv output never exceeds q(6)', () => {
  const bytes = fs.readFileSync(path.join(ONNX_DIR, 'mixed.onnx'));
  const g = importOnnx(bytes);
  g.fuseModel();
  g.qconfig = qconfigByName('default');
  prepare(g, true);
  const x = lcgInput([4, 3, 8, 8], 5);
  g.call(x);
  const q = convert(g, true);
  const conv = q.getSubmodule(g.spec.nodes[0].name) as QuantizedConv2d;
  expect(conv.typeName()).toBe('QuantizedConvReLU62d');
  const six = conv.zeroPoint + Math.round(6 / conv.scale);
  expect(conv.outMax()).toBe(Math.min(255, six));
  const quant = q.getSubmodule('quant') as Quantize;
  const y = conv.call(quant.call(x)) as QTensor;
  expect(Math.max(...y.data)).toBeLessThanOrEqual(conv.outMax());
  // The whole net is quantized (Mul / Concat as QFunctional, AveragePool on uint8): it runs, within quantization error.
  const yq = (q.call(x) as Tensor).contiguous().data, yf = (importOnnx(bytes).call(x) as Tensor).contiguous().data;
  let worst = 0;
  for (let i = 0; i < yq.length; i++) worst = Math.max(worst, Math.abs(yq[i] - yf[i]));
  expect(worst).toBeLessThan(0.1 * Math.max(...Array.from(yf, Math.abs)));
});

describe("fallback 'float': unsupported parts stay in float between DeQuantize and Quantize", () => {
  function quantizeGraph(file: string, x: Tensor): { f: Tensor; q: Module; g: GraphModule } {
    const g = importOnnx(path.join(ONNX_DIR, file), { fallback: 'float' });
    const f = g.call(x) as Tensor;
    g.fuseModel();
    g.qconfig = qconfigByName('fbgemm');
    prepare(g, true);
    g.call(x);
    return { f, q: convert(g, true), g };
  }
  const close = (a: Tensor, b: Tensor, tol: number) => {
    const d = a.contiguous().data, e = b.contiguous().data;
    let worst = 0, amax = 0;
    for (let i = 0; i < d.length; i++) {
      worst = Math.max(worst, Math.abs(d[i] - e[i]));
      amax = Math.max(amax, Math.abs(e[i]));
    }
    expect(worst).toBeLessThan(tol * amax);
  };

  test('Conv -> Sigmoid (float) -> ReduceMean: quantize, run, save and reload', () => {
    const x = lcgInput([4, 3, 8, 8], 12);
    const { f, q, g } = quantizeGraph('unsupported.onnx', x);
    const sig = g.spec.nodes.find((n) => n.opType === 'Sigmoid')!;
    expect(sig.float).toBe(true);
    expect(q.getSubmodule(`${sig.name}_dequant0`).typeName()).toBe('DeQuantize');
    expect(q.getSubmodule(`${sig.name}_quant`).typeName()).toBe('Quantize');
    expect(q.getSubmodule(sig.name).typeName()).toBe('Sigmoid');
    const y = q.call(x) as Tensor;
    close(y, f, 0.05);
    const { model } = loadQuantizedModel(encodeQuantizedModel(q, { architecture: { arch: 'graph' }, qconfig: 'fbgemm' }));
    const z = (model.call(x) as Tensor).contiguous().data;
    expect(bytes(z).equals(bytes(y.contiguous().data))).toBe(true);
    expect(() => compileModel(q, { inputShape: [3, 8, 8] })).toThrow(/float parts, explicit asymmetric pads or quantized Concat \/ Mul \/ AveragePool of an imported graph/);
  });

  test('mixed net: nothing needs float; convs, ReLU6 clamp, Mul, Concat (QFunctional), AveragePool, MatMul quantized', () => {
    const e = expected.mixed;
    const x = lcgInput([8, ...e.input.slice(1)], 13);
    const { f, q, g } = quantizeGraph('mixed.onnx', x);
    expect(g.spec.nodes.filter((n) => n.float)).toEqual([]);
    expect([...q.modules()].filter((m) => m instanceof QuantizedConv2d).length).toBe(3);
    expect([...q.modules()].filter((m) => m instanceof QFunctional).length).toBe(2);
    close(q.call(x) as Tensor, f, 0.1);
  });
});

test('quantized cat (channels, channels_last) and mul / mul_relu equal torch 1.13 byte for byte (fixture qops.json)', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const qops: any = JSON.parse(fs.readFileSync(path.join(ONNX_DIR, 'qops.json'), 'utf8'));
  let checked = 0;
  for (const c of qops.cat) {
    const xs = c.inputs.map((x: { c: number; scale: number; zp: number; data: number[] }) =>
      new QTensor(Uint8Array.from(x.data), [2, x.c, c.h, c.w], x.scale, x.zp, 'channels_last'));
    const y = new QFunctional(c.scale, c.zp).cat(xs, 1);
    expect(Array.from(y.data)).toEqual(c.out);
    checked += y.numel;
  }
  for (const c of qops.mul) {
    const a = new QTensor(Uint8Array.from(c.a), [2, c.c, c.h, c.w], c.sa, c.za, 'channels_last');
    const b = new QTensor(Uint8Array.from(c.b), [2, c.c, c.h, c.w], c.sb, c.zb, 'channels_last');
    const f = new QFunctional(c.scale, c.zp);
    expect(Array.from(f.mul(a, b).data)).toEqual(c.out);
    expect(Array.from(f.mul(a, b, true).data)).toEqual(c.relu);
    checked += 2 * a.numel;
  }
  for (const c of qops.avg_pool2d) {
    const x = new QTensor(Uint8Array.from(c.x), [2, c.c, c.h, c.w], c.scale, c.zp, 'channels_last');
    const y = new AvgPool2d(c.k, c.s, c.p, c.count_include_pad).call(x) as QTensor;
    expect(y.shape).toEqual(c.out_shape);
    expect([y.scale, y.zeroPoint]).toEqual([c.scale, c.zp]);
    expect(Array.from(y.data)).toEqual(c.y);
    checked += y.numel;
  }
  expect(checked).toBeGreaterThan(8000);
});

describe('hand-built graphs (TensorFlow / Keras style): Transpose as a layout change, Reshape, MatMul + Add bias, Gemm transB=0', () => {
  const f32 = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
  const i64 = (v: number[]) => new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer);
  function model(perm: number[]): Uint8Array {
    const w = Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => Math.sin(i) * 0.3);
    return encodeOnnxModel({
      ir_version: 7, opset_import: [{ domain: '', version: 13 }], producer_name: 'test', producer_version: '0',
      graph: {
        name: 'g',
        node: [
          { name: 'conv', op_type: 'Conv', input: ['x', 'w'], output: ['c'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
          { name: 'relu', op_type: 'Relu', input: ['c'], output: ['r'], attribute: [] },
          { name: 'gap', op_type: 'GlobalAveragePool', input: ['r'], output: ['p'], attribute: [] },
          { name: 'nhwc', op_type: 'Transpose', input: ['p'], output: ['t'], attribute: [{ name: 'perm', type: 7, ints: perm }] },
          { name: 'flat', op_type: 'Reshape', input: ['t', 'shape'], output: ['f'], attribute: [] },
          { name: 'dense', op_type: 'MatMul', input: ['f', 'wd'], output: ['m'], attribute: [] },
          { name: 'bias', op_type: 'Add', input: ['m', 'bd'], output: ['a'], attribute: [] },
          { name: 'head', op_type: 'Gemm', input: ['a', 'wg'], output: ['y'], attribute: [] },
        ],
        initializer: [
          { name: 'w', dims: [4, 3, 3, 3], data_type: 1, raw_data: f32(w) },
          { name: 'shape', dims: [2], data_type: 7, raw_data: i64([0, -1]) },
          { name: 'wd', dims: [4, 5], data_type: 1, raw_data: f32(Array.from({ length: 20 }, (_, i) => Math.cos(i))) },
          { name: 'bd', dims: [5], data_type: 1, raw_data: f32([0.1, -0.2, 0.3, 0, 0.05]) },
          { name: 'wg', dims: [5, 2], data_type: 1, raw_data: f32([1, -1, 0.5, 0.25, -0.5, 2, 0, 1, 1, 0]) },
        ],
        input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, { dim_value: 3 }, { dim_value: 6 }, { dim_value: 6 }] } } } }],
        output: [{ name: 'y', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, { dim_value: 2 }] } } } }],
      },
    });
  }

  test('imports, matches ONNX Runtime in float, quantizes and runs on the native plan', async () => {
    const bytesOnnx = model([0, 2, 3, 1]);
    const g = importOnnx(bytesOnnx);
    expect(g.spec.nodes.map((n) => n.module?.type ?? n.op)).toEqual(['Conv2d', 'ReLU', 'AdaptiveAvgPool2d', 'transpose', 'reshape', 'Linear', 'Linear']);
    expect(g.spec.nodes[5].module).toEqual({ type: 'Linear', inFeatures: 4, outFeatures: 5, bias: true });
    const x = lcgInput([3, 3, 6, 6], 30);
    const ours = (g.call(x) as Tensor).contiguous().data;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const session = await ort.InferenceSession.create(Buffer.from(bytesOnnx), { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
    let theirs: Float32Array;
    try {
      theirs = (await session.run({ x: new ort.Tensor('float32', x.data, [...x.shape]) })).y.data as Float32Array;
    } finally {
      await session.release();
    }
    for (let i = 0; i < ours.length; i++) expect(Math.abs(ours[i] - theirs[i])).toBeLessThan(1e-5 * (1 + Math.abs(theirs[i])));
    g.fuseModel();
    g.qconfig = qconfigByName('default');
    prepare(g, true);
    g.call(x);
    const q = convert(g, true);
    const plan = compileModel(q, { inputShape: [3, 6, 6], maxBatch: 4 });
    expect(bytes(plan.runSync(x).data).equals(bytes((q.call(x) as Tensor).contiguous().data))).toBe(true);
  });

  test('a Transpose that moves data is refused, naming the node', () => {
    const m = decodeOnnxModel(model([0, 2, 3, 1]));
    m.graph.node.splice(2, 1); // no pooling: [N, 4, 6, 6] -> NHWC moves data
    m.graph.node[2].input[0] = 'r';
    m.graph.initializer.find((t) => t.name === 'wd')!.dims = [144, 5];
    m.graph.initializer.find((t) => t.name === 'wd')!.raw_data = f32(new Array(720).fill(0.01));
    const g = importOnnx(encodeOnnxModel(m));
    expect(() => g.call(lcgInput([1, 3, 6, 6], 1))).toThrow("graph node 'nhwc' (Transpose): perm (0, 2, 3, 1) on [1, 4, 6, 6] moves data; only layout-only transposes are supported");
  });
});

test('ptq export of an imported graph (float and int8) runs in ONNX Runtime: float to 1e-5, int8 equal to our ONNX-semantics import', async () => {
  const e = expected.mnv2_folded;
  const x = lcgInput([2, ...e.input.slice(1)], 31);
  const file = path.join(ONNX_DIR, 'mnv2_folded.onnx');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const run = async (b: Uint8Array) => {
    const s = await ort.InferenceSession.create(Buffer.from(b), { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
    try {
      return (await s.run({ input: new ort.Tensor('float32', x.data, [...x.shape]) })).logits.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const g = importOnnx(file);
  const yf = (g.call(x) as Tensor).contiguous().data, of = await run(exportOnnx(g, { arch: 'graph' }));
  for (let i = 0; i < yf.length; i++) expect(Math.abs(yf[i] - of[i])).toBeLessThan(1e-5 * (1 + Math.abs(yf[i])));
  g.fuseModel();
  g.qconfig = qconfigByName('fbgemm');
  prepare(g, true);
  g.call(x);
  const q = convert(g, true);
  const m = decodeOnnxModel(exportOnnx(q, { arch: 'graph' }));
  m.metadata_props = (m.metadata_props ?? []).filter((p) => p.key !== 'ptq_node.int8');
  const foreign = encodeOnnxModel(m);
  expect(bytes((importOnnx(foreign).call(x) as Tensor).contiguous().data).equals(bytes(await run(foreign)))).toBe(true);
  // Not exportable yet: a named error.
  const mixed = importOnnx(path.join(ONNX_DIR, 'mixed.onnx'));
  expect(() => exportOnnx(mixed, { arch: 'graph' })).toThrow('ONNX export: cannot export act1_clip (ReLU6)');
  const noClamp = importOnnx(path.join(ONNX_DIR, 'mixed.onnx'), { relu6: 'relu' });
  expect(() => exportOnnx(noClamp, { arch: 'graph' })).toThrow("ONNX export: graph node '/Mul' (Mul): mul of imported graphs are not exported yet");
});
