// Datasets and a data loader in the tutorial's style: batches of [B, C, H, W] float32 images
// (contiguous, as torchvision produces them) with int labels, in file order (no shuffling).
import * as fs from 'fs';
import * as path from 'path';
import { loadFashionMnist } from '../io/idx';
import { decodeImage, ImagePreprocess, IMAGENET_PREPROCESS, pixelsToTensor, transformPixels, validatePreprocess } from '../io/images';
import { Tensor } from '../tensor';

const fround = Math.fround;

/** A batch: images [B, C, H, W] and labels [B]. */
export interface Batch {
  images: Tensor;
  labels: Int32Array;
}

/** An indexable image classification dataset. */
export interface Dataset {
  readonly length: number;
  readonly numClasses: number;
  /** Shape of one image in PyTorch order, e.g. [3, 28, 28]. */
  readonly sampleShape: number[];
  /** Images and labels [start, start + count). */
  batch(start: number, count: number): Batch;
}

/**
 * Preprocessing of grey images: x/255, optionally resized to size x size, replicated to `channels`,
 * (x - mean[c]) / std[c] in float32 (one mean/std for all channels, or one per channel).
 */
export interface GreyPreprocess {
  mean: number | number[];
  std: number | number[];
  channels: number;
  /** Square output size; the resize is bilinear with half-pixel centers (F.interpolate(mode='bilinear', align_corners=False), no antialiasing). */
  size?: number;
}

function perChannel(v: number | number[], channels: number, what: string): number[] {
  const a = typeof v === 'number' ? new Array(channels).fill(v) : v;
  if (a.length === 1) return new Array(channels).fill(a[0]);
  if (a.length !== channels) throw new RangeError(`${what} has ${a.length} values for ${channels} channels`);
  return a;
}

/** Bilinear resize of one float plane (align_corners=False, as torch.nn.functional.interpolate). */
export function resizeBilinear(src: Float32Array, h: number, w: number, oh: number, ow: number): Float32Array {
  const out = new Float32Array(oh * ow);
  const sy = h / oh, sx = w / ow;
  const coord = (o: number, scale: number, size: number): [number, number, number] => {
    const r = Math.max(Math.fround(Math.fround(scale * (o + 0.5)) - 0.5), 0);
    const i0 = Math.min(Math.floor(r), size - 1);
    const i1 = Math.min(i0 + 1, size - 1);
    const l = Math.fround(r - i0);
    return [i0, i1, l];
  };
  for (let y = 0; y < oh; y++) {
    const [y0, y1, ly] = coord(y, sy, h);
    for (let x = 0; x < ow; x++) {
      const [x0, x1, lx] = coord(x, sx, w);
      const f = Math.fround;
      const top = f(f(f(1 - lx) * src[y0 * w + x0]) + f(lx * src[y0 * w + x1]));
      const bot = f(f(f(1 - lx) * src[y1 * w + x0]) + f(lx * src[y1 * w + x1]));
      out[y * ow + x] = f(f(f(1 - ly) * top) + f(ly * bot));
    }
  }
  return out;
}

/** Fashion-MNIST's preprocessing for the shipped model (issue 3). */
export const FASHION_MNIST_PREPROCESS: GreyPreprocess = { mean: 0.286, std: 0.353, channels: 3 };

/** Fashion-MNIST's class names, by label (torchvision's FashionMNIST.classes). */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/**
 * Fashion-MNIST from the four IDX files (.gz or raw) in a directory. The float values equal
 * torchvision's ToTensor() + Normalize(mean, std): fround(fround(fround(v / 255) - mean) / std).
 */
export class FashionMnist implements Dataset {
  /** The class names, by label. */
  readonly classes: readonly string[] = FASHION_MNIST_CLASSES;
  readonly length: number;
  readonly numClasses = 10;
  readonly height: number;
  readonly width: number;
  private readonly images: Uint8Array;
  private readonly labels: Uint8Array;
  private readonly luts: Float32Array[];
  private readonly size?: number;
  private readonly mean: number[];
  private readonly std: number[];

  constructor(readonly dir: string, readonly split: 'train' | 'test', readonly preprocess: GreyPreprocess = FASHION_MNIST_PREPROCESS) {
    const d = loadFashionMnist(path.resolve(dir), split);
    this.images = d.images;
    this.labels = d.labels;
    this.length = d.count;
    this.height = d.height;
    this.width = d.width;
    if (!Number.isInteger(preprocess.channels) || preprocess.channels < 1) throw new RangeError(`channels must be a positive integer, got ${preprocess.channels}`);
    this.mean = perChannel(preprocess.mean, preprocess.channels, 'mean').map(fround);
    this.std = perChannel(preprocess.std, preprocess.channels, 'std').map(fround);
    if (this.std.some((v) => !(v > 0))) throw new RangeError('std values must be positive');
    if (preprocess.size !== undefined && (!Number.isInteger(preprocess.size) || preprocess.size < 1)) throw new RangeError(`size must be a positive integer, got ${preprocess.size}`);
    this.size = preprocess.size !== undefined && (preprocess.size !== this.height || preprocess.size !== this.width) ? preprocess.size : undefined;
    this.luts = this.mean.map((m, c) => {
      const lut = new Float32Array(256);
      for (let v = 0; v < 256; v++) lut[v] = fround(fround(fround(v / 255) - m) / this.std[c]);
      return lut;
    });
  }

