import * as fs from 'fs';
import * as path from 'path';
import { Zippable, unzipSync, zipSync } from 'fflate';
import { loadStateDict } from '../lib/io/pth';
import { FormatError, RawTensor, toFloat32 } from '../lib/io/types';
import { formatError, values } from './helpers/io';

const FIX = path.join(__dirname, 'fixtures', 'io');

interface TensorSpec { dtype: string; shape: number[]; values: (number | string)[]; bits?: number[] }
interface Expected {
  pth: Record<string, { keys: string[]; tensors: Record<string, TensorSpec> }>;
  malicious: Record<string, { global: string; marker: string }>;
  invalid: Record<string, string>;
}
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as Expected;

/** Returns 'ok' or 'format-error'; rethrows anything else (that would be a bug). */
function outcome(fn: () => unknown): 'ok' | 'format-error' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof FormatError) return 'format-error';
    throw err;
  }
}

/** Deterministic PRNG (mulberry32) so fuzz cases are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function read(name: string): Uint8Array { return new Uint8Array(fs.readFileSync(path.join(FIX, name))); }

/** Re-zips a torch archive with some entries replaced (undefined value removes the entry). */
function rezip(bytes: Uint8Array, replace: Record<string, Uint8Array | undefined>, level: 0 | 6 = 0): Uint8Array {
  const files: Zippable = {};
  for (const [k, v] of Object.entries(unzipSync(bytes))) files[k] = v;
  for (const [k, v] of Object.entries(replace)) {
    if (v === undefined) delete files[k];
    else files[k] = v;
  }
  return zipSync(files, { level });
}

