// Images in: decode JPEG / PNG / WebP with sharp (libvips), then torchvision's transforms on the
// decoded 8-bit pixels, computed in JS so the result is PIL's, not libvips':
//   Grayscale (PIL 'L'), Resize(size) of the shorter side with PIL's antialiased bilinear filter
//   (Pillow's Resample.c: separable, fixed-point 8-bit coefficients, same rounding), CenterCrop
//   (torchvision's rounding and zero padding), ToTensor (x/255 in float32), Normalize(mean, std).
// sharp is loaded lazily: the rest of the library works when it failed to install.
import { PtqError } from '../errors';

/** The decoded-image preprocessing (torchvision's transforms, in this order). */
export interface ImagePreprocess {
  /** Convert to one luminance channel first, as PIL's convert('L') (transforms.Grayscale). */
  grayscale: boolean;
  /** Resize so the shorter side is this long (transforms.Resize(int), bilinear, antialias); null: no resize. */
  resize: number | null;
  /** Center crop to [height, width] (transforms.CenterCrop); null: no crop. */
  crop: [number, number] | null;
  /** Normalize: per-channel mean and std (length 1 or `channels`). */
  mean: number[];
  std: number[];
  /** Output channels: 3 (grey images are replicated, as PIL's convert('RGB')) or 1. */
  channels: 1 | 3;
}

/** torchvision's ImageNet evaluation transform: Resize(256), CenterCrop(224), ImageNet mean/std. */
export const IMAGENET_PREPROCESS: ImagePreprocess = {
  grayscale: false, resize: 256, crop: [224, 224], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channels: 3,
};

/** The shipped Fashion-MNIST model's transform on image files: grey, 28x28, mean 0.2860 / std 0.3530, 3 channels. */
export const FASHION_MNIST_IMAGE_PREPROCESS: ImagePreprocess = {
  grayscale: true, resize: 28, crop: [28, 28], mean: [0.286], std: [0.353], channels: 3,
};

/** Named presets (for --preprocess). */
export const PREPROCESS_PRESETS: Record<string, ImagePreprocess> = {
  imagenet: IMAGENET_PREPROCESS,
  'fashion-mnist': FASHION_MNIST_IMAGE_PREPROCESS,
};

/** 8-bit interleaved pixels (HWC). */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** An input that is not a decodable image, or that the preprocessing cannot use (HTTP 400 material). */
export class ImageError extends PtqError {
  constructor(message: string) {
    super(message, 'ERR_IMAGE');
    this.name = 'ImageError';
  }
}

type SharpModule = typeof import('sharp');
let sharpModule: SharpModule | undefined;

/** sharp, loaded on first use; a clear error when it is not installed or its libvips does not load. */
export function loadSharp(): SharpModule {
  if (sharpModule) return sharpModule;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sharpModule = require('sharp') as SharpModule;
    return sharpModule;
  } catch (e) {
    throw new PtqError(
      `ptq-node: image input needs the 'sharp' package, which did not load: ${(e as Error).message.split('\n')[0]}\n` +
        'Fix: `npm install sharp` (its prebuilt libvips comes from the npm registry as @img/sharp-<platform> packages). ' +
        'Tensor input and the rest of ptq-node work without it.',
      'ERR_SHARP_MISSING',
    );
  }
}

/** Checks a preprocessing spec; throws a RangeError naming the bad field. */
export function validatePreprocess(p: ImagePreprocess): ImagePreprocess {
  const posInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1 || v > 16384) throw new RangeError(`preprocess.${name} must be an integer in [1, 16384], got ${v}`);
  };
  if (p.resize !== null) posInt('resize', p.resize);
  if (p.crop !== null) {
    if (!Array.isArray(p.crop) || p.crop.length !== 2) throw new RangeError('preprocess.crop must be [height, width] or null');
    p.crop.forEach((v, i) => posInt(`crop[${i}]`, v));
  }
  if (p.channels !== 1 && p.channels !== 3) throw new RangeError(`preprocess.channels must be 1 or 3, got ${p.channels}`);
  for (const k of ['mean', 'std'] as const) {
    const v = p[k];
    if (!Array.isArray(v) || (v.length !== 1 && v.length !== p.channels) || !v.every(Number.isFinite))
      throw new RangeError(`preprocess.${k} must have 1 or ${p.channels} finite numbers, got ${JSON.stringify(v)}`);
  }
  if (!p.std.every((s) => s !== 0)) throw new RangeError('preprocess.std must not contain 0');
  return p;
}

