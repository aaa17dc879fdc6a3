// Int8 ONNX import (lib/io/onnx-import-int8.ts). Our own QOperator export re-imports with PyTorch
// semantics (float biases from the export's metadata): int8 outputs byte-identical to the original
// converted model, through the module forward and the native plan. The same graphs imported with
// ONNX semantics (metadata ignored: int32 bias, QuantizeLinear's division, MLAS QLinearAdd and
// QLinearGlobalAveragePool) give ONNX Runtime's outputs byte for byte. A hand-written QDQ graph
// imports to the same model as its QOperator form.
import * as fs from 'fs';
import * as path from 'path';
import { decodeOnnxModel, encodeOnnxModel, exportOnnx } from '../lib/io/onnx-export';
import { importOnnx, OnnxImportError } from '../lib/io/onnx-import';
import { ArchitectureSpec, createModel, FusableModel } from '../lib/models';
import { Module } from '../lib/nn/module';
import { QuantizedConv2d, Quantize } from '../lib/nn/quantized';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { compileModel } from '../lib/inference';
import { encodeQuantizedModel, loadQuantizedModel } from '../lib/io/model-file';
import { rows, smallInput, smallModel } from './helpers/fixtures';
import { detStateDict } from './helpers/det-weights';
import { toQdq } from './helpers/qdq';
import { int8Logits } from './helpers/int8';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

async function runOrt(model: Uint8Array, x: Tensor, level: 'all' | 'disabled'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(Buffer.from(model), {
    executionProviders: ['cpu'], graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1,
  });
  try {
    const c = x.contiguous();
    const out = await session.run({ input: new ort.Tensor('float32', c.data, [...c.shape]) });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}


function quantize(m: FusableModel, qconfig: string, calib: Tensor[]): Module {
  m.fuseModel();
  m.qconfig = qconfigByName(qconfig);
  prepare(m, true);
  for (const b of calib) m.call(b);
  return convert(m, true);
}

/** ptq-node's export without its 'ptq_node.int8' metadata: what any other tool would write. */
function foreign(onnx: Uint8Array): Uint8Array {
  const m = decodeOnnxModel(onnx);
  m.metadata_props = (m.metadata_props ?? []).filter((p) => p.key !== 'ptq_node.int8');
  return encodeOnnxModel(m);
}

const x = smallInput();
const cases: Array<[string, () => { q: Module; spec: ArchitectureSpec; x: Tensor }]> = [
  ['small MobileNetV2, fbgemm (per-channel, histogram)', () => ({ q: quantize(smallModel(), 'fbgemm', [rows(x, 0, 4), rows(x, 4, 4)]), spec: { arch: 'mobilenet_v2', numClasses: 10, widthMult: 0.5, invertedResidualSetting: [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]] }, x })],
  ['small MobileNetV2, default (per-tensor)', () => ({ q: quantize(smallModel(), 'default', [rows(x, 0, 4), rows(x, 4, 4)]), spec: { arch: 'mobilenet_v2', numClasses: 10, widthMult: 0.5, invertedResidualSetting: [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]] }, x })],
  ['ResNet-18 at 32x32, fbgemm', () => {
    const m = createModel({ arch: 'resnet18', numClasses: 10 });
    m.loadStateDict(detStateDict([...m.stateDict()].map(([k, t]) => [k, t.shape])));
    m.eval();
    const xr = new Tensor(x.data.slice(0, 4 * 3 * 28 * 28).subarray(0, 4 * 3 * 28 * 28), [4, 3, 28, 28]);
    return { q: quantize(m, 'fbgemm', [xr]), spec: { arch: 'resnet18', numClasses: 10 }, x: xr };
  }],
];

const measured: string[] = [];
afterAll(() => {
  if (process.env.PTQ_TEST_REPORT) console.log(measured.join('\n'));
});

