// Fuzzing the .pth reader (zip directory + restricted unpickler) with the seeded mutator: every
// mutant is a FormatError or a state dict that still validates; never another exception, a hang
// or an allocation the file does not justify. Pickle-level mutants are re-zipped with correct
// CRCs so they reach the unpickler instead of stopping at the CRC check.
import * as fs from 'fs';
import * as path from 'path';
import { unzipSync, zipSync, Zippable } from 'fflate';
import { loadStateDict } from '../lib/io/pth';
import { DTYPE_SIZE, RawTensor } from '../lib/io/types';
import { bitFlips, fieldOverwrites, fuzz, Mutant, randomMutants, truncations } from './helpers/mutate';

const FIX = path.join(__dirname, 'fixtures', 'io');
const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(FIX, f)));

function validate(m: Map<string, RawTensor>): void {
  for (const [k, t] of m) {
    if (typeof k !== 'string') throw new Error('non-string key');
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new Error(`${k}: ${t.data.length} elements for shape [${t.shape}]`);
    if (t.data.byteLength !== n * DTYPE_SIZE[t.dtype]) throw new Error(`${k}: byte length`);
  }
}

// Where the zip's structures and length fields are (local headers, central directory, end records).
function zipFields(b: Uint8Array): { boundaries: number[]; fields: Array<{ at: number; width: 1 | 2 | 4 | 8; name: string }> } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const boundaries: number[] = [];
  const fields: Array<{ at: number; width: 1 | 2 | 4 | 8; name: string }> = [];
  for (let p = 0; p + 4 <= b.length; p++) {
    if (b[p] !== 0x50 || b[p + 1] !== 0x4b) continue;
    const sig = dv.getUint32(p, true);
    if (sig === 0x04034b50) { // local header
      boundaries.push(p, p + 30);
      fields.push({ at: p + 18, width: 4, name: 'local csize' }, { at: p + 22, width: 4, name: 'local usize' },
        { at: p + 26, width: 2, name: 'local name length' }, { at: p + 28, width: 2, name: 'local extra length' });
    } else if (sig === 0x02014b50) { // central directory entry
      boundaries.push(p, p + 46);
      fields.push({ at: p + 20, width: 4, name: 'cd csize' }, { at: p + 24, width: 4, name: 'cd usize' },
        { at: p + 28, width: 2, name: 'cd name length' }, { at: p + 30, width: 2, name: 'cd extra length' },
        { at: p + 32, width: 2, name: 'cd comment length' }, { at: p + 42, width: 4, name: 'cd local offset' },
        { at: p + 10, width: 2, name: 'cd method' }, { at: p + 8, width: 2, name: 'cd flags' });
    } else if (sig === 0x06054b50) { // end of central directory
      boundaries.push(p, p + 22);
      fields.push({ at: p + 8, width: 2, name: 'eocd entries on disk' }, { at: p + 10, width: 2, name: 'eocd entries' },
        { at: p + 12, width: 4, name: 'eocd cd size' }, { at: p + 16, width: 4, name: 'eocd cd offset' });
    } else if (sig === 0x06064b50) { // zip64 end record
      boundaries.push(p, p + 56);
      fields.push({ at: p + 24, width: 8, name: 'zip64 entries on disk' }, { at: p + 32, width: 8, name: 'zip64 entries' },
        { at: p + 40, width: 8, name: 'zip64 cd size' }, { at: p + 48, width: 8, name: 'zip64 cd offset' });
    } else if (sig === 0x07064b50) { // zip64 locator
      boundaries.push(p);
      fields.push({ at: p + 8, width: 8, name: 'zip64 locator offset' });
    }
  }
  return { boundaries, fields };
}

/** Re-zips an archive with data.pkl replaced (stored, correct CRCs). */
function withPickle(archive: Uint8Array, pkl: Uint8Array): Uint8Array {
  const files: Zippable = {};
  for (const [k, v] of Object.entries(unzipSync(archive))) files[k] = k.endsWith('data.pkl') ? pkl : v;
  return zipSync(files, { level: 0 });
}
const pickleOf = (archive: Uint8Array): Uint8Array => Object.entries(unzipSync(archive)).find(([k]) => k.endsWith('data.pkl'))![1];

// The documented cap: tensors may total 4x the file plus 64 MiB (stride-0 expanded views), no more.
const allocLimit = (b: Uint8Array) => 4 * b.length + 64 * 1024 * 1024 + b.length;
const parse = (b: Uint8Array) => loadStateDict(b);

