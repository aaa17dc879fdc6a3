import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeSafetensors, readSafetensors, writeSafetensors } from '../lib/io/safetensors';
import { FormatError, RawTensor } from '../lib/io/types';
import { formatError, values } from './helpers/io';

const FIX = path.join(__dirname, 'fixtures', 'io');
const FILE = path.join(FIX, 'small.safetensors');

interface TensorSpec { dtype: string; shape: number[]; values: (number | string)[]; bits?: number[] }
const expected = (JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as {
  safetensors: Record<string, { keys: string[]; metadata: Record<string, string>; tensors: Record<string, TensorSpec> }>;
}).safetensors['small.safetensors'];

/** A safetensors file from a raw header string (padded here) and a data buffer. */
function build(header: string | object, data: Uint8Array = new Uint8Array(0), pad = true): Uint8Array {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (pad && json.length % 8) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('readSafetensors', () => {
  test('fixture written by hand in Python: order, dtypes, shapes, values, metadata', () => {
    const { tensors, metadata } = readSafetensors(FILE);
    expect(metadata).toEqual(expected.metadata);
    expect([...tensors.keys()]).toEqual(expected.keys);
    for (const key of expected.keys) {
      const t = tensors.get(key) as RawTensor;
      const e = expected.tensors[key];
      expect({ key, dtype: t.dtype, shape: t.shape }).toEqual({ key, dtype: e.dtype, shape: e.shape });
      expect(values(t)).toEqual(e.values);
      if (e.bits) expect(Array.from(t.data as Uint16Array)).toEqual(e.bits);
      expect(t.data.byteOffset % 8).toBe(0);
    }
  });

  test('unaligned input bytes are copied into aligned arrays', () => {
    const bytes = fs.readFileSync(FILE);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const { tensors } = readSafetensors(shifted.subarray(1));
    expect(values(tensors.get('weight') as RawTensor)).toEqual(expected.tensors.weight.values);
    expect(values(tensors.get('ids') as RawTensor)).toEqual(expected.tensors.ids.values);
  });

  test('bad headers are rejected with a FormatError', () => {
    const f32 = (n: number): Uint8Array => new Uint8Array(new Float32Array(n).buffer);
    const t = (dtype: string, shape: unknown, offs: unknown): object => ({ dtype, shape, data_offsets: offs });
    const badUtf8 = new Uint8Array(16); // header '{"\xff":1} ' (invalid UTF-8 inside a key)
    new DataView(badUtf8.buffer).setBigUint64(0, 8n, true);
    badUtf8.set([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20], 8);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /too short/],
      [build({}).subarray(0, 12), /exceeds the file/],
      [(() => { const b = build({ a: t('F32', [1], [0, 4]) }, f32(1)); new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true); return b; })(), /exceeds the file/],
      [build('[1, 2, 3]'), /does not start with "\{"/],
      [build(' {}'), /does not start with "\{"/],
      [build('{"a": '), /not valid UTF-8 JSON/],
      [badUtf8, /not valid UTF-8 JSON/],
      [build({ a: t('C64', [1], [0, 8]) }, f32(2)), /unsupported dtype "C64"/],
      [build({ a: t('F8_E4M3', [1], [0, 1]) }, new Uint8Array(1)), /unsupported dtype/],
      [build({ a: t('F32', [-1], [0, 4]) }, f32(1)), /invalid dimension -1/],
      [build({ a: t('F32', [1.5], [0, 4]) }, f32(1)), /invalid dimension 1.5/],
      [build({ a: t('F32', '2', [0, 8]) }, f32(2)), /shape is not a list/],
      [build({ a: t('F32', [2], [0]) }, f32(2)), /invalid data_offsets/],
      [build({ a: t('F32', [2], [8, 0]) }, f32(2)), /reversed/],
      [build({ a: t('F32', [2], [0, 12]) }, f32(3)), /12 bytes .* needs 8/],
      [build({ a: t('F32', [2], [0, 8]) }, f32(1)), /run past/],
      [build({ a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) }, f32(3)), /overlap/],
      [build({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, f32(3)), /hole after offset 4/],
      [build({ a: t('F32', [1], [0, 4]) }, f32(2)), /4 bytes after the last tensor/],
      [build({ a: t('F32', [2 ** 40, 2 ** 40], [0, 4]) }, f32(1)), /too large/],
      [build({ __metadata__: { k: 1 } }), /__metadata__ value for 'k' is not a string/],
      [build({ __metadata__: ['x'] }), /__metadata__ is not an object/],
      [build({ a: 5 }), /entry is not an object/],
      [build({ a: t('F32', [1], [0, 2 ** 60]) }, f32(1)), /invalid data_offsets/],
    ];
    for (const [bytes, re] of cases) expect(formatError(() => readSafetensors(bytes)).message).toMatch(re);
  });

  test('edge cases accepted by the spec: empty file header, unpadded header, null metadata', () => {
    expect(readSafetensors(build({})).tensors.size).toBe(0);
    const unpadded = build({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, Uint8Array.of(7), false);
    expect(readSafetensors(unpadded).tensors.get('a')?.data).toEqual(Uint8Array.of(7));
    expect(readSafetensors(build({ __metadata__: null })).metadata).toEqual({});
  });

  test('every truncation and every header bit flip gives a FormatError (or, for flips, a valid file)', () => {
    const bytes = new Uint8Array(fs.readFileSync(FILE));
    for (let n = 0; n < bytes.length; n++) {
      expect(() => readSafetensors(bytes.subarray(0, n))).toThrow(FormatError);
    }
    const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    for (let i = 0; i < headerEnd; i++) {
      for (let bit = 0; bit < 8; bit += 3) {
        const b = bytes.slice();
        b[i] ^= 1 << bit;
        try {
          readSafetensors(b);
        } catch (err) {
          expect(err).toBeInstanceOf(FormatError);
        }
      }
    }
  });
});