  /** The first channel's pixel table (all channels share it with one mean/std). */
  get lut(): Float32Array {
    return this.luts[0];
  }

  get sampleShape(): number[] {
    const s = this.size;
    return [this.preprocess.channels, s ?? this.height, s ?? this.width];
  }

  batch(start: number, count: number): Batch {
    const n = Math.max(0, Math.min(count, this.length - start));
    const c = this.preprocess.channels, hw = this.height * this.width;
    const [, oh, ow] = this.sampleShape;
    const out = new Float32Array(n * c * oh * ow);
    const img = this.images;
    const labels = new Int32Array(n);
    for (let b = 0; b < n; b++) labels[b] = this.labels[start + b];
    if (this.size === undefined) {
      for (let b = 0; b < n; b++) {
        const src = (start + b) * hw;
        for (let ch = 0; ch < c; ch++) {
          const dst = (b * c + ch) * hw, lut = this.luts[ch];
          for (let p = 0; p < hw; p++) out[dst + p] = lut[img[src + p]];
        }
      }
      return { images: new Tensor(out, [n, c, oh, ow]), labels };
    }
    // ToTensor, resize, normalize (torchvision order with a tensor Resize).
    const plane = new Float32Array(hw);
    for (let b = 0; b < n; b++) {
      const src = (start + b) * hw;
      for (let p = 0; p < hw; p++) plane[p] = fround(img[src + p] / 255);
      const r = resizeBilinear(plane, this.height, this.width, oh, ow);
      for (let ch = 0; ch < c; ch++) {
        const dst = (b * c + ch) * oh * ow, m = this.mean[ch], sd = this.std[ch];
        for (let p = 0; p < oh * ow; p++) out[dst + p] = fround(fround(r[p] - m) / sd);
      }
    }
    return { images: new Tensor(out, [n, c, oh, ow]), labels };
  }
}

/** File extensions torchvision's ImageFolder accepts (IMG_EXTENSIONS), matched case-insensitively. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

/**
 * torchvision's ImageFolder: one sub-folder per class (classes sorted by name, index = position),
 * images found recursively in each (sorted walk, as torchvision's make_dataset), decoded with sharp
 * and preprocessed as torchvision's transforms on PIL (lib/io/images.ts). The preprocessing needs a
 * crop so all samples have one shape.
 *
 * Decoding is asynchronous: call `await load(start, count)` for the range you will read (the CLI
 * does); `batch()` then reads the decoded 8-bit crops kept in memory (C x H x W bytes per image).
 */
export class ImageFolder implements Dataset {
  readonly classes: string[];
  readonly samples: Array<{ file: string; label: number }>;
  readonly preprocess: ImagePreprocess;
  private readonly cache = new Map<number, { data: Uint8Array; channels: number }>();

  constructor(readonly root: string, preprocess: ImagePreprocess = IMAGENET_PREPROCESS) {
    this.preprocess = validatePreprocess(preprocess);
    if (!preprocess.crop) throw new RangeError('ImageFolder needs a preprocessing with a crop (all samples must have one shape)');
    const abs = path.resolve(root);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new Error(`ImageFolder: '${root}' is not a directory`);
    // Like os.scandir + entry.is_dir(): symlinks to directories count.
    this.classes = fs.readdirSync(abs).filter((n) => fs.statSync(path.join(abs, n)).isDirectory()).sort(byCodePoint);
    if (this.classes.length === 0) throw new Error(`ImageFolder: no class folders in '${root}' (expected ${root}/<class>/<image>)`);
    this.samples = [];
    this.classes.forEach((c, label) => {
      for (const file of walkImages(path.join(abs, c))) this.samples.push({ file, label });
    });
    if (this.samples.length === 0) throw new Error(`ImageFolder: no images (${IMAGE_EXTENSIONS.join(' ')}) under '${root}'`);
  }

  get length(): number {
    return this.samples.length;
  }

  get numClasses(): number {
    return this.classes.length;
  }

  get sampleShape(): number[] {
    return [this.preprocess.channels, this.preprocess.crop![0], this.preprocess.crop![1]];
  }