describe.each(cases)('%s', (_name, make) => {
  let q: Module, onnx: Uint8Array, input: Tensor;
  beforeAll(() => {
    const c = make();
    q = c.q;
    input = c.x;
    onnx = exportOnnx(q, c.spec);
  });

  test('our export -> import: int8 outputs byte-identical to the original (module forward and native plan)', () => {
    const imported = importOnnx(onnx);
    const a = int8Logits(imported, input), b = int8Logits(q, input);
    expect([a.scale, a.zeroPoint]).toEqual([b.scale, b.zeroPoint]);
    expect(bytes(a.data).equals(bytes(b.data))).toBe(true);
    const plan = compileModel(imported, { inputShape: input.shape.slice(1) as number[], maxBatch: 8 });
    const y = plan.runSync(input), z = (q.call(input) as Tensor).contiguous();
    expect(bytes(y.data).equals(bytes(z.data))).toBe(true);
  });

  test('imported with ONNX semantics: ONNX Runtime\'s outputs byte for byte', async () => {
    const f = foreign(onnx);
    const imported = importOnnx(f);
    const ours = (imported.call(input) as Tensor).contiguous().data;
    for (const level of ['disabled', 'all'] as const) {
      const theirs = await runOrt(f, input, level);
      expect({ level, same: bytes(ours).equals(bytes(theirs)) }).toEqual({ level, same: true });
    }
    // For contrast (measured, not asserted): PyTorch semantics (float bias, multiply by 1/scale, torch's qadd) vs ORT.
    const torchSem = (importOnnx(onnx).call(input) as Tensor).contiguous().data;
    const theirs = await runOrt(f, input, 'all');
    let differ = 0;
    for (let i = 0; i < theirs.length; i++) if (torchSem[i] !== theirs[i]) differ++;
    measured.push(`${_name}: ONNX-semantics import == ORT (disabled, all); PyTorch-semantics import differs from ORT on ${differ}/${theirs.length} logits`);
    expect(differ).toBeGreaterThan(0); // so the equality above is not one both semantics would pass
    // PyTorch semantics need the float biases only our own export carries.
    expect(() => importOnnx(f, { semantics: 'pytorch' })).toThrow(/PyTorch semantics need the float biases/);
  });

  test('QDQ form (DequantizeLinear / float op / QuantizeLinear) imports to the QOperator model', async () => {
    const f = foreign(onnx);
    const qdq = toQdq(f);
    expect(decodeOnnxModel(qdq).graph.node.some((n) => n.op_type === 'QLinearConv')).toBe(false);
    const a = (importOnnx(qdq).call(input) as Tensor).contiguous().data;
    const b = (importOnnx(f).call(input) as Tensor).contiguous().data;
    expect(bytes(a).equals(bytes(b))).toBe(true);
    // ORT fuses the QDQ groups into its QLinear kernels at level 'all'.
    const theirs = await runOrt(qdq, input, 'all');
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== theirs[i]) differ++;
    measured.push(`${_name}: QDQ import vs ORT 'all': ${differ}/${a.length} logits differ`);
    expect(differ).toBe(0);
  });

  test('u8 weights with a zero point (128) give the same outputs as the s8 form, and ORT\'s', async () => {
    const m = decodeOnnxModel(foreign(onnx));
    const inits = new Map(m.graph.initializer.map((t) => [t.name, t]));
    let converted = 0;
    for (const n of m.graph.node) {
      if (n.op_type !== 'QLinearConv') continue;
      const w = inits.get(n.input[3])!, z = inits.get(n.input[5])!;
      const src = new Int8Array(Uint8Array.from(w.raw_data).buffer);
      w.data_type = 2;
      w.raw_data = Uint8Array.from(src, (v) => v + 128);
      const zn = `${n.input[5]}__u8_${converted}`;
      const count = z.dims.length ? Number(z.dims[0]) : 1;
      m.graph.initializer.push({ name: zn, dims: z.dims.map(Number), data_type: 2, raw_data: new Uint8Array(count).fill(128) });
      n.input[5] = zn;
      converted++;
    }
    expect(converted).toBeGreaterThan(5);
    const u8 = encodeOnnxModel(m);
    const a = (importOnnx(u8).call(input) as Tensor).contiguous().data;
    const b = (importOnnx(foreign(onnx)).call(input) as Tensor).contiguous().data;
    expect(bytes(a).equals(bytes(b))).toBe(true);
    const theirs = await runOrt(u8, input, 'all');
    expect(bytes(a).equals(bytes(theirs))).toBe(true);
  });

  test('an imported int8 model saves to a model file and reloads with the same outputs (both semantics)', () => {
    for (const bytesIn of [onnx, foreign(onnx)]) {
      const imported = importOnnx(bytesIn);
      const file = encodeQuantizedModel(imported, { architecture: { arch: 'graph' }, qconfig: 'imported' });
      const { model } = loadQuantizedModel(file);
      const a = (model.call(input) as Tensor).contiguous().data, b = (imported.call(input) as Tensor).contiguous().data;
      expect(bytes(a).equals(bytes(b))).toBe(true);
      const types = (m: Module) => [...m.modules()].map((x) => `${x.typeName()}${(x as Quantize).onnxDivide ? '/divide' : ''}${(x as QuantizedConv2d).onnxBias ? '/int32bias' : ''}`);
      expect(types(model)).toEqual(types(imported));
    }
  });

  test('int8 errors: an unsupported op names node and op type; requantization mismatches are named', () => {
    const m = decodeOnnxModel(foreign(onnx));
    const conv = m.graph.node.find((n) => n.op_type === 'QLinearConv' && n.name !== m.graph.node[1].name)!;
    conv.op_type = 'QLinearConvTranspose';
    expect(() => importOnnx(encodeOnnxModel(m))).toThrow(new RegExp(`node '${conv.name.replace(/\./g, '\\.')}' \\(QLinearConvTranspose\\): op type 'QLinearConvTranspose' is not supported in an int8 model`));
    conv.op_type = 'QLinearConv';
    const init = m.graph.initializer.find((t) => t.name === conv.input[1])!;
    const other = { ...init, name: 'other_scale', raw_data: new Uint8Array(new Float32Array([0.5]).buffer) };
    m.graph.initializer.push(other);
    conv.input[1] = 'other_scale';
    expect(() => importOnnx(encodeOnnxModel(m))).toThrow(OnnxImportError);
    expect(() => importOnnx(encodeOnnxModel(m))).toThrow(/but the node says 0\.5/);
  });
});

