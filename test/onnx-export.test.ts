// ONNX export run in ONNX Runtime (onnxruntime-node, CPU), graph optimizations 'all' and 'disabled'.
// Float graphs give our float outputs to 1e-4. Int8 QOperator graphs: every quantized op within one
// step of ours given the same input; the logits exactly equal to our kernels run with the int32 bias
// ONNX stores (the only numeric change: ONNX rounds the bias to int32, PyTorch keeps it in float);
// against our own int8 logits, within one step on the fixture model (one-step differences propagate
// in deep random-weight nets, so there the drift is measured and bounded by the quantization error).
// Small fixture MobileNetV2, full-size MobileNetV2 at 28x28, ResNet-18 at 32x32, `ptq export-onnx`.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FashionMnist } from '../lib/data/datasets';
import { decodeOnnxModel, encodeOnnxModel, exportOnnx, OnnxModelProto } from '../lib/io/onnx-export';
import { saveQuantizedModel } from '../lib/io/model-file';
import { writeSafetensors } from '../lib/io/safetensors';
import { RawTensor } from '../lib/io/types';
import { ArchitectureSpec, createModel, FusableModel } from '../lib/models';
import { deepCopy, Module } from '../lib/nn/module';
import { QFunctional, QuantizedConv2d, QuantizedLinear } from '../lib/nn/quantized';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { QTensor } from '../lib/qtensor';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { rows, smallExpected, smallInput, smallModel } from './helpers/fixtures';
import { int8Logits } from './helpers/int8';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');

const root = path.join(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-onnx-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const LEVELS = ['all', 'disabled'] as const;

/** Runs an exported graph on ORT's CPU provider (one thread: the box is shared). */
async function runOrt(bytes: Uint8Array, x: Tensor, level: (typeof LEVELS)[number]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(Buffer.from(bytes), {
    executionProviders: ['cpu'], graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1,
  });
  try {
    const c = x.contiguous();
    const out = await session.run({ input: new ort.Tensor('float32', c.data, [...c.shape]) });
    const y = out.logits;
    return { data: y.data as Float32Array, dims: y.dims };
  } finally {
    await session.release();
  }
}

/** Max |ours - ORT| and whether every element is within atol + rtol * |ours|. */
function compareFloat(ours: Float32Array, theirs: Float32Array, tol = 1e-4): { maxAbs: number; ok: boolean } {
  let maxAbs = 0, ok = ours.length === theirs.length;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - theirs[i]);
    maxAbs = Math.max(maxAbs, d);
    if (!(d <= tol + tol * Math.abs(ours[i]))) ok = false;
  }
  return { maxAbs, ok };
}

/** ORT's float logits back to uint8 (DequantizeLinear is exact), compared with ours step by step. */
function compareInt8(ours: QTensor, theirs: Float32Array): { maxSteps: number; differing: number } {
  let maxSteps = 0, differing = 0;
  for (let i = 0; i < ours.data.length; i++) {
    const q = Math.round(theirs[i] / ours.scale) + ours.zeroPoint;
    const d = Math.abs(q - ours.data[i]);
    maxSteps = Math.max(maxSteps, d);
    if (d) differing++;
  }
  return { maxSteps, differing };
}


/**
 * Seeded N(0, 1) samples (Box-Muller over a 32-bit LCG). Math is bound locally: a global lookup
 * per element is slow in jest's vm context, and a ResNet has millions of weights.
 */