describe('encodeSafetensors / writeSafetensors', () => {
  test('read -> encode reproduces the fixture byte for byte', () => {
    const bytes = new Uint8Array(fs.readFileSync(FILE));
    const { tensors, metadata } = readSafetensors(bytes);
    expect(Buffer.from(encodeSafetensors(tensors, metadata)).equals(Buffer.from(bytes))).toBe(true);
  });

  test('write then read gives identical bytes, values and metadata; no temp file is left', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-st-'));
    try {
      const tensors: Record<string, RawTensor> = {
        w: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1.5, -0, NaN, Infinity) },
        idx: { dtype: 'int64', shape: [2], data: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n) },
        h: { dtype: 'float16', shape: [1], data: Uint16Array.of(0x3c00) },
        b: { dtype: 'bool', shape: [3], data: Uint8Array.of(1, 0, 1) },
        s: { dtype: 'float64', shape: [], data: Float64Array.of(Math.PI) },
        z: { dtype: 'int8', shape: [0, 5], data: new Int8Array(0) },
      };
      // A tensor literally named "__proto__" must stay an ordinary entry.
      Object.defineProperty(tensors, '__proto__', { value: { dtype: 'int32', shape: [1], data: Int32Array.of(42) }, enumerable: true });
      const metadata: Record<string, string> = { format: 'pt', 'odd "key"\n': 'välue\u0001' };
      const file = path.join(dir, 'x.safetensors');
      writeSafetensors(file, tensors, metadata);
      expect(fs.readdirSync(dir)).toEqual(['x.safetensors']);
      const onDisk = new Uint8Array(fs.readFileSync(file));
      expect(Buffer.from(onDisk).equals(Buffer.from(encodeSafetensors(tensors, metadata)))).toBe(true);
      expect(Number(new DataView(onDisk.buffer, onDisk.byteOffset).getBigUint64(0, true)) % 8).toBe(0);
      const back = readSafetensors(file);
      expect(back.metadata).toEqual(metadata);
      expect([...back.tensors.keys()]).toEqual(Object.keys(tensors));
      for (const [k, t] of Object.entries(tensors)) {
        const r = back.tensors.get(k) as RawTensor;
        expect(r.dtype).toBe(t.dtype);
        expect(r.shape).toEqual(t.shape);
        expect(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength)
          .equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true);
      }
      // The header is the reference layout: metadata first, compact JSON, space padding.
      const n = Number(new DataView(onDisk.buffer, onDisk.byteOffset).getBigUint64(0, true));
      const header = Buffer.from(onDisk.subarray(8, 8 + n)).toString('utf8');
      expect(header.startsWith('{"__metadata__":{"format":"pt",')).toBe(true);
      expect(header).toMatch(/\} *$/);
      // A Map works too and gives the same bytes.
      expect(Buffer.from(encodeSafetensors(new Map(Object.entries(tensors)), metadata)).equals(Buffer.from(onDisk))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no metadata: the __metadata__ key is omitted and reading gives {}', () => {
    const bytes = encodeSafetensors({ a: { dtype: 'uint8', shape: [2], data: Uint8Array.of(1, 2) } });
    expect(Buffer.from(bytes).toString('latin1')).not.toContain('__metadata__');
    expect(readSafetensors(bytes).metadata).toEqual({});
    expect(readSafetensors(encodeSafetensors({})).tensors.size).toBe(0);
  });

  test('invalid tensors are refused when writing', () => {
    const cases: [Record<string, RawTensor>, RegExp][] = [
      [{ a: { dtype: 'float32', shape: [2], data: Float64Array.of(1, 2) } }, /must be a Float32Array, got Float64Array/],
      [{ a: { dtype: 'float32', shape: [3], data: Float32Array.of(1, 2) } }, /2 elements for shape \[3\]/],
      [{ a: { dtype: 'float32', shape: [-2], data: Float32Array.of(1, 2) } }, /invalid dimension/],
      [{ __metadata__: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) } }, /reserved/],
      [{ a: { dtype: 'complex64' as never, shape: [0], data: new Uint8Array(0) } }, /unsupported dtype/],
    ];
    for (const [t, re] of cases) expect(formatError(() => encodeSafetensors(t)).message).toMatch(re);
    expect(formatError(() => encodeSafetensors({}, { k: 3 as unknown as string })).message).toMatch(/not a string/);
  });
});
