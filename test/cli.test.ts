// The CLI contracts, run as a user would (node bin/ptq.js ...), on a full-size tutorial
// MobileNetV2 with seeded random weights and the shipped Fashion-MNIST subset.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readQuantizedModelFile } from '../lib/io/model-file';
import { writeSafetensors } from '../lib/io/safetensors';
import { RawTensor } from '../lib/io/types';
import { mobilenetV2 } from '../lib/models';
import { rng } from './helpers/random';

const root = path.join(__dirname, '..');
const data = path.join(root, 'assets', 'fashion-mnist');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-cli-'));
const weights = path.join(dir, 'w.safetensors');

function ptq(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), ...args], { encoding: 'utf8' });
}

beforeAll(() => {
  // Random but well-conditioned float weights (He-normal convs, BN near identity).
  const m = mobilenetV2({ numClasses: 10 });
  const r = rng(3);
  const normal = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const tensors = new Map<string, RawTensor>();
  for (const [k, t] of m.stateDict()) {
    const d = new Float32Array(t.numel);
    const fan = t.shape.length === 4 ? t.shape[0] * t.shape[2] * t.shape[3] : t.shape[t.shape.length - 1] || 1;
    for (let i = 0; i < d.length; i++) {
      if (k.endsWith('running_var')) d[i] = 0.5 + r();
      else if (k.endsWith('running_mean') || k.endsWith('.bias')) d[i] = 0.1 * normal();
      else if (k.endsWith('num_batches_tracked')) d[i] = 0;
      else if (t.shape.length === 1) d[i] = 0.8 + 0.4 * r();
      else d[i] = normal() * Math.sqrt(2 / fan);
    }
    tensors.set(k, { dtype: 'float32', shape: [...t.shape], data: d });
  }
  writeSafetensors(weights, tensors);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each([['default'], ['fbgemm']])('qconfig %s', (qconfig) => {
  const out = path.join(dir, `m-${qconfig}.safetensors`);
  test('ptq quantize writes the converted model', () => {
    const r = ptq(['quantize', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', weights, '--dataset', `fashion-mnist:${data}`,
      '--calib-batches', '2', '--batch-size', '8', '--qconfig', qconfig, '--out', out]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(fs.statSync(out).size).toBeLessThan(fs.statSync(weights).size / 3.5);
    // The dataset's class names go into the file (ptq serve answers with them).
    expect(readQuantizedModelFile(out).labels).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
  });
  test('ptq inspect --json lists every observed module with PyTorch names and qparams', () => {
    const r = ptq(['inspect', out, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const names = j.modules.map((m: { name: string }) => m.name);
    for (const n of ['quant', 'features.0.0', 'features.1.conv.0.0', 'features.1.conv.1', 'features.2.skip_add', 'features.3.skip_add', 'features.18.0', 'classifier.1'])
      expect(names).toContain(n);
    expect(names).toHaveLength(1 + 1 + 17 * 1 + (1 * 2 + 16 * 3) + 1 + 1); // quant, stem, skip_adds, convs, last conv, classifier
    for (const m of j.modules) {
      expect(m.scale).toBeGreaterThan(0);
      expect(Number.isInteger(m.zero_point)).toBe(true);
    }
    const fc = j.modules.find((m: { name: string }) => m.name === 'classifier.1');
    expect(fc.weight.qscheme).toBe(qconfig === 'fbgemm' ? 'per_channel_affine' : 'per_tensor_affine');
    expect(fc.weight.scale).toHaveLength(qconfig === 'fbgemm' ? 10 : 1);
    expect(j.modules.find((m: { name: string }) => m.name === 'features.2.skip_add')).toMatchObject({ scale: 1, zero_point: 0 });
  });
  test('ptq eval --json and --save-logits; native and reference agree', () => {
    const logits = path.join(dir, `logits-${qconfig}.bin`);
    const r = ptq(['eval', out, '--dataset', `fashion-mnist:${data}`, '--limit', '30', '--batch-size', '7', '--save-logits', logits, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.count).toBe(30);
    expect(j.top1).toBeGreaterThanOrEqual(0);
    expect(j.top5).toBeGreaterThanOrEqual(j.top1);
    expect(fs.statSync(logits).size).toBe(30 * 10 * 4);
    const ref = path.join(dir, `logits-ref-${qconfig}.bin`);
    const r2 = ptq(['eval', out, '--dataset', `fashion-mnist:${data}`, '--limit', '30', '--save-logits', ref, '--backend', 'reference', '--json']);
    expect(r2.status).toBe(0);
    expect(fs.readFileSync(ref).equals(fs.readFileSync(logits))).toBe(true);
  });
});

test('ptq eval of the float model with --arch/--weights', () => {
  const r = ptq(['eval', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', weights, '--dataset', `fashion-mnist:${data}`, '--limit', '10', '--json']);
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout).count).toBe(10);
});

test('bad input is a clear error, not a crash', () => {
  const r1 = ptq(['inspect', weights, '--json']);
  expect(r1.status).toBe(1);
  expect(r1.stderr).toMatch(/not a ptq-node quantized model/);
  const r2 = ptq(['quantize', '--arch', 'mobilenet_v2', '--num-classes', '11', '--weights', weights, '--dataset', `fashion-mnist:${data}`, '--out', path.join(dir, 'x')]);
  expect(r2.status).toBe(1);
  expect(r2.stderr).toMatch(/size mismatch for classifier.1.weight/);
  const r3 = ptq(['eval', path.join(dir, 'missing.safetensors'), '--dataset', `fashion-mnist:${data}`]);
  expect(r3.status).toBe(1);
  const r4 = ptq(['quantize', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', weights, '--dataset', 'fashion-mnist:/nonexistent', '--out', path.join(dir, 'x')]);
  expect(r4.status).toBe(1);
  expect(r4.stderr).toMatch(/train-images-idx3-ubyte/);
});
