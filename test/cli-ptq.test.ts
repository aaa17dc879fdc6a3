// The new `ptq quantize` options on the shipped model, run as a user would: --qconfig best (held-out
// training images), equalization + bias correction, mixed precision (--float-modules), then eval.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readQuantizedModelFile } from '../lib/io/model-file';

const root = path.join(__dirname, '..');
const data = `fashion-mnist:${path.join(root, 'assets', 'fashion-mnist')}`;
const weights = path.join(root, 'assets', 'mobilenet_v2_fashion_mnist.pth');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-cli8-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const base = ['quantize', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', weights, '--dataset', data, '--calib-batches', '2', '--batch-size', '16'];

function ptq(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), ...args], { encoding: 'utf8' });
}

test('--qconfig best keeps the best held-out candidate and records it', () => {
  const out = path.join(dir, 'best.safetensors');
  const r = ptq([...base, '--qconfig', 'best', '--candidates', 'default,mse+cle+abc', '--held-out', '200', '--out', out, '--json']);
  expect(r.status).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(s.candidates.map((c: { label: string }) => c.label)).toEqual(['default', 'mse+cle+abc']);
  const top = Math.max(...s.candidates.map((c: { heldOutTop1: number }) => c.heldOutTop1));
  expect(s.candidates.find((c: { label: string }) => c.label === s.best).heldOutTop1).toBe(top);
  // held out: the training images right after the 32 calibration images, not the test set
  expect(s.heldOut).toEqual({ start: 32, count: 200 });
  const prov = readQuantizedModelFile(out).provenance as Record<string, unknown>;
  expect(prov.label).toBe(s.best);
  const e = ptq(['eval', out, '--dataset', data, '--limit', '200', '--json']);
  expect(e.status).toBe(0);
  expect(JSON.parse(e.stdout).top1).toBeGreaterThan(70);
});

test('--equalize --bias-correction empirical and --float-modules 2 write models that evaluate', () => {
  const a = path.join(dir, 'cle.safetensors'), b = path.join(dir, 'mixed.safetensors');
  const r1 = ptq([...base, '--qconfig', 'default', '--equalize', '--bias-correction', 'empirical', '--out', a, '--json']);
  expect(r1.status).toBe(0);
  expect(JSON.parse(r1.stdout).label).toBe('default+cle+ebc');
  const r2 = ptq([...base, '--qconfig', 'fbgemm', '--float-modules', '2', '--out', b, '--json']);
  expect(r2.status).toBe(0);
  const s2 = JSON.parse(r2.stdout);
  expect(s2.floatModules).toHaveLength(2);
  expect(s2.floatModules).toEqual(s2.sensitivity.slice(0, 2).map((x: { name: string }) => x.name));
  expect(readQuantizedModelFile(b).records.filter((x) => x.type === 'FloatIsland').map((x) => x.name)).toEqual(s2.floatModules);
  for (const f of [a, b]) {
    const e = ptq(['eval', f, '--dataset', data, '--limit', '200', '--json']);
    expect(e.status).toBe(0);
    expect(JSON.parse(e.stdout).top1).toBeGreaterThan(70);
  }
  const bad = ptq([...base, '--qconfig', 'default', '--bias-correction', 'magic', '--out', a]);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/--bias-correction must be none, empirical, weights or analytical/);
});
