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

/** Preprocessing of grey images: x/255, (x - mean)/std in float32, replicated to `channels`. */
export interface GreyPreprocess {
  mean: number;
  std: number;
  channels: number;
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
  private readonly lut: Float32Array;

  constructor(readonly dir: string, readonly split: 'train' | 'test', readonly preprocess: GreyPreprocess = FASHION_MNIST_PREPROCESS) {
    const d = loadFashionMnist(path.resolve(dir), split);
    this.images = d.images;
    this.labels = d.labels;
    this.length = d.count;
    this.height = d.height;
    this.width = d.width;
    const mean = fround(preprocess.mean), std = fround(preprocess.std);
    this.lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) this.lut[v] = fround(fround(fround(v / 255) - mean) / std);
  }

  get sampleShape(): number[] {
    return [this.preprocess.channels, this.height, this.width];
  }

  batch(start: number, count: number): Batch {
    const n = Math.max(0, Math.min(count, this.length - start));
    const c = this.preprocess.channels, hw = this.height * this.width;
    const out = new Float32Array(n * c * hw);
    const lut = this.lut, img = this.images;
    for (let b = 0; b < n; b++) {
      const src = (start + b) * hw;
      for (let ch = 0; ch < c; ch++) {
        const dst = (b * c + ch) * hw;
        for (let p = 0; p < hw; p++) out[dst + p] = lut[img[src + p]];
      }
    }
    const labels = new Int32Array(n);
    for (let b = 0; b < n; b++) labels[b] = this.labels[start + b];
    return { images: new Tensor(out, [n, c, this.height, this.width]), labels };
  }
}

/** Parses a --dataset spec 'fashion-mnist:DIR'. */
export function openDataset(spec: string, split: 'train' | 'test'): Dataset {
  const i = spec.indexOf(':');
  const kind = i < 0 ? spec : spec.slice(0, i);
  const dir = i < 0 ? '' : spec.slice(i + 1);
  if (kind === 'fashion-mnist') {
    if (!dir) throw new RangeError("--dataset fashion-mnist needs a directory: 'fashion-mnist:DIR'");
    return new FashionMnist(dir, split);
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