describe.each([['tiny_model.pth', 1], ['tiny_model_proto4.pth', 2], ['views.pth', 3]])('%s', (file, seed) => {
  const bytes = read(file);
  test('the seed file itself parses', () => validate(loadStateDict(bytes)));

  test('zip level: truncation at every structure, every length/offset field overwritten, bit flips, random mutants', () => {
    const { boundaries, fields } = zipFields(bytes);
    expect(fields.length).toBeGreaterThan(10);
    const mutants: Mutant[] = [
      ...truncations(bytes, boundaries, 40, seed),
      ...fieldOverwrites(bytes, fields),
      ...bitFlips(bytes, 300, seed * 7),
      ...randomMutants(bytes, 300, seed * 13),
    ];
    const s = fuzz(mutants, parse, { validate, allocLimit, budgetMs: 2000 });
    expect(s.formatErrors).toBeGreaterThan(s.cases * 0.5);
  });

  test('pickle level (re-zipped with valid CRCs): truncations, flips, huge lengths, random mutants', () => {
    const pkl = pickleOf(bytes);
    const opcodeStarts = Array.from({ length: pkl.length }, (_, i) => i).filter((i) => i % 7 === 0);
    const mutants: Mutant[] = [
      ...truncations(pkl, opcodeStarts, 20, seed),
      ...bitFlips(pkl, 400, seed * 17),
      ...randomMutants(pkl, 400, seed * 19),
    ].map((m) => ({ what: `data.pkl: ${m.what}`, bytes: withPickle(bytes, m.bytes) }));
    const s = fuzz(mutants, parse, { validate, allocLimit, budgetMs: 2000 });
    expect(s.formatErrors).toBeGreaterThan(0);
    expect(s.ok).toBeGreaterThan(0); // some flips only change values: those must still validate
  });
});

describe('zip tricks', () => {
  const bytes = read('tiny_model.pth');
  test('duplicate entries (same name twice) are refused', () => {
    const files = unzipSync(bytes);
    const names = Object.keys(files);
    // fflate's zipSync cannot write duplicates: rename one entry to a same-length twin of another in place.
    const target = names.find((n) => /\/data\/1$/.test(n))!;
    const twinOf = target.replace(/1$/, '0');
    expect(names).toContain(twinOf);
    const m = Uint8Array.from(bytes);
    const enc = new TextEncoder();
    // Every occurrence of the name (local header and central directory) becomes the other name.
    const from = enc.encode(target), to = enc.encode(twinOf);
    let replaced = 0;
    for (let p = 0; p + from.length <= m.length; p++) {
      if (from.every((c, i) => m[p + i] === c)) { m.set(to, p); replaced++; }
    }
    expect(replaced).toBeGreaterThanOrEqual(2);
    expect(() => loadStateDict(m)).toThrow(/duplicate entry/);
  });
});

describe('pickle tricks', () => {
  const base = read('tiny_model.pth');
  const P = (...parts: (number | number[])[]) => Uint8Array.from(parts.flat());
  const cases: Array<[string, Uint8Array]> = [
    ['100k nested EMPTY_LIST + APPEND', P(0x80, 2, Array(100000).fill(0x5d), Array(99999).fill(0x61), 0x2e)],
    ['100k nested 1-tuples', P(0x80, 2, 0x4e, Array(100000).fill(0x85), 0x2e)],
    ['100k nested dicts via SETITEM', P(0x80, 2, Array(50000).fill([0x7d, 0x4b, 1]).flat(), 0x4e, Array(50000).fill(0x73), 0x2e)],
    ['100k MARKs', P(0x80, 2, Array(100000).fill(0x28), 0x2e)],
    ['memo: 100k DUPs of one list', P(0x80, 2, 0x5d, Array(100000).fill(0x32), 0x2e)],
    ['memo: LONG_BINGET of an unset key', P(0x80, 2, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e)],
    ['BINUNICODE claiming 4 GiB', P(0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff, 0x2e)],
    ['BINBYTES8 claiming 2^63', P(0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2e)],
    ['FRAME claiming 2^53', P(0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0x20, 0, 0x2e)],
    ['LONG4 claiming 2 GiB', P(0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0x7f, 0x2e)],
    ['GLOBAL line without newline', P(0x80, 2, 0x63, Array(100000).fill(0x61), 0x2e)],
    ['empty pickle', P()],
  ];
  test.each(cases)('%s: FormatError within budget', (what, pkl) => {
    const s = fuzz([{ what, bytes: withPickle(base, pkl) }], parse, { allocLimit, budgetMs: 3000 });
    expect(s.formatErrors).toBe(1);
  });
});