  /** Decodes samples [start, start + count) (at most `concurrency` at a time) and keeps their 8-bit crops. */
  async load(start = 0, count = this.length, concurrency = 4): Promise<void> {
    const end = Math.min(this.length, start + count);
    let next = start;
    const [ch, h, w] = this.sampleShape;
    const worker = async () => {
      for (let i = next++; i < end; i = next++) {
        if (this.cache.has(i)) continue;
        const s = this.samples[i];
        let px;
        try {
          px = transformPixels(await decodeImage(fs.readFileSync(s.file)), this.preprocess);
        } catch (e) {
          throw new Error(`ImageFolder: ${s.file}: ${(e as Error).message}`);
        }
        if (px.height !== h || px.width !== w) throw new Error(`ImageFolder: ${s.file} gave ${px.height}x${px.width}, expected ${h}x${w}`);
        if (px.channels !== 1 && px.channels !== ch) throw new Error(`ImageFolder: ${s.file} has ${px.channels} channels, expected ${ch}`);
        this.cache.set(i, { data: px.data, channels: px.channels });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, end - start)) }, worker));
  }

  batch(start: number, count: number): Batch {
    const n = Math.max(0, Math.min(count, this.length - start));
    const [c, h, w] = this.sampleShape, per = c * h * w;
    const out = new Float32Array(n * per);
    const labels = new Int32Array(n);
    for (let b = 0; b < n; b++) {
      const i = start + b, px = this.cache.get(i);
      if (!px) throw new Error(`ImageFolder: sample ${i} is not decoded; call 'await dataset.load(${start}, ${count})' first`);
      pixelsToTensor({ data: px.data, width: w, height: h, channels: px.channels }, this.preprocess, out, b * per);
      labels[b] = this.samples[i].label;
    }
    return { images: new Tensor(out, [n, c, h, w]), labels };
  }
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Image files under dir: directories in sorted path order, files sorted within each (os.walk + sorted). */
function walkImages(dir: string): string[] {
  const dirs: string[] = [];
  const visit = (d: string) => {
    dirs.push(d);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && fs.statSync(p).isDirectory())) visit(p);
    }
  };
  visit(dir);
  const out: string[] = [];
  for (const d of dirs.sort(byCodePoint)) {
    const files = fs.readdirSync(d, { withFileTypes: true })
      .filter((e) => !fs.statSync(path.join(d, e.name)).isDirectory() && IMAGE_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x)))
      .map((e) => e.name).sort(byCodePoint);
    for (const f of files) out.push(path.join(d, f));
  }
  return out;
}

/** Options of openDataset. */
export interface OpenDatasetOptions {
  /** Image preprocessing (imagefolder only; default ImageNet's). */
  preprocess?: ImagePreprocess;
  /** Fashion-MNIST preprocessing (fashion-mnist only; default the shipped model's). */
  grey?: GreyPreprocess;
}

/**
 * Parses a --dataset spec: 'fashion-mnist:DIR' (the four IDX files) or 'imagefolder:DIR' (class
 * folders; DIR/train, or DIR/val then DIR/test for the test split, when those exist, else DIR).
 * An ImageFolder must be `load()`ed before `batch()`.
 */
export function openDataset(spec: string, split: 'train' | 'test', o: OpenDatasetOptions = {}): Dataset {
  const i = spec.indexOf(':');
  const kind = i < 0 ? spec : spec.slice(0, i);
  const dir = i < 0 ? '' : spec.slice(i + 1);
  if (!dir && (kind === 'fashion-mnist' || kind === 'imagefolder')) throw new RangeError(`--dataset ${kind} needs a directory: '${kind}:DIR'`);
  if (kind === 'fashion-mnist') return new FashionMnist(dir, split, o.grey ?? FASHION_MNIST_PREPROCESS);
  if (kind === 'imagefolder') {
    const sub = (split === 'train' ? ['train'] : ['val', 'test']).map((s) => path.join(dir, s)).find((d) => fs.existsSync(d) && fs.statSync(d).isDirectory());
    return new ImageFolder(sub ?? dir, o.preprocess ?? IMAGENET_PREPROCESS);
  }
  throw new RangeError(`unknown dataset '${kind}' in '${spec}'; expected 'fashion-mnist:DIR' or 'imagefolder:DIR'`);
}

/** Iterates a dataset in order in batches of batchSize, stopping after `limit` items or `maxBatches`. */
export function* dataLoader(ds: Dataset, batchSize: number, o: { limit?: number; maxBatches?: number; start?: number } = {}): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  const start = o.start ?? 0;
  const end = Math.min(ds.length, o.limit !== undefined ? start + o.limit : ds.length);
  let k = 0;
  for (let s = start; s < end; s += batchSize) {
    if (o.maxBatches !== undefined && k++ >= o.maxBatches) return;
    yield ds.batch(s, Math.min(batchSize, end - s));
  }
}