test('QLinearConcat (com.microsoft) and its QDQ form: ONNX Runtime\'s outputs byte for byte (all 256 input levels, 12 output scales)', async () => {
  const f32 = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
  const u8 = (v: number[]) => Uint8Array.from(v);
  const w = Int8Array.from({ length: 6 * 4 }, (_, i) => ((i * 37) % 255) - 127);
  const build = (sc: number, zc: number) => encodeOnnxModel({
    ir_version: 7, opset_import: [{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }], producer_name: 'test', producer_version: '0',
    graph: {
      name: 'g',
      node: [
        { name: 'q', op_type: 'QuantizeLinear', input: ['x', 'sa', 'za'], output: ['qa'], attribute: [] },
        { name: 'conv', op_type: 'QLinearConv', input: ['qa', 'sa', 'za', 'w', 'sw', 'zw', 'sb', 'zb', 'b'], output: ['qb'], attribute: [] },
        { name: 'cat', op_type: 'QLinearConcat', domain: 'com.microsoft', input: ['sc', 'zc', 'qa', 'sa', 'za', 'qb', 'sb', 'zb'], output: ['qc'], attribute: [{ name: 'axis', type: 2, i: 1 }] },
        { name: 'dq', op_type: 'DequantizeLinear', input: ['qc', 'sc', 'zc'], output: ['y'], attribute: [] },
      ],
      initializer: [
        { name: 'sa', dims: [], data_type: 1, raw_data: f32([0.02]) }, { name: 'za', dims: [], data_type: 2, raw_data: u8([128]) },
        { name: 'w', dims: [6, 4, 1, 1], data_type: 3, raw_data: new Uint8Array(w.buffer) },
        { name: 'sw', dims: [], data_type: 1, raw_data: f32([0.01]) }, { name: 'zw', dims: [], data_type: 3, raw_data: u8([0]) },
        { name: 'sb', dims: [], data_type: 1, raw_data: f32([0.05]) }, { name: 'zb', dims: [], data_type: 2, raw_data: u8([100]) },
        { name: 'b', dims: [6], data_type: 6, raw_data: new Uint8Array(new Int32Array([5, -300, 77, 0, 1000, -4]).buffer) },
        { name: 'sc', dims: [], data_type: 1, raw_data: f32([sc]) }, { name: 'zc', dims: [], data_type: 2, raw_data: u8([zc]) },
      ],
      input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, { dim_value: 4 }, { dim_value: 8 }, { dim_value: 8 }] } } } }],
      output: [{ name: 'y', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, { dim_value: 10 }, { dim_value: 8 }, { dim_value: 8 }] } } } }],
    },
  });
  // Every uint8 level of the quantized input in every channel.
  const x = new Tensor(Float32Array.from({ length: 4 * 64 * 4 }, (_, i) => ((((i * 7) + (i >> 8)) % 256) - 128) * 0.02), [4, 4, 8, 8]);
  const run = async (bytesIn: Uint8Array, level: 'all' | 'disabled') => {
    const session = await ort.InferenceSession.create(Buffer.from(bytesIn), { executionProviders: ['cpu'], graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1 });
    try {
      return (await session.run({ x: new ort.Tensor('float32', x.data, [...x.shape]) })).y.data as Float32Array;
    } finally {
      await session.release();
    }
  };
  for (let k = 0; k < 12; k++) {
    const sc = Math.fround(0.011 + 0.0173 * k * (1 + Math.sin(k))), zc = (37 * k + 11) % 256;
    const onnxBytes = build(sc, zc);
    const ours = (importOnnx(onnxBytes).call(x) as Tensor).contiguous().data;
    for (const level of ['disabled', 'all'] as const) expect({ k, level, same: bytes(ours).equals(bytes(await run(onnxBytes, level))) }).toEqual({ k, level, same: true });
    if (k < 2) {
      const { model } = loadQuantizedModel(encodeQuantizedModel(importOnnx(onnxBytes), { architecture: { arch: 'graph' }, qconfig: 'imported' }));
      expect(model.getSubmodule('cat').typeName()).toBe('QLinearConcat');
      expect(bytes((model.call(x) as Tensor).contiguous().data).equals(bytes(ours))).toBe(true);
      const qdq = toQdq(onnxBytes);
      const fromQdq = (importOnnx(qdq).call(x) as Tensor).contiguous().data;
      expect(bytes(fromQdq).equals(bytes(ours))).toBe(true);
      expect(bytes(fromQdq).equals(bytes(await run(qdq, 'all')))).toBe(true);
    }
  }
});