// --- tiny pickle assembler for hand-made data.pkl files ---------------------------------------------------------
const enc = new TextEncoder();
type Part = number | string | Uint8Array;
function pk(...parts: Part[]): Uint8Array {
  const chunks = parts.map((p) => (typeof p === 'number' ? Uint8Array.of(p) : typeof p === 'string' ? enc.encode(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}
const u32le = (n: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; };
const str = (s: string): Uint8Array => { const b = enc.encode(s); return pk(0x58, u32le(b.length), b); }; // BINUNICODE
const PROTO2 = pk(0x80, 2);
const GLOBAL = (m: string, n: string): Uint8Array => pk(0x63, `${m}\n${n}\n`);
const MARK = 0x28, TUPLE = 0x74, REDUCE = 0x52, SETITEMS = 0x75, STOP = 0x2e, EMPTY_DICT = 0x7d, EMPTY_TUPLE = 0x29;
const BININT1 = (n: number): Uint8Array => pk(0x4b, n);
const NEWFALSE = 0x89;
const ORDERED_DICT = pk(GLOBAL('collections', 'OrderedDict'), EMPTY_TUPLE, REDUCE);
/** `_rebuild_tensor_v2(persid(('storage', FloatStorage, key, 'cpu', numel)), offset, (size,), (1,), False, OrderedDict())`. */
function tensor1d(key: string, numel: number, offset: number, size: number, storage = 'FloatStorage'): Uint8Array {
  return pk(GLOBAL('torch._utils', '_rebuild_tensor_v2'), MARK,
    MARK, str('storage'), GLOBAL('torch', storage), str(key), str('cpu'), BININT1(numel), TUPLE, 0x51,
    BININT1(offset), BININT1(size), 0x85, BININT1(1), 0x85, NEWFALSE, ORDERED_DICT, TUPLE, REDUCE);
}
/** A zip archive with the given data.pkl and one float32 storage '0' holding [1, 2, 3, 4]. */
function archive(pkl: Uint8Array, extra: Zippable = {}): Uint8Array {
  return zipSync({ 'archive/data.pkl': pkl, 'archive/version': enc.encode('3\n'),
    'archive/data/0': new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer), ...extra }, { level: 0 });
}
const dictOf = (...items: Uint8Array[]): Uint8Array => pk(PROTO2, EMPTY_DICT, MARK, ...items, SETITEMS, STOP);

describe('loadStateDict: fixtures written by torch 1.13', () => {
  for (const [file, exp] of Object.entries(expected.pth)) {
    test(file, () => {
      const sd = loadStateDict(path.join(FIX, file));
      expect([...sd.keys()]).toEqual(exp.keys);
      for (const key of exp.keys) {
        const t = sd.get(key) as RawTensor;
        const e = exp.tensors[key];
        expect({ key, dtype: t.dtype, shape: t.shape }).toEqual({ key, dtype: e.dtype, shape: e.shape });
        expect(t.data.length).toBe(e.shape.reduce((a, b) => a * b, 1));
        expect(values(t)).toEqual(e.values);
        if (e.bits) expect(Array.from(t.data as Uint16Array)).toEqual(e.bits);
      }
    });
  }

  test('bytes in memory give the same result as the path, including an unaligned view', () => {
    const bytes = read('views.pth');
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const a = loadStateDict(path.join(FIX, 'views.pth'));
    for (const input of [bytes, shifted.subarray(3)]) {
      const b = loadStateDict(input);
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [k, t] of a) expect(values(b.get(k) as RawTensor)).toEqual(values(t));
    }
  });

  test('views of one storage become independent, aligned, contiguous arrays', () => {
    const sd = loadStateDict(path.join(FIX, 'views.pth'));
    const base = sd.get('base') as RawTensor;
    const row1 = sd.get('row1') as RawTensor;
    expect(row1.data.buffer).not.toBe(base.data.buffer);
    const before = Array.from(row1.data as Float32Array);
    (base.data as Float32Array).fill(0);
    expect(Array.from(row1.data as Float32Array)).toEqual(before);
    for (const t of sd.values()) expect(t.data.byteOffset % 8).toBe(0);
    expect(sd.get('scalar')?.shape).toEqual([]);
  });

  test('the state dict _metadata (BUILD on the OrderedDict) is ignored', () => {
    const sd = loadStateDict(path.join(FIX, 'tiny_model.pth'));
    expect(sd.has('_metadata')).toBe(false);
    expect(sd.get('1.num_batches_tracked')?.data).toEqual(BigInt64Array.of(3n));
  });

  test('a deflate-compressed re-zip and an explicit little byteorder record load identically', () => {
    const bytes = read('tiny_model.pth');
    const a = loadStateDict(bytes);
    for (const variant of [rezip(bytes, {}, 6), rezip(bytes, { 'tiny_model/byteorder': enc.encode('little') })]) {
      const b = loadStateDict(variant);
      for (const [k, t] of a) expect(values(b.get(k) as RawTensor)).toEqual(values(t));
    }
    expect(formatError(() => loadStateDict(rezip(bytes, { 'tiny_model/byteorder': enc.encode('middle') }))).message).toMatch(/byteorder/);
  });
});

describe('loadStateDict: malicious pickles are rejected without executing anything', () => {
  for (const [file, { global, marker }] of Object.entries(expected.malicious)) {
    test(`${file} -> ${global}`, () => {
      if (fs.existsSync(marker)) fs.unlinkSync(marker);
      const err = formatError(() => loadStateDict(path.join(FIX, file)));
      expect(err.message).toContain(`'${global}'`);
      expect(err.message).toContain(file);
      expect(err.file).toBe(path.join(FIX, file));
      expect(fs.existsSync(marker)).toBe(false);
    });
  }

  test('forbidden globals are rejected at load time even if never called', () => {
    for (const [m, n] of [['subprocess', 'Popen'], ['builtins', 'getattr'], ['torch', 'load'], ['__torch__.Net', 'forward'],
      ['collections', 'defaultdict'], ['torch._utils', '_rebuild_qtensor']]) {
      const err = formatError(() => loadStateDict(archive(pk(PROTO2, GLOBAL(m, n), STOP))));
      expect(err.message).toContain(`forbidden global '${m}.${n}'`);
    }
    const viaStack = pk(0x80, 4, 0x8c, 5, 'posix', 0x8c, 6, 'system', 0x93, STOP);
    expect(formatError(() => loadStateDict(archive(viaStack))).message).toContain("'posix.system'");
  });

  test('allowed globals cannot be abused as callables', () => {
    const cases: [Uint8Array, RegExp][] = [
      [pk(PROTO2, GLOBAL('torch', 'FloatStorage'), EMPTY_TUPLE, REDUCE, STOP), /not callable/],
      [pk(PROTO2, GLOBAL('torch._tensor', 'Tensor'), EMPTY_TUPLE, REDUCE, STOP), /not callable/],
      [pk(PROTO2, GLOBAL('collections', 'OrderedDict'), str('x'), 0x85, REDUCE, STOP), /OrderedDict\(\) with arguments/],
      [pk(PROTO2, GLOBAL('torch._utils', '_rebuild_tensor_v2'), EMPTY_TUPLE, REDUCE, STOP), /6 or 7 arguments/],
      [pk(PROTO2, GLOBAL('torch._utils', '_rebuild_parameter'), str('x'), 0x85, REDUCE, STOP), /expects a tensor/],
      [pk(PROTO2, str('os'), EMPTY_TUPLE, REDUCE, STOP), /cannot call str/],
      // _rebuild_from_type_v2 with a non-tensor type or a non-rebuild function.
      [pk(PROTO2, GLOBAL('torch._tensor', '_rebuild_from_type_v2'), MARK, GLOBAL('torch._utils', '_rebuild_tensor_v2'),
        GLOBAL('collections', 'OrderedDict'), EMPTY_TUPLE, EMPTY_DICT, TUPLE, REDUCE, STOP), /unsupported tensor type/],
      [pk(PROTO2, GLOBAL('torch._tensor', '_rebuild_from_type_v2'), MARK, GLOBAL('collections', 'OrderedDict'),
        GLOBAL('torch._tensor', 'Tensor'), EMPTY_TUPLE, EMPTY_DICT, TUPLE, REDUCE, STOP), /expects a tensor rebuild function/],
    ];
    for (const [pkl, re] of cases) expect(formatError(() => loadStateDict(archive(pkl))).message).toMatch(re);
  });

  test('opcodes that could construct arbitrary objects are refused', () => {
    for (const [op, name] of [[0x69, 'INST'], [0x6f, 'OBJ'], [0x81, 'NEWOBJ'], [0x92, 'NEWOBJ_EX'], [0x82, 'EXT1'], [0x50, 'PERSID']] as const) {
      expect(formatError(() => loadStateDict(archive(pk(PROTO2, MARK, op, 'x\ny\n', STOP)))).message).toContain(name);
    }
    expect(formatError(() => loadStateDict(archive(pk(PROTO2, 0xff, STOP)))).message).toMatch(/unknown opcode/);
  });
});

describe('loadStateDict: invalid files', () => {
  for (const [file, fragment] of Object.entries(expected.invalid)) {
    test(file, () => {
      expect(formatError(() => loadStateDict(path.join(FIX, file))).message).toContain(fragment);
    });
  }

  test('storage keys cannot leave the archive data folder', () => {
    for (const key of ['../0', 'a/b', '..', '/etc/passwd', '', '0\n']) {
      expect(formatError(() => loadStateDict(archive(dictOf(str('w'), tensor1d(key, 4, 0, 4))))).message).toMatch(/invalid storage key/);
    }
    expect(loadStateDict(archive(dictOf(str('w'), tensor1d('0', 4, 1, 3)))).get('w')?.data).toEqual(Float32Array.of(2, 3, 4));
  });

  test('rebuilding views cannot amplify a small file into huge allocations', () => {
    // size (2^25,) with stride 0 over a 4-element storage: 128 MiB from a few hundred bytes.
    const big = pk(GLOBAL('torch._utils', '_rebuild_tensor_v2'), MARK,
      MARK, str('storage'), GLOBAL('torch', 'FloatStorage'), str('0'), str('cpu'), BININT1(4), TUPLE, 0x51,
      BININT1(0), 0x4a, u32le(2 ** 25), 0x85, BININT1(0), 0x85, NEWFALSE, ORDERED_DICT, TUPLE, REDUCE);
    expect(formatError(() => loadStateDict(archive(dictOf(str('w'), big)))).message).toMatch(/tensors would need more than/);
    // The same 16-byte view rebuilt over and over through the memo.
    const reps = 200_000;
    const again = new Uint8Array(reps * 6);
    for (let i = 0; i < reps; i++) again.set([0x68, 1, 0x68, 2, 0x52, 0x30], i * 6); // BINGET fn, BINGET args, REDUCE, POP
    const pkl = pk(PROTO2, GLOBAL('torch._utils', '_rebuild_tensor_v2'), 0x71, 1,
      MARK, MARK, str('storage'), GLOBAL('torch', 'FloatStorage'), str('0'), str('cpu'), BININT1(4), TUPLE, 0x51,
      BININT1(0), BININT1(4), 0x85, BININT1(1), 0x85, NEWFALSE, ORDERED_DICT, TUPLE, 0x71, 2, 0x30, 0x30, again, EMPTY_DICT, STOP);
    expect(outcome(() => loadStateDict(archive(pkl)))).toBe('ok'); // 3.2 MB of tensors from a 1.2 MB pickle: allowed
  });

  test('one storage saved under two keys (tied weights) gives two independent arrays', () => {
    const sd = loadStateDict(archive(dictOf(str('a'), tensor1d('0', 4, 0, 4), str('b'), tensor1d('0', 4, 0, 4))));
    const a = sd.get('a')?.data as Float32Array;
    const b = sd.get('b')?.data as Float32Array;
    expect(Array.from(b)).toEqual([1, 2, 3, 4]);
    a[0] = 9;
    expect(b[0]).toBe(1);
  });

  test('storage element counts and views are checked against the stored bytes', () => {
    const cases: [Uint8Array, RegExp][] = [
      [dictOf(str('w'), tensor1d('0', 5, 0, 4)), /has 16 bytes, expected 5 x 4/],
      [dictOf(str('w'), tensor1d('0', 4, 2, 3)), /view out of range/],
      [dictOf(str('w'), tensor1d('0', 2, 0, 2, 'DoubleStorage')), /(?:)/], // 16 bytes are 2 doubles: fine
      [dictOf(str('w'), tensor1d('0', 4, 0, 4), str('v'), tensor1d('0', 2, 0, 2, 'DoubleStorage')), /different types/],
      [dictOf(str('w'), tensor1d('0', 4, 0, 4, 'ComplexFloatStorage')), /forbidden global 'torch.ComplexFloatStorage'/],
    ];
    expect(loadStateDict(archive(cases[2][0])).get('w')?.dtype).toBe('float64');
    cases.splice(2, 1);
    for (const [pkl, re] of cases) expect(formatError(() => loadStateDict(archive(pkl))).message).toMatch(re);
  });

  test('pickle structure errors: nesting, memo misuse, stack underflow, truncation', () => {
    const cases: [Uint8Array, RegExp][] = [
      [pk(PROTO2, new Uint8Array(1001).fill(MARK), STOP), /nesting deeper than 1000/],
      [pk(PROTO2, 0x68, 5, STOP), /memo key 5 read before it was written/],
      [pk(PROTO2, 0x6a, u32le(0xffffffff), STOP), /memo key 4294967295/],
      [pk(PROTO2, 0x71, 0, STOP), /stack underflow/],
      [pk(PROTO2, MARK, 0x71, 0, STOP), /stack underflow/],
      [pk(PROTO2, EMPTY_DICT, MARK, str('k'), STOP), /unclosed MARK/],
      [pk(PROTO2, TUPLE, STOP), /no MARK/],
      [pk(PROTO2, EMPTY_DICT, MARK, str('k'), SETITEMS, STOP), /odd number/],
      [pk(PROTO2, 0x58, u32le(0x7fffffff), 'abc'), /truncated pickle/],
      [pk(PROTO2, 0x58, u32le(2), 0xc3, 0x28, STOP), /invalid UTF-8/],
      [pk(PROTO2, 0x8a, 255, new Uint8Array(255), STOP), /too large/],
      [pk(0x80, 6, STOP), /unsupported pickle protocol 6/],
      [pk(PROTO2, 0x63, 'torch\n'), /unterminated line/],
      [pk(PROTO2, EMPTY_DICT), /no STOP/],
      [pk(PROTO2, 0x5d, 0x5d, 0x62, STOP), /BUILD on list/],
      [pk(PROTO2, EMPTY_DICT, EMPTY_DICT, 0x62, STOP), /BUILD on dict/],
      [pk(PROTO2, 0x5d, STOP), /holds a list, not a state dict/],
      [dictOf(str('epoch'), BININT1(3)), /'epoch' has type int, not a tensor/],
      [dictOf(BININT1(3), tensor1d('0', 4, 0, 4)), /key 3 is not a string/],
      [pk(PROTO2, 0x51, STOP), /stack underflow/],
      [pk(PROTO2, str('x'), 0x51, STOP), /unsupported persistent id/],
    ];
    for (const [pkl, re] of cases) expect(formatError(() => loadStateDict(archive(pkl))).message).toMatch(re);
  });

  test('deeply nested containers built without MARKs do not overflow the stack', () => {
    const depth = 200_000;
    const lists = new Uint8Array(depth).fill(0x5d); // EMPTY_LIST x depth
    const appends = new Uint8Array(depth - 1).fill(0x61); // APPEND x (depth - 1)
    const pkl = pk(PROTO2, EMPTY_DICT, str('w'), lists, appends, 0x73, STOP);
    expect(formatError(() => loadStateDict(archive(pkl))).message).toMatch(/'w' has type list, not a tensor/);
  });

  test('zip-level problems', () => {
    const bytes = read('tiny_model.pth');
    expect(formatError(() => loadStateDict(new Uint8Array(0))).message).toMatch(/not a PyTorch state dict/);
    expect(formatError(() => loadStateDict(enc.encode('PK but not really a zip'))).message).toMatch(/end-of-central-directory/);
    expect(formatError(() => loadStateDict(rezip(bytes, { 'tiny_model/data.pkl': undefined }))).message).toMatch(/no <archive>\/data\.pkl/);
    expect(formatError(() => loadStateDict(rezip(bytes, { 'other/data.pkl': enc.encode('x') }))).message).toMatch(/more than one/);
    expect(formatError(() => loadStateDict(rezip(bytes, { 'tiny_model/data/3': undefined }))).message).toMatch(/'tiny_model\/data\/3' is missing/);
    // A flipped byte inside stored tensor data is caught by the CRC check.
    const local = Buffer.from(bytes).indexOf('tiny_model/data/0') - 30; // local file header of that entry
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    const dataStart = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    const flipped = bytes.slice();
    flipped[dataStart + 5] ^= 0x10;
    expect(formatError(() => loadStateDict(flipped)).message).toMatch(/CRC mismatch in entry 'tiny_model\/data\/0'/);
    // torch writes zip64 end records even for tiny files. A huge zip64 entry count, or a zip64 size marker without
    // its extra field, used to make fflate loop for minutes; both must be rejected up front.
    const z64 = Buffer.from(bytes).indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
    expect(z64).toBeGreaterThan(0);
    const bigCount = bytes.slice();
    bigCount[z64 + 32 + 3] = 0x40;
    expect(formatError(() => loadStateDict(bigCount)).message).toMatch(/central directory .* does not fit/);
    const cd = Buffer.from(bytes).indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const noExtra = bytes.slice();
    noExtra.fill(0xff, cd + 20, cd + 24);
    expect(formatError(() => loadStateDict(noExtra)).message).toMatch(/lacks its zip64 size field/);
  });

  test('every truncation of the archive and of data.pkl is a FormatError', () => {
    const bytes = read('tiny_model.pth');
    for (let n = 0; n < bytes.length; n++) expect(outcome(() => loadStateDict(bytes.subarray(0, n)))).toBe('format-error');
    const pkl = unzipSync(bytes)['tiny_model/data.pkl'];
    for (let n = 0; n < pkl.length; n++) {
      expect(outcome(() => loadStateDict(rezip(bytes, { 'tiny_model/data.pkl': pkl.subarray(0, n) })))).toBe('format-error');
    }
  });

  test('bit flips give a FormatError or a successful load, never another error', () => {
    const random = rng(1234);
    for (const file of ['tiny_model.pth', 'tiny_model_proto4.pth', 'views.pth']) {
      const bytes = read(file);
      const counts = { ok: 0, 'format-error': 0 };
      for (let i = 0; i < 400; i++) {
        const b = bytes.slice();
        b[Math.floor(random() * b.length)] ^= 1 << Math.floor(random() * 8);
        counts[outcome(() => loadStateDict(b))]++;
      }
      // Flips inside the pickle, re-zipped so the CRC matches: exercises the unpickler's own checks.
      const name = `${file.slice(0, -4)}/data.pkl`;
      const pkl = unzipSync(bytes)[name];
      for (let i = 0; i < pkl.length; i++) {
        const p = pkl.slice();
        p[i] ^= 1 << Math.floor(random() * 8);
        counts[outcome(() => loadStateDict(rezip(bytes, { [name]: p })))]++;
      }
      expect(counts['format-error']).toBeGreaterThan(0);
    }
    // Deflate-compressed entries: corrupt streams must surface as FormatError too.
    const deflated = rezip(read('tiny_model.pth'), {}, 6);
    for (let i = 0; i < 300; i++) {
      const b = deflated.slice();
      b[Math.floor(random() * b.length)] ^= 1 << Math.floor(random() * 8);
      outcome(() => loadStateDict(b));
    }
  });
});

describe('toFloat32', () => {
  test('float16 special values', () => {
    const bits = Uint16Array.of(0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00);
    const f = toFloat32({ dtype: 'float16', shape: [bits.length], data: bits });
    expect(Array.from(f.subarray(0, 10))).toEqual([0, -0, 1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity]);
    expect(f[10]).toBeNaN();
  });

  test('bfloat16, float64, int64 and bool', () => {
    expect(Array.from(toFloat32({ dtype: 'bfloat16', shape: [3], data: Uint16Array.of(0x3f80, 0xc049, 0xff80) })))
      .toEqual([1, -3.140625, -Infinity]);
    expect(Array.from(toFloat32({ dtype: 'float64', shape: [2], data: Float64Array.of(0.1, 1e300) }))).toEqual([Math.fround(0.1), Infinity]);
    expect(Array.from(toFloat32({ dtype: 'int64', shape: [2], data: BigInt64Array.of(-5n, 2n ** 40n) }))).toEqual([-5, 2 ** 40]);
    expect(Array.from(toFloat32({ dtype: 'bool', shape: [2], data: Uint8Array.of(1, 0) }))).toEqual([1, 0]);
    const same = Float32Array.of(1);
    expect(toFloat32({ dtype: 'float32', shape: [1], data: same })).toBe(same);
  });
});