function normals(n: number, seed: number): Float32Array {
  const { log, cos, sqrt, PI, imul } = Math;
  const d = new Float32Array(n);
  let s = seed >>> 0;
  const u = () => ((s = (imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  for (let i = 0; i < n; i++) d[i] = sqrt(-2 * log(u())) * cos(2 * PI * u());
  return d;
}

/** Random He-normal weights, BN near identity (like test/cli.test.ts's). */
function randomWeights(m: Module, seed: number): Map<string, RawTensor> {
  const tensors = new Map<string, RawTensor>();
  let k = 0;
  for (const [name, t] of m.stateDict()) {
    const d = normals(t.numel, seed * 1000 + k++);
    const fan = t.shape.length === 4 ? t.shape[0] * t.shape[2] * t.shape[3] : t.shape[t.shape.length - 1] || 1;
    const [mul, add] = name.endsWith('running_var') ? [0.15, 1] : name.endsWith('running_mean') || name.endsWith('.bias') ? [0.1, 0]
      : name.endsWith('num_batches_tracked') ? [0, 0] : t.shape.length === 1 ? [0.1, 1] : [Math.sqrt(2 / fan), 0];
    for (let i = 0; i < d.length; i++) d[i] = d[i] * mul + add;
    if (name.endsWith('running_var')) for (let i = 0; i < d.length; i++) d[i] = Math.max(d[i], 0.3);
    tensors.set(name, { dtype: 'float32', shape: [...t.shape], data: d });
  }
  return tensors;
}

function zooModel(spec: ArchitectureSpec, weights: Map<string, RawTensor>): FusableModel {
  const m = createModel(spec);
  const sd = new Map<string, Tensor>();
  for (const [k, t] of weights) sd.set(k, new Tensor((t.data as Float32Array).slice(), t.shape));
  m.loadStateDict(sd);
  return m.eval();
}

function quantize(m: FusableModel, qconfig: string, calib: Tensor[]): Module {
  m.fuseModel();
  m.qconfig = qconfigByName(qconfig);
  prepare(m, true);
  for (const b of calib) m.call(b);
  return convert(m, true);
}

function normalInput(shape: number[], seed: number): Tensor {
  return new Tensor(normals(shape.reduce((a, b) => a * b, 1), seed), shape);
}

const fmnist = new FashionMnist(path.join(root, 'assets', 'fashion-mnist'), 'train');
const measured: Record<string, string> = {};
afterAll(() => {
  // The measured agreement, printed on request: PTQ_TEST_REPORT=1 npx jest test/onnx-export.test.ts
  if (process.env.PTQ_TEST_REPORT) console.log(Object.entries(measured).map(([k, v]) => `${k}: ${v}`).join('\n'));
});

async function expectFloatMatches(name: string, m: Module, spec: ArchitectureSpec, x: Tensor): Promise<Uint8Array> {
  const bytes = exportOnnx(m, spec, { float: true });
  const ours = m.call(x) as Tensor;
  for (const level of LEVELS) {
    const y = await runOrt(bytes, x, level);
    expect(y.dims).toEqual(ours.shape);
    const c = compareFloat(ours.data, y.data);
    measured[`${name} float ${level}`] = `max |ours - ORT| = ${c.maxAbs.toExponential(2)} (max |logit| ${Math.max(...Array.from(ours.data, Math.abs)).toFixed(2)})`;
    expect(c.ok).toBe(true);
  }
  return bytes;
}

/**
 * The int8 graph against our int8 model (see the header). `endToEnd`: the bound on ORT vs our own
 * logits, in steps; without it that drift is only bounded by the quantization error vs `floatLogits`.
 */
async function expectInt8Matches(name: string, q: Module, spec: ArchitectureSpec, x: Tensor,
  o: { endToEnd?: number; floatLogits?: Float32Array } = {}): Promise<Uint8Array> {
  const bytes = exportOnnx(q, spec);
  const ours = int8Logits(q, x);
  const onnxBias = int8Logits(withOnnxBias(q, bytes), x);
  for (const level of LEVELS) {
    const y = await runOrt(bytes, x, level);
    expect(y.dims).toEqual(ours.shape);
    const c = compareInt8(ours, y.data), e = compareInt8(onnxBias, y.data);
    measured[`${name} int8 ${level}`] = `vs ours max ${c.maxSteps} step(s), ${c.differing}/${ours.data.length} logits differ; ` +
      `vs ours with ONNX's int32 bias max ${e.maxSteps} step(s), ${e.differing} differ (scale ${ours.scale.toPrecision(4)})`;
    expect(e.maxSteps).toBeLessThanOrEqual(1);
    if (o.endToEnd !== undefined) expect(c.maxSteps).toBeLessThanOrEqual(o.endToEnd);
    if (o.floatLogits) {
      const steps = (v: Float32Array | Uint8Array, i: number, isQ: boolean) => (isQ ? v[i] - ours.zeroPoint : v[i] / ours.scale);
      let oursErr = 0, ortErr = 0;
      for (let i = 0; i < o.floatLogits.length; i++) {
        const f = o.floatLogits[i] / ours.scale;
        oursErr = Math.max(oursErr, Math.abs(steps(ours.data, i, true) - f));
        ortErr = Math.max(ortErr, Math.abs(steps(y.data, i, false) - f));
      }
      measured[`${name} int8 ${level} vs float`] = `ours max ${oursErr.toFixed(1)} steps, ORT max ${ortErr.toFixed(1)} steps`;
      expect(ortErr).toBeLessThanOrEqual(2 * oursErr + 1);
    }
  }
  const ops = await opByOp(q, bytes, x);
  measured[`${name} int8 op by op`] = `${ops.ops} ops, max ${ops.maxSteps} step(s), ${ops.differing}/${ops.total} values differ ${JSON.stringify(ops.byOp)}`;
  expect(ops.maxSteps).toBeLessThanOrEqual(1);
  return bytes;
}

/** Initializer lookup of a decoded graph: scalar values and int32 vectors. */
function initializers(model: OnnxModelProto) {
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const raw = (name: string) => Buffer.from(inits.get(name)!.raw_data);
  return {
    has: (name: string) => inits.has(name),
    scalar: (name: string): number => (inits.get(name)!.data_type === 1 ? raw(name).readFloatLE(0) : raw(name).readUInt8(0)),
    int32: (name: string): Int32Array => {
      const b = raw(name);
      return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    },
  };
}

/**
 * A copy of the int8 model whose float biases are replaced by the exported int32 biases times
 * x_scale * w_scale: what ONNX computes, in our kernels. If the export is faithful, ORT equals it.
 */
function withOnnxBias(q: Module, bytes: Uint8Array): Module {
  const c = deepCopy(q);
  const model = decodeOnnxModel(bytes);
  const init = initializers(model);
  for (const n of model.graph.node) {
    const b = n.op_type === 'QLinearConv' ? n.input[8] : n.op_type === 'QGemm' ? n.input[6] : undefined;
    if (!b) continue;
    const m = c.getSubmodule(n.name.replace(/\.(conv|gemm)$/, '')) as QuantizedConv2d | QuantizedLinear;
    const sx = Math.fround(init.scalar(n.input[1])), ws = m.weight.scale, bias = init.int32(b);
    for (let j = 0; j < bias.length; j++) m.bias![j] = bias[j] * Math.fround(sx * ws[ws.length === 1 ? 0 : j]);
  }
  return c;
}

const QOPS = new Set(['QuantizeLinear', 'QLinearConv', 'QLinearAdd', 'MaxPool', 'QLinearGlobalAveragePool', 'QGemm']);

/** NCHW (ORT) <-> NHWC (ours) for 4-D uint8 data; other ranks are the same order. */
function nchwToNhwc(d: Uint8Array, shape: readonly number[]): Uint8Array {
  if (shape.length !== 4) return d;
  const [n, c, h, w] = shape, hw = h * w, out = new Uint8Array(d.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < hw; p++) out[(b * hw + p) * c + ch] = d[(b * c + ch) * hw + p];
  return out;
}

/**
 * Op by op: every quantized node of the exported graph, fed with ORT's own input values, against
 * our module on those same values. Separates the exporter's per-op agreement (one step at most)
 * from the propagation of one-step differences through a deep network.
 */
async function opByOp(q: Module, bytes: Uint8Array, x: Tensor): Promise<{ ops: number; maxSteps: number; differing: number; total: number; byOp: Record<string, string> }> {
  const model: OnnxModelProto = decodeOnnxModel(bytes);
  const { has, scalar } = initializers(model);
  const module = (name: string): Module | undefined => {
    try {
      return q.getSubmodule(name);
    } catch {
      return undefined;
    }
  };
  const nodes = model.graph.node.filter((n) => QOPS.has(n.op_type) && (n.name === 'mean' || module(n.name)));
  const wanted = new Set<string>();
  for (const n of nodes) for (const v of [...n.input, n.output[0]]) if (v && v !== 'input' && !has(v)) wanted.add(v);
  wanted.delete('logits');
  for (const v of wanted) model.graph.output.push({ name: v, type: { tensor_type: { elem_type: 2 } } } as OnnxModelProto['graph']['output'][number]);
  const session = await ort.InferenceSession.create(Buffer.from(encodeOnnxModel(model)), { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
  const c = x.contiguous();
  const res = await session.run({ input: new ort.Tensor('float32', c.data, [...c.shape]) });
  await session.release();
  // The qparams of every uint8 value, propagated in node order (output qparams inputs of each op).
  const OUT_QPARAMS: Record<string, [number, number]> = { QuantizeLinear: [1, 2], QLinearConv: [6, 7], QLinearAdd: [6, 7], QLinearGlobalAveragePool: [3, 4], QGemm: [7, 8] };
  const qparams = new Map<string, [number, number]>();
  for (const n of model.graph.node) {
    const io = OUT_QPARAMS[n.op_type];
    if (io) qparams.set(n.output[0], [Math.fround(scalar(n.input[io[0]])), scalar(n.input[io[1]])]);
    else if (n.op_type === 'MaxPool' || n.op_type === 'Flatten') {
      const p = qparams.get(n.input[0]);
      if (p) qparams.set(n.output[0], p);
    }
  }
  const qt = (v: string) => {
    const t = res[v];
    const [s, z] = qparams.get(v)!;
    return new QTensor(nchwToNhwc(t.data as Uint8Array, t.dims), t.dims, s, z);
  };
  let maxSteps = 0, differing = 0, total = 0;
  const byOp: Record<string, [number, number]> = {};
  for (const n of nodes) {
    const m = module(n.name);
    let ours: QTensor;
    if (n.op_type === 'QuantizeLinear') ours = m!.call(c) as QTensor;
    else if (n.op_type === 'QLinearAdd') {
      const f = m as QFunctional;
      ours = n.name.endsWith('skip_add') ? f.add(qt(n.input[0]), qt(n.input[3])) : f.add_relu(qt(n.input[0]), qt(n.input[3]));
    } else if (n.name === 'mean') ours = qt(n.input[0]).mean([2, 3], true);
    else ours = m!.call(qt(n.input[0])) as QTensor;
    const t = res[n.output[0]];
    const theirs = nchwToNhwc(t.data as Uint8Array, t.dims);
    expect(theirs.length).toBe(ours.data.length);
    for (let i = 0; i < theirs.length; i++) {
      const d = Math.abs(theirs[i] - ours.data[i]);
      if (d) differing++;
      maxSteps = Math.max(maxSteps, d);
    }
    total += theirs.length;
    const acc = (byOp[n.op_type] ??= [0, 0]);
    for (let i = 0; i < theirs.length; i++) if (theirs[i] !== ours.data[i]) acc[0]++;
    acc[1] += theirs.length;
  }
  return { ops: nodes.length, maxSteps, differing, total, byOp: Object.fromEntries(Object.entries(byOp).map(([k, [d, t]]) => [k, `${d}/${t}`])) };
}

function opTypes(bytes: Uint8Array): Set<string> {
  return new Set(decodeOnnxModel(bytes).graph.node.map((n) => `${n.domain ? n.domain + '.' : ''}${n.op_type}`));
}

describe('small MobileNetV2 fixture', () => {
  const e = smallExpected();
  const spec: ArchitectureSpec = { arch: 'mobilenet_v2', numClasses: e.num_classes, widthMult: e.width_mult, invertedResidualSetting: e.setting };
  const x = smallInput();

  test('float, batch norm folded (fuseModel): Conv/Relu/Add/GlobalAveragePool/Flatten/Gemm, equal to 1e-4', async () => {
    const m = smallModel();
    m.fuseModel();
    const bytes = await expectFloatMatches('small mnv2 fused', m, spec, x);
    expect([...opTypes(bytes)].sort()).toEqual(['Add', 'Conv', 'Flatten', 'Gemm', 'GlobalAveragePool', 'Relu']);
    const model = decodeOnnxModel(bytes);
    expect(model.opset_import.map((o) => ({ domain: o.domain ?? '', version: o.version }))).toEqual([{ domain: '', version: 13 }]);
    expect(model.graph.input[0].type.tensor_type.shape.dim).toEqual([{ dim_param: 'N' }, { dim_value: 3 }, { dim_param: 'H' }, { dim_param: 'W' }]);
    expect(model.graph.output[0].name).toBe('logits');
  });

  test('float, not fused: BatchNormalization nodes, equal to 1e-4', async () => {
    const bytes = await expectFloatMatches('small mnv2 unfused', smallModel(), spec, x);
    expect(opTypes(bytes).has('BatchNormalization')).toBe(true);
  });

  /** The fixture quantized with torch's qparams (as test/int8-model.test.ts): independent of our float kernels. */
  function torchQuantized(qconfig: string): Module {
    const q = quantize(smallModel(), qconfig, [rows(x, 0, 4), rows(x, 4, 4)]);
    for (const o of e[qconfig].observed) Object.assign(q.getSubmodule(o.name), { scale: Math.fround(o.scale), zeroPoint: o.zero_point });
    return q;
  }

  test.each([['default'], ['fbgemm']])('int8 (%s qconfig, torch qparams): QOperator graph, every logit within one step', async (qconfig) => {
    const bytes = await expectInt8Matches(`small mnv2 ${qconfig}`, torchQuantized(qconfig), spec, x, { endToEnd: 1 });
    expect([...opTypes(bytes)].sort()).toEqual([
      'DequantizeLinear', 'Flatten', 'QLinearConv', 'QuantizeLinear', 'com.microsoft.QGemm', 'com.microsoft.QLinearAdd', 'com.microsoft.QLinearGlobalAveragePool',
    ]);
    const model = decodeOnnxModel(bytes);
    expect(model.graph.node.filter((n) => n.op_type === 'QuantizeLinear')).toHaveLength(1);
    expect(model.graph.node.filter((n) => n.op_type === 'DequantizeLinear')).toHaveLength(1);
    expect(model.opset_import.map((o) => ({ domain: o.domain ?? '', version: o.version }))).toEqual([{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
  });

  test('a fused ReLU whose output zero point is not 0 becomes DequantizeLinear -> Relu -> QuantizeLinear', async () => {
    const q = torchQuantized('fbgemm');
    // Shift one ConvReLU's output range so that zero_point = 20: the clamp at 20 is the ReLU.
    const conv = q.getSubmodule('features.1.conv.0.0') as unknown as { scale: number; zeroPoint: number };
    Object.assign(conv, { zeroPoint: 20 });
    const bytes = await expectInt8Matches('small mnv2 relu zp=20', q, spec, x, { endToEnd: 1 });
    expect(opTypes(bytes).has('Relu')).toBe(true);
  });

  test('bad calls are clear errors', () => {
    const m = smallModel();
    expect(() => exportOnnx(m, 'resnet18')).toThrow(/not a resnet18/);
    expect(() => exportOnnx(m, { ...spec, numClasses: 3 })).toThrow(/classes/);
    expect(() => exportOnnx(m, spec, { float: false })).toThrow(/not converted/);
    const q = quantize(smallModel(), 'default', [rows(x, 0, 2)]);
    expect(() => exportOnnx(q, spec, { float: true })).toThrow(/int8/);
  });
});

describe('full-size models with random weights', () => {
  test('mobilenet_v2 at 28x28 (fbgemm): float, and int8 equal to ours with the int32 bias', async () => {
    const spec: ArchitectureSpec = { arch: 'mobilenet_v2', numClasses: 10 };
    const w = randomWeights(createModel(spec), 3);
    const x = fmnist.batch(100, 6).images;
    const f = zooModel(spec, w);
    f.fuseModel();
    await expectFloatMatches('mobilenet_v2 28x28', f, spec, x);
    const q = quantize(zooModel(spec, w), 'fbgemm', [fmnist.batch(0, 16).images, fmnist.batch(16, 16).images]);
    await expectInt8Matches('mobilenet_v2 28x28 fbgemm', q, spec, x, { floatLogits: (f.call(x) as Tensor).data });
  });

  test('resnet18 at 32x32 (fbgemm): float, and int8 equal to ours with the int32 bias (MaxPool on uint8, add_relu)', async () => {
    const spec: ArchitectureSpec = { arch: 'resnet18', numClasses: 10 };
    const w = randomWeights(createModel(spec), 5);
    const x = normalInput([4, 3, 32, 32], 11);
    const f = zooModel(spec, w);
    f.fuseModel();
    await expectFloatMatches('resnet18 32x32', f, spec, x);
    const q = quantize(zooModel(spec, w), 'fbgemm', [normalInput([8, 3, 32, 32], 12), x]);
    const bytes = await expectInt8Matches('resnet18 32x32 fbgemm', q, spec, x, { floatLogits: (f.call(x) as Tensor).data });
    expect(opTypes(bytes).has('MaxPool')).toBe(true);
  });
});

describe('ptq export-onnx', () => {
  function ptq(args: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), ...args], { encoding: 'utf8' });
  }
  const spec: ArchitectureSpec = { arch: 'mobilenet_v2', numClasses: 10 };
  const weights = path.join(dir, 'w.safetensors');
  const w = randomWeights(createModel(spec), 7);
  const x = fmnist.batch(200, 4).images;

  test('a quantized model file to int8 ONNX, and float weights (--float --arch --weights) to float ONNX', async () => {
    writeSafetensors(weights, w);
    const q = quantize(zooModel(spec, w), 'default', [fmnist.batch(0, 16).images]);
    const model = path.join(dir, 'm.safetensors');
    saveQuantizedModel(model, q, { architecture: spec, qconfig: 'default' });

    const out = path.join(dir, 'm.onnx');
    const r = ptq(['export-onnx', model, out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ out, dtype: 'int8', architecture: spec, bytes: fs.statSync(out).size });
    const bytes = fs.readFileSync(out);
    const y = await runOrt(bytes, x, 'all');
    expect(compareInt8(int8Logits(withOnnxBias(q, bytes), x), y.data).maxSteps).toBeLessThanOrEqual(1);

    const fout = path.join(dir, 'f.onnx');
    const r2 = ptq(['export-onnx', '--float', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', weights, fout]);
    expect(r2.status).toBe(0);
    expect(r2.stdout).toMatch(/wrote .*f\.onnx: mobilenet_v2 float32/);
    const f = zooModel(spec, w);
    const yf = await runOrt(fs.readFileSync(fout), x, 'all');
    expect(compareFloat((f.call(x) as Tensor).data, yf.data).ok).toBe(true);
  });

  test('bad arguments are clear errors', () => {
    const r1 = ptq(['export-onnx', path.join(dir, 'missing.safetensors'), path.join(dir, 'x.onnx')]);
    expect(r1.status).toBe(1);
    const r2 = ptq(['export-onnx', path.join(dir, 'x.onnx')]);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/--arch and --weights/);
    const r3 = ptq(['export-onnx', weights, path.join(dir, 'x.onnx')]);
    expect(r3.status).toBe(1);
    expect(r3.stderr).toMatch(/not a ptq-node quantized model/);
    const r4 = ptq(['export-onnx', '--float', path.join(dir, 'm.safetensors'), path.join(dir, 'x.onnx')]);
    expect(r4.status).toBe(1);
    expect(r4.stderr).toMatch(/--float exports a float model/);
  });
});
