// Fuzzing the IDX reader (raw and gzipped): dims and the dimension count overwritten with huge
// values, truncations, bit flips, gzip bombs. FormatError or a valid array, never more memory
// than the (inflated) file holds.
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { IdxArray, readIdx } from '../lib/io/idx';
import { FormatError } from '../lib/io/types';
import { bitFlips, fieldOverwrites, fuzz, Mutant, randomMutants, truncations } from './helpers/mutate';

const FIX = path.join(__dirname, 'fixtures', 'io');
const raw = new Uint8Array(fs.readFileSync(path.join(FIX, 'fmnist', 't10k-images-idx3-ubyte')));
const gz = new Uint8Array(fs.readFileSync(path.join(FIX, 'fmnist', 'train-images-idx3-ubyte.gz')));

function validate(a: IdxArray): void {
  const n = a.dims.reduce((x, y) => x * y, 1);
  if (a.data.length !== n) throw new Error(`${a.data.length} elements for dims [${a.dims}]`);
}
const parse = (b: Uint8Array) => readIdx(b);

test('raw IDX: every dim and the dim count overwritten, truncations, flips, random mutants', () => {
  const nd = raw[3];
  const fields = [{ at: 3, width: 1 as const, name: 'ndims' }, ...Array.from({ length: nd }, (_, i) => ({ at: 4 + 4 * i, width: 4 as const, le: false, name: `dim ${i}` }))];
  const mutants: Mutant[] = [
    ...truncations(raw, [4, 4 + 4 * nd], 30, 1),
    ...fieldOverwrites(raw, fields),
    ...bitFlips(raw, 200, 2, [0, 1, 2, 3, ...Array.from({ length: 4 * nd }, (_, i) => 4 + i)]),
    ...randomMutants(raw, 300, 3),
  ];
  const s = fuzz(mutants, parse, { validate, allocLimit: (b) => 2 * b.length + 1024 });
  expect(s.formatErrors).toBeGreaterThan(50);
  expect(s.ok).toBeGreaterThan(0);
});

test('gzipped IDX: mutants of the compressed bytes and of the inflated header (re-gzipped)', () => {
  const inflated = readIdx(gz);
  validate(inflated);
  const mutants: Mutant[] = [...truncations(gz, [10, gz.length - 8], 30, 4), ...bitFlips(gz, 200, 5), ...randomMutants(gz, 200, 6)];
  const s1 = fuzz(mutants, parse, { validate, allocLimit: (b) => 1100 * b.length + 1024 });
  expect(s1.formatErrors).toBeGreaterThan(50);
  const plain = new Uint8Array(require('zlib').gunzipSync(gz));
  const nd = plain[3];
  const fields = Array.from({ length: nd }, (_, i) => ({ at: 4 + 4 * i, width: 4 as const, le: false, name: `dim ${i}` }));
  const regz = fieldOverwrites(plain, fields).map((m) => ({ what: m.what, bytes: new Uint8Array(gzipSync(m.bytes)) }));
  const s2 = fuzz(regz, parse, { validate, allocLimit: (b) => 1100 * b.length + 1024 });
  expect(s2.formatErrors).toBeGreaterThan(regz.length * 0.8);
});

test('a gzip bomb (64 MiB of zeros in 64 KiB) is a bounded FormatError; inflating is capped at the deflate ratio', () => {
  // A valid gzip stream can expand ~1032x at most; 64 MiB of zeros compresses to ~64 KiB.
  const bomb = new Uint8Array(gzipSync(Buffer.alloc(64 << 20), { level: 9 }));
  expect(bomb.length).toBeLessThan(70_000);
  // Header claims a [1, 2, 3] uint8 array, the data is 64 MiB: a FormatError (size mismatch), bounded.
  expect(() => readIdx(bomb)).toThrow(FormatError);
  // Tampered stream claiming more than deflate's ratio: the inflate is stopped at the cap.
  const tiny = new Uint8Array(gzipSync(Buffer.alloc(1 << 20)));
  const cut = tiny.slice(0, 40); // a prefix: truncated stream
  expect(() => readIdx(cut)).toThrow(FormatError);
});
