/**
 * IDX files (the MNIST / Fashion-MNIST container): magic 0x00 0x00 <type> <ndims>, ndims big-endian uint32
 * dimensions, then the big-endian elements. Gzipped files are recognised by their magic and inflated first.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { gunzipSync } from 'zlib';
import { FormatError } from './types';

/** Element arrays an IDX file can hold (type bytes 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E). */
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
/** An IDX array: its dimensions and row-major elements. */
export interface IdxArray { dims: number[]; data: IdxData }

const TYPES: Readonly<Record<number, { size: number; make: (n: number) => IdxData; name: string }>> = {
  0x08: { size: 1, make: (n) => new Uint8Array(n), name: 'uint8' },
  0x09: { size: 1, make: (n) => new Int8Array(n), name: 'int8' },
  0x0b: { size: 2, make: (n) => new Int16Array(n), name: 'int16' },
  0x0c: { size: 4, make: (n) => new Int32Array(n), name: 'int32' },
  0x0d: { size: 4, make: (n) => new Float32Array(n), name: 'float32' },
  0x0e: { size: 8, make: (n) => new Float64Array(n), name: 'float64' },
};

/** Decompresses `bytes` when they start with the gzip magic (1f 8b), else returns them unchanged. */
function maybeGunzip(bytes: Uint8Array, label?: string): Uint8Array {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  try {
    // Deflate expands data by at most ~1032x: a "gzip bomb" claiming more is refused before it is inflated.
    return gunzipSync(bytes, { maxOutputLength: Math.min(bytes.length * 1032 + 1024, 2 ** 31 - 1) });
  } catch (err) {
    throw new FormatError(`corrupt gzip data: ${(err as Error).message}`, label);
  }
}

/** Reads an IDX file (path or bytes, optionally gzipped) into its dimensions and elements (host byte order). */
export function readIdx(file: string | Uint8Array): IdxArray {
  const label = typeof file === 'string' ? file : undefined;
  const b = maybeGunzip(typeof file === 'string' ? readFileSync(file) : file, label);
  if (b.length < 4) throw new FormatError(`IDX file of ${b.length} bytes is too short`, label);
  const type = TYPES[b[2]];
  if (b[0] !== 0 || b[1] !== 0 || !type) {
    throw new FormatError(`bad IDX magic ${[...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`, label);
  }
  const nd = b[3];
  const dataStart = 4 + 4 * nd;
  if (b.length < dataStart) throw new FormatError(`truncated IDX header (${nd} dimensions need ${dataStart} bytes, file has ${b.length})`, label);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: number[] = [];
  let n = 1;
  for (let i = 0; i < nd; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    dims.push(d);
    n *= d; // a product beyond 2^53 loses precision but then also fails the size check below
  }
  const expected = n * type.size;
  if (b.length - dataStart !== expected) {
    throw new FormatError(`IDX dims [${dims.join(', ')}] of ${type.name} need ${expected} data bytes, file has ${b.length - dataStart}`, label);
  }
  const data = type.make(n);
  const size = type.size;
  if (size === 1) {
    new Uint8Array(data.buffer).set(b.subarray(dataStart));
  } else {
    // Big-endian to host order, swapping bytes into the (little-endian) output buffer.
    const out = new Uint8Array(data.buffer);
    for (let i = 0, p = dataStart; i < expected; i += size, p += size) {
      for (let k = 0; k < size; k++) out[i + k] = b[p + size - 1 - k];
    }
  }
  return { dims, data };
}

/** One dataset split: `count` images of height x width uint8 pixels, row-major, and their labels. */
export interface FashionMnistSplit { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number }

/** Loads one Fashion-MNIST (or MNIST) split from `dir`, accepting raw or gzipped IDX files. */
export function loadFashionMnist(dir: string, split: 'train' | 'test'): FashionMnistSplit {
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (base: string): string => {
    const candidates = [join(dir, base), join(dir, `${base}.gz`)];
    const found = candidates.find((p) => existsSync(p));
    if (!found) {
      const all = ['images-idx3-ubyte', 'labels-idx1-ubyte'].flatMap((k) => [`${prefix}-${k}`, `${prefix}-${k}.gz`]);
      throw new FormatError(`Fashion-MNIST ${split} split not found in ${dir}: looked for ${all.join(', ')}`);
    }
    return found;
  };
  const imagesPath = find(`${prefix}-images-idx3-ubyte`);
  const labelsPath = find(`${prefix}-labels-idx1-ubyte`);
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (!(images.data instanceof Uint8Array) || images.dims.length !== 3) {
    throw new FormatError(`expected uint8 images of shape [count, height, width], got ${images.dims.length} dims`, imagesPath);
  }
  if (!(labels.data instanceof Uint8Array) || labels.dims.length !== 1) {
    throw new FormatError(`expected uint8 labels of shape [count], got ${labels.dims.length} dims`, labelsPath);
  }
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new FormatError(`${count} images but ${labels.dims[0]} labels (${labelsPath})`, imagesPath);
  }
  const l = labels.data;
  for (let i = 0; i < l.length; i++) {
    if (l[i] > 9) throw new FormatError(`label ${l[i]} at index ${i} is not a class 0..9`, labelsPath);
  }
  return { images: images.data, labels: l, count, height, width };
}
