// ImageFolder (torchvision's class-per-folder layout) and `--dataset imagefolder:DIR` in the CLI:
// Fashion-MNIST test images written as PNG files must evaluate to exactly the logits of the IDX path.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { FashionMnist, ImageFolder, openDataset } from '../lib/data/datasets';
import { FASHION_MNIST_IMAGE_PREPROCESS, loadImageTensor } from '../lib/io/images';
import { loadFashionMnist } from '../lib/io/idx';
import { readQuantizedModelFile } from '../lib/io/model-file';

const root = path.join(__dirname, '..');
const data = path.join(root, 'assets', 'fashion-mnist');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-imagefolder-'));
const N = 24;
const ptq = (args: string[]) => spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), ...args], { encoding: 'utf8' });

beforeAll(async () => {
  // test/<label>/<index>.png for the first N test images, plus a train/ copy for calibration.
  const d = loadFashionMnist(data, 'test');
  for (const split of ['train', 'test']) {
    for (let i = 0; i < N; i++) {
      const cls = path.join(dir, split, `class-${d.labels[i]}`);
      fs.mkdirSync(cls, { recursive: true });
      await sharp(Buffer.from(d.images.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).png()
        .toFile(path.join(cls, `${String(i).padStart(3, '0')}.png`));
    }
  }
  fs.writeFileSync(path.join(dir, 'test', 'class-0', 'notes.txt'), 'not an image, ignored');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('classes are the sorted folder names; samples follow the sorted walk', async () => {
  const ds = new ImageFolder(path.join(dir, 'test'), FASHION_MNIST_IMAGE_PREPROCESS);
  expect(ds.classes).toEqual([...ds.classes].sort());
  expect(ds.length).toBe(N);
  expect(ds.sampleShape).toEqual([3, 28, 28]);
  const labels = ds.samples.map((s) => s.label);
  expect(labels).toEqual([...labels].sort((a, b) => a - b));
  expect(() => ds.batch(0, 2)).toThrow(/call 'await dataset.load\(0, 2\)' first/);
  await ds.load(0, 5);
  const b = ds.batch(0, 5);
  for (let i = 0; i < 5; i++) {
    const t = await loadImageTensor(fs.readFileSync(ds.samples[i].file), FASHION_MNIST_IMAGE_PREPROCESS);
    expect(Buffer.from(b.images.data.buffer, i * 2352 * 4, 2352 * 4).equals(Buffer.from(t.data.buffer))).toBe(true);
    expect(b.labels[i]).toBe(ds.samples[i].label);
  }
});

test('the PNGs give exactly the IDX tensors', async () => {
  const ds = new ImageFolder(path.join(dir, 'test'), FASHION_MNIST_IMAGE_PREPROCESS);
  await ds.load();
  const idx = new FashionMnist(data, 'test').batch(0, N);
  const b = ds.batch(0, N);
  ds.samples.forEach((s, j) => {
    const i = Number(path.basename(s.file, '.png'));
    expect(Buffer.from(b.images.data.buffer, j * 2352 * 4, 2352 * 4).equals(Buffer.from(idx.images.data.buffer, i * 2352 * 4, 2352 * 4))).toBe(true);
    expect(b.labels[j]).toBe(ds.classes.indexOf(`class-${idx.labels[i]}`));
  });
});

test('openDataset picks DIR/train and DIR/val|test; errors are clear', () => {
  expect((openDataset(`imagefolder:${dir}`, 'train', { preprocess: FASHION_MNIST_IMAGE_PREPROCESS }) as ImageFolder).root).toBe(path.join(dir, 'train'));
  expect((openDataset(`imagefolder:${dir}`, 'test', { preprocess: FASHION_MNIST_IMAGE_PREPROCESS }) as ImageFolder).root).toBe(path.join(dir, 'test'));
  expect(() => openDataset('imagefolder:', 'test')).toThrow(/needs a directory/);
  expect(() => openDataset(`imagefolder:${path.join(dir, 'nope')}`, 'test')).toThrow(/is not a directory/);
  expect(() => new ImageFolder(path.join(dir, 'test', 'class-0'))).toThrow(/no class folders/);
});

test('ptq quantize/eval with --dataset imagefolder:DIR equal the IDX path image for image', () => {
  const model = path.join(dir, 'm.safetensors');
  const q = ptq(['quantize', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', path.join(root, 'assets', 'mobilenet_v2_fashion_mnist.pth'),
    '--dataset', `imagefolder:${dir}`, '--preprocess', 'fashion-mnist', '--calib-batches', '2', '--batch-size', '8', '--out', model, '--json']);
  expect(q.stderr).not.toMatch(/Error/);
  expect(q.status).toBe(0);
  const f = readQuantizedModelFile(model);
  expect(f.labels).toEqual(fs.readdirSync(path.join(dir, 'train')).sort());
  expect(f.preprocess).toEqual(FASHION_MNIST_IMAGE_PREPROCESS);

  const a = path.join(dir, 'a.bin'), b = path.join(dir, 'b.bin');
  const r1 = ptq(['eval', model, '--dataset', `imagefolder:${dir}`, '--preprocess', 'fashion-mnist', '--save-logits', a, '--json']);
  expect(r1.status).toBe(0);
  expect(JSON.parse(r1.stdout).count).toBe(N);
  const r2 = ptq(['eval', model, '--dataset', `fashion-mnist:${data}`, '--limit', String(N), '--save-logits', b, '--json']);
  expect(r2.status).toBe(0);
  const la = new Float32Array(new Uint8Array(fs.readFileSync(a)).buffer), lb = new Float32Array(new Uint8Array(fs.readFileSync(b)).buffer);
  const ds = new ImageFolder(path.join(dir, 'test'), FASHION_MNIST_IMAGE_PREPROCESS);
  ds.samples.forEach((s, j) => {
    const i = Number(path.basename(s.file, '.png'));
    expect(Array.from(la.subarray(j * 10, j * 10 + 10))).toEqual(Array.from(lb.subarray(i * 10, i * 10 + 10)));
  });
  // Wrong preprocessing for the data is a clear error.
  const r3 = ptq(['eval', model, '--dataset', `imagefolder:${dir}`, '--crop', '7x0']);
  expect(r3.status).toBe(1);
  expect(r3.stderr).toMatch(/--crop must be a positive integer/);
});
