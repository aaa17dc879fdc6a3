/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors, "Format" section):
 * 8-byte little-endian header size N, N bytes of UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}` (padded with spaces), then the byte buffer the offsets point into.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'fs';
import { TextDecoder, TextEncoder } from 'util';
import { endianness } from 'os';
import { DType, DTYPE_ARRAY, DTYPE_SIZE, FormatError, RawTensor, bytesOf, checkShape, copyToTyped } from './types';

const TO_ST: Readonly<Record<DType, string>> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16',
  int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST: Readonly<Record<string, DType>> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
// Typed-array class each dtype must be stored in (checked by tag, which also works across realms).
const ARRAY_TAG: Readonly<Record<DType, string>> = {
  float32: 'Float32Array', float64: 'Float64Array', float16: 'Uint16Array', bfloat16: 'Uint16Array', int64: 'BigInt64Array',
  int32: 'Int32Array', int16: 'Int16Array', int8: 'Int8Array', uint8: 'Uint8Array', bool: 'Uint8Array',
};
const MAX_HEADER = 100_000_000; // same limit as the reference implementation

/** Contents of a safetensors file: the tensors (in data order) and the `__metadata__` strings. */
export interface Safetensors { tensors: Map<string, RawTensor>; metadata: Record<string, string> }

/**
 * Reads a safetensors file (path or bytes); tensors come back in data-offset order, copied into
 * aligned arrays. With `view` (only for a path, whose bytes nobody else holds), tensors at an
 * offset aligned to their element size are views into the file's bytes instead: no second copy.
 */
export function readSafetensors(file: string | Uint8Array, options: { view?: boolean } = {}): Safetensors {
  const label = typeof file === 'string' ? file : undefined;
  const bytes = typeof file === 'string' ? readFileSync(file) : file;
  const view = typeof file === 'string' && options.view === true && endianness() === 'LE';
  const fail = (msg: string): FormatError => new FormatError(msg, label);
  if (bytes.length < 8) throw fail(`file of ${bytes.length} bytes is too short for a safetensors header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    throw fail(`header length ${n64} exceeds the file (${bytes.length} bytes) or the ${MAX_HEADER}-byte limit`);
  }
  const n = Number(n64);
  if (n < 2 || bytes[8] !== 0x7b) throw fail('header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    throw fail(`header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('header is not a JSON object');
  // JSON.parse keeps the last of duplicate keys; the format forbids them (a second entry could
  // silently replace the tensor a reviewer saw first).
  const dup = duplicateKey(new TextDecoder('utf-8').decode(bytes.subarray(8, 8 + n)));
  if (dup !== undefined) throw fail(`duplicate key ${JSON.stringify(dup.length > 80 ? dup.slice(0, 80) + '...' : dup)} in the header`);

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number; order: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null) continue;
      if (typeof info !== 'object' || Array.isArray(info)) throw fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') throw fail(`__metadata__ value for '${k}' is not a string`);
        // defineProperty: a '__proto__' key must stay data, not replace the object's prototype.
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    if (typeof info !== 'object' || info === null || Array.isArray(info)) throw fail(`tensor '${name}': entry is not an object`);
    const { dtype: st, shape, data_offsets: offs } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof st === 'string' && Object.prototype.hasOwnProperty.call(FROM_ST, st) ? FROM_ST[st] : undefined;
    if (!dtype) throw fail(`tensor '${name}': unsupported dtype ${JSON.stringify(st)}`);
    const count = checkShape(shape, DTYPE_SIZE[dtype], `tensor '${name}'`, label);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      throw fail(`tensor '${name}': invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) throw fail(`tensor '${name}': data_offsets [${begin}, ${end}] are reversed`);
    if (end - begin !== count * DTYPE_SIZE[dtype]) {
      throw fail(`tensor '${name}': ${end - begin} bytes at [${begin}, ${end}] but shape [${(shape as number[]).join(', ')}] x ${dtype} needs ${count * DTYPE_SIZE[dtype]}`);
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin, end, order: entries.length });
  }

  // Like the reference reader: the tensors must tile the buffer exactly (no overlaps, no holes, nothing after).
  const bufStart = 8 + n;
  const bufLen = bytes.length - bufStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end || a.order - b.order);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      throw fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] ${e.begin < pos ? 'overlap the previous tensor' : `leave a hole after offset ${pos}`}`);
    }
    if (e.end > bufLen) throw fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] run past the ${bufLen}-byte buffer`);
    pos = e.end;
  }
  if (pos !== bufLen) throw fail(`${bufLen - pos} bytes after the last tensor are not described by the header`);

  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    const off = bytes.byteOffset + bufStart + e.begin, size = DTYPE_SIZE[e.dtype];
    const data = view && off % size === 0
      ? new DTYPE_ARRAY[e.dtype](bytes.buffer as ArrayBuffer, off, (e.end - e.begin) / size)
      : copyToTyped(e.dtype, bytes, bufStart + e.begin, e.end - e.begin);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/**
 * The first key that occurs twice in one object of a JSON text that JSON.parse accepted, if any.
 * Iterative (no recursion), linear in the text.
 */
export function duplicateKey(json: string): string | undefined {
  const stack: (Set<string> | null)[] = []; // one entry per open container: its keys, or null for an array
  let expectKey = false;
  for (let i = 0, n = json.length; i < n; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22) { // a string: find its end, skipping escapes
      let j = i + 1;
      while (j < n && json.charCodeAt(j) !== 0x22) j += json.charCodeAt(j) === 0x5c ? 2 : 1;
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b) { stack.push(new Set()); expectKey = true; }
    else if (c === 0x5b) { stack.push(null); expectKey = false; }
    else if (c === 0x7d || c === 0x5d) { stack.pop(); expectKey = false; }
    else if (c === 0x2c) expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
  }
  return undefined;
}

/** Encodes tensors (in the given order) and optional string metadata as a safetensors byte buffer. */
export function encodeSafetensors(tensors: Map<string, RawTensor> | Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  // The header is assembled by hand: it fixes the key order and a tensor called "__proto__" stays an ordinary key.
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length) {
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new FormatError(`metadata value for '${k}' is not a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new FormatError(`tensor name '__metadata__' is reserved`);
    const st = TO_ST[t.dtype];
    if (!st) throw new FormatError(`tensor '${name}': unsupported dtype ${String(t.dtype)}`);
    const count = checkShape(t.shape, DTYPE_SIZE[t.dtype], `tensor '${name}'`);
    const tag = Object.prototype.toString.call(t.data).slice(8, -1);
    if (tag !== ARRAY_TAG[t.dtype]) throw new FormatError(`tensor '${name}': ${t.dtype} data must be a ${ARRAY_TAG[t.dtype]}, got ${tag}`);
    if (t.data.length !== count) throw new FormatError(`tensor '${name}': ${t.data.length} elements for shape [${t.shape.join(', ')}]`);
    const b = bytesOf(t.data);
    parts.push(`${JSON.stringify(name)}:{"dtype":"${st}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + b.length}]}`);
    blobs.push(b);
    offset += b.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8; // padded with spaces so the buffer starts 8-byte aligned
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let p = 8 + headerLen;
  for (const b of blobs) { out.set(b, p); p += b.length; }
  return out;
}

/** Writes a safetensors file (via a temporary file + rename, so a crash never leaves a half-written file). */
export function writeSafetensors(path: string, tensors: Map<string, RawTensor> | Record<string, RawTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

let tmpCounter = 0;

/**
 * Writes bytes to a temporary file next to `path` (same directory, so the rename stays on one
 * file system), flushes it to disk, then renames it over `path`: readers see the old file or the
 * new one, never a half-written one, even if the process dies mid-write.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${tmpCounter++}`;
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
}
