// Datasets and a data loader in the tutorial's style: batches of [B, C, H, W] float32 images
// (contiguous, as torchvision produces them) with int labels, in file order (no shuffling).
import * as path from 'path';
import { loadFashionMnist } from '../io/idx';
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

/**
 * Fashion-MNIST from the four IDX files (.gz or raw) in a directory. The float values equal
 * torchvision's ToTensor() + Normalize(mean, std): fround(fround(fround(v / 255) - mean) / std).
 */
export class FashionMnist implements Dataset {
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

/** Parses a --dataset spec 'fashion-mnist:DIR'; `preprocess` overrides the shipped model's preprocessing. */
export function openDataset(spec: string, split: 'train' | 'test', preprocess?: GreyPreprocess): Dataset {
  const i = spec.indexOf(':');
  const kind = i < 0 ? spec : spec.slice(0, i);
  const dir = i < 0 ? '' : spec.slice(i + 1);
  if (kind === 'fashion-mnist') {
    if (!dir) throw new RangeError("--dataset fashion-mnist needs a directory: 'fashion-mnist:DIR'");
    return new FashionMnist(dir, split, preprocess ?? FASHION_MNIST_PREPROCESS);
  }
  throw new RangeError(`unknown dataset '${kind}' in '${spec}'; expected 'fashion-mnist:DIR'`);
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