/** The [C, H, W] a preprocessing produces, when it has a crop (else the size depends on the image). */
export function preprocessShape(p: ImagePreprocess): number[] | null {
  return p.crop ? [p.channels, p.crop[0], p.crop[1]] : null;
}

/** Decodes an encoded image (JPEG, PNG, WebP, ... whatever libvips reads) to 8-bit pixels, alpha dropped. */
export async function decodeImage(bytes: Uint8Array): Promise<Pixels> {
  const sharp = loadSharp();
  let r: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    // failOn 'truncated': a truncated file is an error, not a partly grey image.
    r = await sharp(bytes, { failOn: 'truncated', limitInputPixels: 1 << 26 }).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageError(`not a decodable image: ${(e as Error).message.split('\n')[0]}`);
  }
  const { width, height, channels } = r.info;
  const data = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  // Drop alpha without compositing, as PIL's convert('RGB') / convert('L') do.
  const keep = channels === 2 ? 1 : channels === 4 ? 3 : channels;
  if (keep === channels) return { data, width, height, channels };
  const out = new Uint8Array(width * height * keep);
  for (let p = 0, q = 0; q < out.length; p += channels) for (let c = 0; c < keep; c++) out[q++] = data[p + c];
  return { data: out, width, height, channels: keep };
}

/** PIL's convert('L') of RGB pixels: L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16. */
export function toGrayscale(px: Pixels): Pixels {
  if (px.channels === 1) return px;
  if (px.channels !== 3) throw new ImageError(`expected 1 or 3 channels, got ${px.channels}`);
  const n = px.width * px.height, out = new Uint8Array(n), d = px.data;
  for (let i = 0; i < n; i++) out[i] = (d[3 * i] * 19595 + d[3 * i + 1] * 38470 + d[3 * i + 2] * 7471 + 0x8000) >>> 16;
  return { data: out, width: px.width, height: px.height, channels: 1 };
}

