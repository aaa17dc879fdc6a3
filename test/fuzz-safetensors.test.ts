// Fuzzing the safetensors reader: byte-level mutants and header-level (JSON) mutants re-encoded
// with a consistent length prefix: huge / negative / off-by-one offsets and shapes, wrong dtypes,
// duplicate keys, deep nesting. Every mutant is a FormatError or a parse that still validates.
import * as fs from 'fs';
import * as path from 'path';
import { duplicateKey, readSafetensors, Safetensors } from '../lib/io/safetensors';
import { DTYPE_SIZE, FormatError } from '../lib/io/types';
import { rng, randInt } from './helpers/random';
import { bitFlips, deepJson, duplicateJsonKey, fieldOverwrites, fuzz, Mutant, randomMutants, truncations } from './helpers/mutate';

const bytes = new Uint8Array(fs.readFileSync(path.join(__dirname, 'fixtures', 'io', 'small.safetensors')));
const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
const data = bytes.subarray(8 + headerLen);

function validate(s: Safetensors): void {
  let total = 0;
  for (const [k, t] of s.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n || t.data.byteLength !== n * DTYPE_SIZE[t.dtype]) throw new Error(`${k}: ${t.data.length} elements for [${t.shape}]`);
    total += t.data.byteLength;
  }
  for (const v of Object.values(s.metadata)) if (typeof v !== 'string') throw new Error('metadata value not a string');
  if (Object.getPrototypeOf(s.metadata) !== Object.prototype) throw new Error('metadata prototype replaced');
  if (total > 2 * bytes.length + 1024) throw new Error(`tensors total ${total} bytes from a small file`);
}

/** A safetensors file with the given header text and data bytes (length prefix consistent). */
function withHeader(json: string, body: Uint8Array = data): Uint8Array {
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}

const parse = (b: Uint8Array) => readSafetensors(b);
const allocLimit = (b: Uint8Array) => 2 * b.length + 1024 * 1024;

test('the seed file parses', () => validate(readSafetensors(bytes)));

test('byte level: truncation at every boundary, the header length overwritten, bit flips, random mutants', () => {
  const boundaries = [8, 8 + headerLen];
  for (const e of Object.values(header)) if (e.data_offsets) boundaries.push(8 + headerLen + e.data_offsets[0], 8 + headerLen + e.data_offsets[1]);
  const mutants: Mutant[] = [
    ...truncations(bytes, boundaries, 40, 1),
    ...fieldOverwrites(bytes, [{ at: 0, width: 8, name: 'header length' }, { at: 0, width: 4, name: 'header length (low half)' }]),
    ...bitFlips(bytes, 500, 2),
    ...randomMutants(bytes, 500, 3),
  ];
  const s = fuzz(mutants, parse, { validate, allocLimit });
  expect(s.formatErrors).toBeGreaterThan(100);
  expect(s.ok).toBeGreaterThan(0); // flips in tensor data only change values
});

test('header level: every offset, shape and dtype replaced by hostile values', () => {
  const hostile: unknown[] = [-1, -0, 1.5, 2 ** 53, 2 ** 64, 1e308, NaN, null, '8', [], {}, true, 2 ** 31, 2 ** 32 + 8];
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const mutants: Mutant[] = [];
  for (const name of names) {
    for (const v of hostile) {
      for (const field of ['begin', 'end', 'shape0', 'shape', 'dtype', 'entry'] as const) {
        const h = JSON.parse(JSON.stringify(header));
        const e = h[name];
        if (field === 'begin') e.data_offsets[0] = v; else if (field === 'end') e.data_offsets[1] = v;
        else if (field === 'shape0') e.shape[0] = v; else if (field === 'shape') e.shape = v;
        else if (field === 'dtype') e.dtype = v; else h[name] = v;
        // JSON.stringify turns NaN/1e308*10 into null; hand-write the huge ones so they stay numbers.
        mutants.push({ what: `${name}.${field} = ${String(v)}`, bytes: withHeader(JSON.stringify(h)) });
      }
    }
    // Off by one in either direction, and offsets pointing into another tensor.
    for (const d of [-1, 1]) {
      const h = JSON.parse(JSON.stringify(header));
      h[name].data_offsets = h[name].data_offsets.map((x: number) => x + d);
      mutants.push({ what: `${name} offsets shifted by ${d}`, bytes: withHeader(JSON.stringify(h)) });
    }
    const h = JSON.parse(JSON.stringify(header));
    h[name].shape = [...h[name].shape, 0];
    h[name].data_offsets = [0, 0];
    mutants.push({ what: `${name} made empty`, bytes: withHeader(JSON.stringify(h)) });
  }
  // Huge declared shapes that would need terabytes: refused before anything is allocated.
  for (const shape of [[2 ** 20, 2 ** 20, 2 ** 20], [2 ** 26, 2 ** 26], [1e15]]) {
    const h = JSON.parse(JSON.stringify(header));
    h[names[0]].shape = shape;
    mutants.push({ what: `huge shape ${shape}`, bytes: withHeader(JSON.stringify(h)) });
  }
  // A header length that claims the whole data buffer too.
  mutants.push({ what: 'header covering the data', bytes: withHeader(JSON.stringify(header) + ' '.repeat(data.length), new Uint8Array(0)) });
  const s = fuzz(mutants, parse, { validate, allocLimit });
  expect(s.formatErrors).toBeGreaterThan(s.cases * 0.8);
});

