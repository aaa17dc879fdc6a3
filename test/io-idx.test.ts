import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { loadFashionMnist, readIdx } from '../lib/io/idx';
import { FormatError } from '../lib/io/types';
import { formatError } from './helpers/io';

const FIX = path.join(__dirname, 'fixtures', 'io');
const FMNIST = path.join(FIX, 'fmnist');
const REAL = '/usr/share/datasets/fashion-mnist';

interface SplitSpec { count: number; labels: number[]; pixel_sums: number[]; first_row: number[] }
const expected = (JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as {
  idx: Record<string, { dims: number[]; values: number[] }> & { fmnist: Record<'train' | 'test', SplitSpec> };
}).idx;

/** Raw IDX bytes: magic, big-endian dims, then the given (already big-endian) payload. */
function idx(type: number, dims: number[], payload: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  head.set([0, 0, type, dims.length]);
  const dv = new DataView(head.buffer);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  return Buffer.concat([head, payload]);
}

describe('readIdx', () => {
  for (const name of ['int8.idx', 'int16.idx', 'int32.idx', 'float32.idx', 'float64.idx.gz']) {
    test(name, () => {
      const { dims, data } = readIdx(path.join(FIX, name));
      expect(dims).toEqual(expected[name].dims);
      expect(Array.from(data)).toEqual(expected[name].values);
    });
  }

  test('element classes follow the type byte', () => {
    expect(readIdx(path.join(FIX, 'int8.idx')).data).toBeInstanceOf(Int8Array);
    expect(readIdx(path.join(FIX, 'int16.idx')).data).toBeInstanceOf(Int16Array);
    expect(readIdx(path.join(FIX, 'int32.idx')).data).toBeInstanceOf(Int32Array);
    expect(readIdx(path.join(FIX, 'float32.idx')).data).toBeInstanceOf(Float32Array);
    expect(readIdx(path.join(FIX, 'float64.idx.gz')).data).toBeInstanceOf(Float64Array);
    expect(readIdx(idx(0x08, [2], Uint8Array.of(1, 2))).data).toEqual(Uint8Array.of(1, 2));
  });

  test('gzip is detected by content, not by file name', () => {
    const raw = fs.readFileSync(path.join(FIX, 'int16.idx'));
    expect(Array.from(readIdx(gzipSync(raw)).data)).toEqual(expected['int16.idx'].values);
    expect(Array.from(readIdx(new Uint8Array(raw)).data)).toEqual(expected['int16.idx'].values);
  });

  test('malformed files are rejected with a FormatError', () => {
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /too short/],
      [Uint8Array.of(0, 0, 8), /too short/],
      [Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 0), /bad IDX magic 01 00 08 01/],
      [Uint8Array.of(0, 0, 0x0a, 1, 0, 0, 0, 0), /bad IDX magic/],
      [Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 1), /truncated IDX header/],
      [idx(0x08, [3], Uint8Array.of(1, 2)), /need 3 data bytes, file has 2/],
      [idx(0x08, [1], Uint8Array.of(1, 2)), /need 1 data bytes, file has 2/],
      [idx(0x0c, [2], new Uint8Array(7)), /int32 need 8 data bytes/],
      [idx(0x08, [0xffffffff, 0xffffffff, 0xffffffff], new Uint8Array(4)), /need .* data bytes/],
      [gzipSync(Buffer.from('hello')).subarray(0, 12), /corrupt gzip data/],
      [(() => { const g = gzipSync(idx(0x08, [2], Uint8Array.of(1, 2))); g[g.length - 6] ^= 1; return g; })(), /corrupt gzip data/],
    ];
    for (const [bytes, re] of cases) expect(formatError(() => readIdx(bytes)).message).toMatch(re);
    // A missing file is an I/O error, not a format error.
    expect(() => readIdx(path.join(FMNIST, 'nope'))).toThrow(/ENOENT/);
  });

  test('every truncation of a raw and of a gzipped file is a FormatError', () => {
    const raw = new Uint8Array(fs.readFileSync(path.join(FMNIST, 't10k-labels-idx1-ubyte')));
    const gz = new Uint8Array(fs.readFileSync(path.join(FMNIST, 'train-labels-idx1-ubyte.gz')));
    for (const b of [raw, gz, new Uint8Array(fs.readFileSync(path.join(FIX, 'float64.idx.gz')))]) {
      for (let n = 0; n < b.length; n++) expect(() => readIdx(b.subarray(0, n))).toThrow(FormatError);
    }
  });
});

describe('loadFashionMnist', () => {
  for (const split of ['train', 'test'] as const) {
    test(`${split} split from committed fixtures (${split === 'train' ? 'gzipped' : 'raw'})`, () => {
      const e = expected.fmnist[split];
      const s = loadFashionMnist(FMNIST, split);
      expect({ count: s.count, height: s.height, width: s.width }).toEqual({ count: e.count, height: 28, width: 28 });
      expect(s.images.length).toBe(e.count * 28 * 28);
      expect(Array.from(s.labels)).toEqual(e.labels);
      expect(Array.from(s.images.subarray(0, 28))).toEqual(e.first_row);
      const sums = Array.from({ length: s.count }, (_, i) => s.images.subarray(i * 784, (i + 1) * 784).reduce((a, b) => a + b, 0));
      expect(sums).toEqual(e.pixel_sums);
    });
  }

  describe('with a scratch directory', () => {
    let dir = '';
    beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-idx-')); });
    afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

    test('missing files: the error lists every name looked for', () => {
      const err = formatError(() => loadFashionMnist(dir, 'test'));
      for (const name of ['t10k-images-idx3-ubyte', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte', 't10k-labels-idx1-ubyte.gz']) {
        expect(err.message).toContain(name);
      }
      expect(err.message).toContain(dir);
    });

    test('image and label counts must agree; labels must be classes 0..9; shapes are checked', () => {
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idx(0x08, [2, 2, 2], new Uint8Array(8)));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(0x08, [3], Uint8Array.of(1, 2, 3))));
      expect(formatError(() => loadFashionMnist(dir, 'train')).message).toMatch(/2 images but 3 labels/);
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(0x08, [2], Uint8Array.of(1, 10))));
      expect(formatError(() => loadFashionMnist(dir, 'train')).message).toMatch(/label 10 at index 1/);
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(0x08, [2], Uint8Array.of(1, 9))));
      expect(loadFashionMnist(dir, 'train')).toMatchObject({ count: 2, height: 2, width: 2 });
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idx(0x08, [2, 4], new Uint8Array(8)));
      expect(formatError(() => loadFashionMnist(dir, 'train')).message).toMatch(/\[count, height, width\]/);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idx(0x09, [2, 2, 2], new Uint8Array(8)));
      expect(formatError(() => loadFashionMnist(dir, 'train')).message).toMatch(/uint8 images/);
    });
  });

  const haveReal = fs.existsSync(path.join(REAL, 't10k-images-idx3-ubyte.gz'));
  (haveReal ? test : test.skip)('real Fashion-MNIST test split (skipped when the dataset is absent)', () => {
    const s = loadFashionMnist(REAL, 'test');
    expect({ count: s.count, height: s.height, width: s.width }).toEqual({ count: 10000, height: 28, width: 28 });
    const perClass = new Array<number>(10).fill(0);
    for (const l of s.labels) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(1000));
  });
});