// ---- Pillow's Resample.c (bilinear, 8 bits per channel) ----

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  bounds: Int32Array; // [xmin, count] per output pixel
  kk: Int32Array; // fixed-point coefficients, ksize per output pixel
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/** precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize) -> outSize with support 1 (bilinear). */
function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), kk = new Int32Array(outSize * ksize), k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinear((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax ? (ww !== 0 ? k[x] / ww : k[x]) : 0;
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= 1 << PRECISION_BITS << 8) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/** Image.resize((width, height), Image.BILINEAR) of Pillow (antialiased when shrinking), bit for bit. */
export function resizeBilinear(px: Pixels, width: number, height: number): Pixels {
  if (width === px.width && height === px.height) return px;
  const C = px.channels;
  const h = precomputeCoeffs(px.width, width), v = precomputeCoeffs(px.height, height);
  const needH = width !== px.width, needV = height !== px.height;
  const half = 1 << (PRECISION_BITS - 1);
  // Horizontal pass over the rows the vertical pass uses (all rows when there is no vertical pass).
  let src = px.data, srcW = px.width, rowOff = 0, rows = px.height;
  if (needH) {
    if (needV) {
      rowOff = v.bounds[0];
      rows = v.bounds[2 * height - 2] + v.bounds[2 * height - 1] - rowOff;
    }
    const tmp = new Uint8Array(rows * width * C), d = px.data, kk = h.kk, ks = h.ksize;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + rowOff) * px.width * C, outRow = y * width * C;
      for (let xx = 0; xx < width; xx++) {
        const base = inRow + h.bounds[2 * xx] * C, n = h.bounds[2 * xx + 1], kb = xx * ks;
        for (let c = 0; c < C; c++) {
          let ss = half;
          for (let x = 0, p = base + c; x < n; x++, p += C) ss += d[p] * kk[kb + x];
          tmp[outRow + xx * C + c] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcW = width;
  }
  if (!needV) return { data: src, width, height: rows, channels: C };
  // Vertical pass, row by row (contiguous reads): acc[row] += weight * src[row].
  const rowLen = width * C, out = new Uint8Array(height * rowLen), acc = new Int32Array(rowLen), kk = v.kk, ks = v.ksize;
  if (srcW !== width) throw new Error('internal: resize row width');
  for (let yy = 0; yy < height; yy++) {
    const ymin = v.bounds[2 * yy] - rowOff, n = v.bounds[2 * yy + 1], kb = yy * ks;
    acc.fill(half);
    for (let y = 0; y < n; y++) {
      const k = kk[kb + y], r = (y + ymin) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[r + i] * k;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]);
  }
  return { data: out, width, height, channels: C };
}

/** transforms.Resize(size): the shorter side becomes `size`, the longer int(size * long / short). */
export function resizeShorter(px: Pixels, size: number): Pixels {
  const { width: w, height: h } = px;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  const [nw, nh] = w <= h ? [size, newLong] : [newLong, size];
  return resizeBilinear(px, nw, nh);
}

function pyRound(x: number): number {
  // Python's round(): half to even (x is a multiple of 0.5 here).
  const f = Math.floor(x), d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** transforms.CenterCrop([th, tw]): top = round((h - th) / 2), left = round((w - tw) / 2); zero padding when the image is smaller. */
export function centerCrop(px: Pixels, th: number, tw: number): Pixels {
  const C = px.channels;
  let { data, width: w, height: h } = px;
  if (tw > w || th > h) {
    // torchvision pads [left, top, right, bottom] = [(tw-w)//2, (th-h)//2, (tw-w+1)//2, (th-h+1)//2] with 0.
    const pl = tw > w ? (tw - w) >> 1 : 0, pt = th > h ? (th - h) >> 1 : 0;
    const pr = tw > w ? (tw - w + 1) >> 1 : 0, pb = th > h ? (th - h + 1) >> 1 : 0;
    const nw = w + pl + pr, nh = h + pt + pb, padded = new Uint8Array(nw * nh * C);
    for (let y = 0; y < h; y++) padded.set(data.subarray(y * w * C, (y + 1) * w * C), ((y + pt) * nw + pl) * C);
    data = padded;
    w = nw;
    h = nh;
    if (w === tw && h === th) return { data, width: w, height: h, channels: C };
  }
  const top = pyRound((h - th) / 2), left = pyRound((w - tw) / 2);
  if (top === 0 && left === 0 && th === h && tw === w) return { data, width: w, height: h, channels: C };
  const out = new Uint8Array(th * tw * C);
  for (let y = 0; y < th; y++) out.set(data.subarray(((y + top) * w + left) * C, ((y + top) * w + left + tw) * C), y * tw * C);
  return { data: out, width: tw, height: th, channels: C };
}

/** The 8-bit part of the preprocessing (grayscale, resize, crop): what ToTensor would see. */
export function transformPixels(px: Pixels, p: ImagePreprocess): Pixels {
  let x = p.grayscale ? toGrayscale(px) : px;
  if (!p.grayscale && p.channels === 1 && x.channels === 3) x = toGrayscale(x);
  if (p.resize !== null) x = resizeShorter(x, p.resize);
  if (p.crop !== null) x = centerCrop(x, p.crop[0], p.crop[1]);
  return x;
}

/**
 * ToTensor + Normalize into `out` (CHW float32, offset `offset`): fround(fround(fround(v / 255) - mean) / std),
 * grey replicated to `p.channels` (PIL's convert('RGB') of an 'L' image).
 */
export function pixelsToTensor(px: Pixels, p: ImagePreprocess, out?: Float32Array, offset = 0): Float32Array {
  const C = p.channels, hw = px.width * px.height;
  if (px.channels !== 1 && px.channels !== C) throw new ImageError(`cannot make ${C} channels from ${px.channels}`);
  const dst = out ?? new Float32Array(C * hw);
  if (dst.length < offset + C * hw) throw new RangeError(`output too small for [${C}, ${px.height}, ${px.width}]`);
  const lut = new Float32Array(256);
  for (let c = 0; c < C; c++) {
    const mean = Math.fround(p.mean[p.mean.length === 1 ? 0 : c]), std = Math.fround(p.std[p.std.length === 1 ? 0 : c]);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
    const src = px.channels === 1 ? 0 : c, stride = px.channels, base = offset + c * hw;
    for (let i = 0; i < hw; i++) dst[base + i] = lut[px.data[i * stride + src]];
  }
  return dst;
}

/** Decodes and preprocesses one encoded image to a CHW float32 tensor (as torchvision's transforms on PIL). */
export async function loadImageTensor(bytes: Uint8Array, p: ImagePreprocess): Promise<{ data: Float32Array; shape: number[] }> {
  const px = transformPixels(await decodeImage(bytes), p);
  return { data: pixelsToTensor(px, p), shape: [p.channels, px.height, px.width] };
}