test('random header edits (seeded): numbers perturbed, keys dropped, entries swapped', () => {
  const r = rng(11);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const mutants: Mutant[] = [];
  for (let i = 0; i < 400; i++) {
    const h = JSON.parse(JSON.stringify(header));
    const name = names[randInt(r, 0, names.length - 1)];
    const e = h[name];
    switch (randInt(r, 0, 4)) {
      case 0: e.data_offsets[randInt(r, 0, 1)] += randInt(r, -16, 16); break;
      case 1: if (e.shape.length) e.shape[randInt(r, 0, e.shape.length - 1)] += randInt(r, -2, 2); break;
      case 2: delete e[['dtype', 'shape', 'data_offsets'][randInt(r, 0, 2)]]; break;
      case 3: { const other = h[names[randInt(r, 0, names.length - 1)]]; [e.data_offsets, other.data_offsets] = [other.data_offsets, e.data_offsets]; break; }
      default: e.dtype = ['F32', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'f32'][randInt(r, 0, 7)];
    }
    mutants.push({ what: `random header edit ${i} of ${name}`, bytes: withHeader(JSON.stringify(h)) });
  }
  const s = fuzz(mutants, parse, { validate, allocLimit });
  expect(s.formatErrors).toBeGreaterThan(0);
});

test('duplicate keys are refused (JSON.parse would silently keep the last)', () => {
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const json = JSON.stringify(header);
  // The duplicate points at the same bytes, so without the check the file would load "fine".
  const dup = withHeader(duplicateJsonKey(json, names[0], JSON.stringify(header[names[0]])));
  expect(() => readSafetensors(dup)).toThrow(/duplicate key/);
  const meta = withHeader(`{"__metadata__":{"a":"1","a":"2"},${json.slice(1)}`);
  expect(() => readSafetensors(meta)).toThrow(/duplicate key "a"/);
  // Same key in different objects is fine; escaped spellings of one key are the same key.
  expect(duplicateKey('{"a":{"a":1},"b":[{"a":1},{"a":2}]}')).toBeUndefined();
  expect(duplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
  expect(duplicateKey('{"x":"\\"a\\"","a":1,"b":"a"}')).toBeUndefined();
});

test('deep nesting and prototype keys in the header are FormatErrors or inert', () => {
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const json = JSON.stringify(header);
  const mutants: Mutant[] = [
    { what: 'deep arrays in metadata', bytes: withHeader(`{"__metadata__":{"x":${deepJson(200000)}},${json.slice(1)}`) },
    { what: 'deep objects in metadata', bytes: withHeader(`{"__metadata__":${deepJson(200000, '"v"', true)},${json.slice(1)}`) },
    { what: 'deep shape', bytes: withHeader(JSON.stringify({ ...header, [names[0]]: { ...header[names[0]], shape: JSON.parse(deepJson(1000)) } })) },
    { what: '__proto__ metadata key', bytes: withHeader(`{"__metadata__":{"__proto__":"x"},${json.slice(1)}`) },
    { what: '__proto__ tensor name', bytes: withHeader(`{"__proto__":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},${json.slice(1)}`) },
    { what: 'header of 1 MB of spaces', bytes: withHeader(json + ' '.repeat(1 << 20)) },
  ];
  const s = fuzz(mutants, parse, { validate, allocLimit, budgetMs: 3000 });
  expect(s.cases).toBe(mutants.length);
  expect(() => readSafetensors(mutants[0].bytes)).toThrow(FormatError);
});
