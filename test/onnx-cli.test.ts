// `ptq quantize --onnx` / `ptq eval --onnx` / eval of the saved model file without the ONNX file,
// run as a user would (node bin/ptq.js, needs `npm run build`), on the torch.onnx MobileNetV2 fixture.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openDataset } from '../lib/data/datasets';
import { encodeOnnxModel, exportOnnx } from '../lib/io/onnx-export';
import { smallModel } from './helpers/fixtures';
import { importOnnx } from '../lib/io/onnx-import';
import { loadQuantizedModel } from '../lib/io/model-file';
import { Tensor } from '../lib/tensor';
import { qconfigByName, quantizeModel } from '../lib/workflow';
import { refillOnnx } from './helpers/det-weights';

const root = path.join(__dirname, '..');
const data = path.join(root, 'assets', 'fashion-mnist');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-onnx-cli-'));
const onnxFile = path.join(dir, 'mnv2.onnx');
const modelFile = path.join(dir, 'M.safetensors');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function ptq(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), ...args], { encoding: 'utf8' });
}

beforeAll(() => {
  fs.writeFileSync(onnxFile, encodeOnnxModel(refillOnnx(fs.readFileSync(path.join(root, 'test', 'fixtures', 'onnx-import', 'mnv2.onnx')))));
});

test('ptq quantize --onnx, then ptq eval M.safetensors without the ONNX file: the in-process int8 logits', () => {
  const q = ptq(['quantize', '--onnx', onnxFile, '--dataset', `fashion-mnist:${data}`, '--calib-batches', '2', '--batch-size', '8',
    '--qconfig', 'fbgemm', '--out', modelFile, '--json']);
  expect(q.stderr).toBe('');
  expect(q.status).toBe(0);
  expect(JSON.parse(q.stdout)).toMatchObject({ out: modelFile, qconfig: 'fbgemm', calibImages: 16 });

  const logits = path.join(dir, 'logits.bin');
  const e = ptq(['eval', modelFile, '--dataset', `fashion-mnist:${data}`, '--limit', '20', '--batch-size', '10', '--save-logits', logits, '--json']);
  expect(e.stderr).toBe('');
  expect(e.status).toBe(0);
  expect(JSON.parse(e.stdout).count).toBe(20);

  // The same flow in process: identical float logits (dequantized int8 outputs), byte for byte.
  const ds = openDataset(`fashion-mnist:${data}`, 'train');
  const model = quantizeModel(importOnnx(onnxFile), { qconfig: qconfigByName('fbgemm'), calibration: ds, calibBatches: 2, batchSize: 8 });
  const test = openDataset(`fashion-mnist:${data}`, 'test').batch(0, 20);
  const ours = (model.call(test.images) as Tensor).contiguous().data;
  const saved = fs.readFileSync(logits);
  expect(saved.equals(Buffer.from(ours.buffer, ours.byteOffset, ours.byteLength))).toBe(true);
  // And the reloaded file (graph description in its metadata) is that model.
  const { model: loaded, info } = loadQuantizedModel(modelFile);
  expect(info.architecture).toEqual({ arch: 'graph', source: 'mnv2.onnx' });
  const again = (loaded.call(test.images) as Tensor).contiguous().data;
  expect(Buffer.from(again.buffer, again.byteOffset, again.byteLength).equals(saved)).toBe(true);

  // export-onnx of the imported model, then eval of that ONNX: the same logits (PyTorch semantics carried in its metadata).
  const exported = path.join(dir, 'M.onnx');
  const x = ptq(['export-onnx', modelFile, exported, '--json']);
  expect(x.stderr).toBe('');
  expect(JSON.parse(x.stdout)).toMatchObject({ dtype: 'int8', architecture: { arch: 'graph' } });
  const logits2 = path.join(dir, 'logits2.bin');
  const e2 = ptq(['eval', '--onnx', exported, '--dataset', `fashion-mnist:${data}`, '--limit', '20', '--batch-size', '10', '--save-logits', logits2, '--json']);
  expect(e2.status).toBe(0);
  expect(fs.readFileSync(logits2).equals(saved)).toBe(true);

  const i = ptq(['inspect', modelFile, '--json']);
  expect(i.status).toBe(0);
  const names = JSON.parse(i.stdout).modules.map((m: { name: string }) => m.name);
  expect(names).toContain('quant');
  expect(names).toContain('features_0_0_conv');
});

test('ptq eval --onnx evaluates the float model; preprocessing options are checked against the ONNX input', () => {
  const e = ptq(['eval', '--onnx', onnxFile, '--dataset', `fashion-mnist:${data}`, '--limit', '10', '--json']);
  expect(e.stderr).toBe('');
  expect(e.status).toBe(0);
  expect(JSON.parse(e.stdout).count).toBe(10);
  const bad = ptq(['eval', '--onnx', onnxFile, '--dataset', `fashion-mnist:${data}`, '--limit', '10', '--size', '32']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toBe('ptq: the ONNX model takes 28x28 inputs, --size is 32\n');
});

test('an unsupported op: exit code 1, one line naming node, op type and what is missing, no stack trace', () => {
  const r = ptq(['quantize', '--onnx', path.join(root, 'test', 'fixtures', 'onnx-import', 'unsupported.onnx'), '--dataset', `fashion-mnist:${data}`,
    '--out', path.join(dir, 'x.safetensors')]);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^ptq: .*unsupported\.onnx: node '\/Sigmoid' \(Sigmoid\): op type 'Sigmoid' cannot be quantized by ptq-node; import with fallback 'float' \(CLI: --fallback float\)/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(fs.existsSync(path.join(dir, 'x.safetensors'))).toBe(false);
});

test('ptq eval --onnx on an int8 ONNX model (our export: PyTorch semantics, native plan) gives the original model\'s logits', () => {
  const ds = openDataset(`fashion-mnist:${data}`, 'train');
  const q = quantizeModel(smallModel(), { qconfig: qconfigByName('fbgemm'), calibration: ds, calibBatches: 1, batchSize: 8 });
  const file = path.join(dir, 'int8.onnx');
  fs.writeFileSync(file, exportOnnx(q, { arch: 'mobilenet_v2', numClasses: 10, widthMult: 0.5, invertedResidualSetting: [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]] }));
  const logits = path.join(dir, 'int8-logits.bin');
  const e = ptq(['eval', '--onnx', file, '--dataset', `fashion-mnist:${data}`, '--limit', '12', '--save-logits', logits, '--json']);
  expect(e.stderr).toBe('');
  expect(e.status).toBe(0);
  const test = openDataset(`fashion-mnist:${data}`, 'test').batch(0, 12);
  const ours = (q.call(test.images) as Tensor).contiguous().data;
  expect(fs.readFileSync(logits).equals(Buffer.from(ours.buffer, ours.byteOffset, ours.byteLength))).toBe(true);
  const again = ptq(['quantize', '--onnx', file, '--dataset', `fashion-mnist:${data}`, '--out', path.join(dir, 'y.safetensors')]);
  expect(again.status).toBe(1);
  expect(again.stderr).toContain('is already an int8 model');
});
