/**
 * Reader for PyTorch `torch.save(model.state_dict())` files (the zip format of PyTorch >= 1.6).
 *
 * The archive holds `<archive>/data.pkl` (a pickle of the state dict in which every storage is replaced by a
 * persistent id), one `<archive>/data/<key>` entry per storage (raw little-endian elements), `<archive>/version`
 * and, from torch 2.1, `<archive>/byteorder`. The pickle is read by a restricted unpickler: it only knows a fixed
 * list of globals and never calls anything, so a malicious file can at worst be rejected.
 */
import { readFileSync } from 'fs';
import * as zlib from 'zlib';
import { TextDecoder } from 'util';
import { unzipSync } from 'fflate';
import { DType, DTYPE_ARRAY, DTYPE_SIZE, FormatError, RawTensor, TypedData, checkShape, swapBytes } from './types';

// ---------------------------------------------------------------------------------------------------------------
// Zip directory: fflate extracts the entries, but it trusts the central directory: it allocates whatever size it
// says, silently truncates out-of-range entries, loops over a 32-bit zip64 entry count and walks zip64 extra fields
// without bounds (a crafted file can hang it). So the directory is first parsed here, reading exactly the fields
// fflate will use, and validated; every extracted entry is then checked against its size and CRC-32, which also
// catches bit flips in the data. (torch writes zip64 end records even for small files, so that path is common.)

interface ZipEntry { name: string; method: number; crc: number; csize: number; usize: number }

const MAX_DEFLATE_RATIO = 1032; // deflate cannot expand data by more than this; larger claims are corrupt

/** Little-endian reads that return -1 past the end, so bounds checks can be done once by the caller. */
function u16(b: Uint8Array, p: number): number { return p >= 0 && p + 2 <= b.length ? b[p] | (b[p + 1] << 8) : -1; }
function u32(b: Uint8Array, p: number): number { return p >= 0 && p + 4 <= b.length ? (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0 : -1; }
function u64(b: Uint8Array, p: number): number {
  const lo = u32(b, p), hi = u32(b, p + 4);
  if (lo < 0 || hi < 0 || hi >= 0x200000) return -1; // beyond 2^53: treat as invalid
  return hi * 0x100000000 + lo;
}

/** Parses and sanity-checks the central directory of a zip archive held in memory (same fields as fflate reads). */
function readZipDirectory(b: Uint8Array, file?: string): ZipEntry[] {
  const bad = (msg: string): FormatError => new FormatError(`corrupt zip archive: ${msg}`, file);
  let e = -1;
  for (let p = b.length - 22, stop = Math.max(0, b.length - 22 - 0xffff); p >= stop; p--) {
    if (b[p] === 0x50 && b[p + 1] === 0x4b && b[p + 2] === 0x05 && b[p + 3] === 0x06) { e = p; break; }
  }
  if (e < 0) throw new FormatError('not a zip archive, or truncated (no end-of-central-directory record)', file);
  let onDisk = u16(b, e + 8), count = u16(b, e + 10), cdSize = u32(b, e + 12), cdOff = u32(b, e + 16), cdLimit = e;
  // Like fflate: a zip64 locator right before the end record means the zip64 end record's values are used.
  const zip64 = u32(b, e - 20) === 0x07064b50;
  if (zip64) {
    const rec = u64(b, e - 12);
    if (rec < 0 || rec + 56 > e - 20 || u32(b, rec) !== 0x06064b50) throw bad('zip64 end record missing');
    onDisk = u64(b, rec + 24); count = u64(b, rec + 32); cdSize = u64(b, rec + 40); cdOff = u64(b, rec + 48); cdLimit = rec;
  }
  if (count < 0 || cdSize < 0 || cdOff < 0 || onDisk !== count || cdOff + cdSize > cdLimit || count * 46 > cdSize) {
    throw bad(`central directory (${count} entries, ${cdSize} bytes at ${cdOff}) does not fit in the file`);
  }
  const entries: ZipEntry[] = [];
  const seen = new Set<string>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  for (let i = 0, p = cdOff, end = cdOff + cdSize; i < count; i++) {
    const nameLen = u16(b, p + 28), extraLen = u16(b, p + 30), commentLen = u16(b, p + 32);
    if (u32(b, p) !== 0x02014b50 || commentLen < 0 || p + 46 + nameLen + extraLen + commentLen > end) {
      throw bad(`bad central directory entry ${i} at offset ${p}`);
    }
    const flags = u16(b, p + 8), method = u16(b, p + 10), crc = u32(b, p + 16);
    let csize = u32(b, p + 20), usize = u32(b, p + 24), local = u32(b, p + 42);
    // Same name decoding as fflate (UTF-8 only when flag bit 11 says so) so the names match its output.
    const name = (flags & 0x800 ? utf8 : latin1).decode(b.subarray(p + 46, p + 46 + nameLen));
    if (zip64 && csize === 0xffffffff) {
      // fflate then reads usize, csize and offset at +4/+12/+20 of the first zip64 (id 1) extra record; find that
      // record the same way, but within the extra field so the walk always ends.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd && u16(b, x) !== 1) x += 4 + u16(b, x + 2);
      if (x + 28 > xEnd) throw bad(`entry '${name}' lacks its zip64 size field`);
      usize = u64(b, x + 4); csize = u64(b, x + 12); local = u64(b, x + 20);
    }
    if (flags & 1) throw bad(`entry '${name}' is encrypted`);
    if (method !== 0 && method !== 8) throw bad(`entry '${name}' uses unsupported compression method ${method}`);
    const dataStart = local + 30 + u16(b, local + 26) + u16(b, local + 28);
    if (local < 0 || csize < 0 || usize < 0 || u32(b, local) !== 0x04034b50 || dataStart + csize > cdOff) {
      throw bad(`entry '${name}' (local header at ${local}, ${csize} bytes) lies outside the archive data`);
    }
    if (method === 0 ? usize !== csize : usize > csize * MAX_DEFLATE_RATIO + 64) {
      throw bad(`entry '${name}' claims ${usize} bytes from ${csize} stored`);
    }
    if (seen.has(name)) throw bad(`duplicate entry '${name}'`);
    seen.add(name);
    entries.push({ name, method, crc, csize, usize });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

let crcTable: Int32Array | undefined;

/** CRC-32 (zip polynomial); node's zlib.crc32 when available (Node >= 20.15), else a table-driven fallback. */
function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const table = crcTable;
  let c = -1;
  for (let i = 0, n = data.length; i < n; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Extracts the entries accepted by `want`, verifying sizes and CRCs against the validated directory. */
function extract(bytes: Uint8Array, entries: ZipEntry[], want: (name: string) => boolean, file?: string): Map<string, Uint8Array> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: (f) => want(f.name) });
  } catch (err) {
    throw new FormatError(`corrupt zip archive: ${(err as Error).message}`, file);
  }
  const out = new Map<string, Uint8Array>();
  for (const e of entries) {
    if (!want(e.name)) continue;
    const data = files[e.name];
    if (!data || data.length !== e.usize) {
      throw new FormatError(`corrupt zip archive: entry '${e.name}' has ${data ? data.length : 0} bytes, expected ${e.usize}`, file);
    }
    if (crc32(data) !== e.crc) throw new FormatError(`corrupt zip archive: CRC mismatch in entry '${e.name}'`, file);
    out.set(e.name, data);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Python object model: just enough to represent what a state-dict pickle builds.

class PyGlobal { constructor(readonly module: string, readonly name: string) {} get qualified(): string { return `${this.module}.${this.name}`; } }
class PyTuple { constructor(readonly items: PyValue[]) {} }
class PyDict { readonly map = new Map<PyValue, PyValue>(); constructor(readonly ordered: boolean) {} }
class Storage {
  /** Whether `bytes` has been handed out as a tensor's data (later views must copy). */
  handedOut = false;
  constructor(readonly dtype: DType, readonly key: string, readonly numel: number, readonly bytes: Uint8Array) {}
}
class Tensor { constructor(readonly tensor: RawTensor) {} }
type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | Storage | Tensor;

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  'torch.FloatStorage': 'float32', 'torch.DoubleStorage': 'float64', 'torch.HalfStorage': 'float16',
  'torch.BFloat16Storage': 'bfloat16', 'torch.LongStorage': 'int64', 'torch.IntStorage': 'int32',
  'torch.ShortStorage': 'int16', 'torch.CharStorage': 'int8', 'torch.ByteStorage': 'uint8', 'torch.BoolStorage': 'bool',
};
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const REBUILD_FROM_TYPE = 'torch._tensor._rebuild_from_type_v2';
const ORDERED_DICT = 'collections.OrderedDict';
// Plain tensor classes, only accepted as the (never called) `new_type` argument of _rebuild_from_type_v2.
const TENSOR_TYPES = new Set(['torch._tensor.Tensor', 'torch.Tensor', 'torch.nn.parameter.Parameter']);
const ALLOWED_GLOBALS = new Set([ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER, REBUILD_FROM_TYPE,
  ...Object.keys(STORAGE_DTYPES), ...TENSOR_TYPES]);

const MAX_MARK_DEPTH = 1000;
const MAX_LONG_BYTES = 64; // no legitimate state-dict integer needs more; caps BigInt conversion work

const OPNAMES: Readonly<Record<number, string>> = {
  0x80: 'PROTO', 0x95: 'FRAME', 0x2e: 'STOP', 0x28: 'MARK', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP',
  0x7d: 'EMPTY_DICT', 0x64: 'DICT', 0x5d: 'EMPTY_LIST', 0x6c: 'LIST', 0x29: 'EMPTY_TUPLE', 0x74: 'TUPLE',
  0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x61: 'APPEND', 0x65: 'APPENDS', 0x73: 'SETITEM', 0x75: 'SETITEMS',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4d: 'BININT2', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x47: 'BINFLOAT', 0x4e: 'NONE',
  0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x58: 'BINUNICODE', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8',
  0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8',
  0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x94: 'MEMOIZE', 0x68: 'BINGET', 0x6a: 'LONG_BINGET', 0x63: 'GLOBAL',
  0x93: 'STACK_GLOBAL', 0x52: 'REDUCE', 0x62: 'BUILD', 0x51: 'BINPERSID',
  // Recognised only to name them in the error: they can instantiate arbitrary classes or are text-protocol only.
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x50: 'PERSID', 0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x67: 'GET', 0x70: 'PUT',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
};

function typeName(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof PyGlobal) return v.qualified;
  if (v instanceof Storage) return 'storage';
  if (v instanceof Tensor) return 'tensor';
  return typeof v === 'string' ? 'str' : typeof v === 'boolean' ? 'bool' : typeof v === 'bigint' || Number.isInteger(v) ? 'int' : 'float';
}

/** Context handed to the unpickler: resolves persistent ids to storages of this archive. */
type PersistentLoad = (pid: PyValue, where: string) => Storage;

/**
 * Restricted unpickler. Every opcode consumes at least one byte and all work per opcode is bounded by what was
 * pushed before, so the run time is linear in the pickle size (no hang); every bound is checked before reading.
 */
function unpickle(data: Uint8Array, persistentLoad: PersistentLoad, maxTensorBytes: number, file?: string): PyValue {
  const end = data.length;
  let tensorBytes = 0;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  let opPos = 0;
  let op = 0;

  const fail = (msg: string): FormatError =>
    new FormatError(`data.pkl offset ${opPos} (${OPNAMES[op] ?? `opcode 0x${op.toString(16).padStart(2, '0')}`}): ${msg}`, file);
  const need = (n: number): void => {
    if (n > end - pos) throw fail(`truncated pickle (needs ${n} more bytes, ${end - pos} left)`);
  };
  const floor = (): number => (marks.length ? marks[marks.length - 1] : 0);
  const pop = (): PyValue => {
    if (stack.length <= floor()) throw fail('stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) throw fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw fail('no MARK on the stack');
    return stack.splice(m);
  };
  const decode = (n: number, dec: TextDecoder): string => {
    need(n);
    let s: string;
    try { s = dec.decode(data.subarray(pos, pos + n)); } catch { throw fail('invalid UTF-8 in string'); }
    pos += n;
    return s;
  };
  const bytes = (n: number): Uint8Array => { need(n); const b = data.slice(pos, pos + n); pos += n; return b; };
  const len8 = (): number => {
    need(8);
    const hi = view.getUint32(pos + 4, true);
    const n = hi * 0x100000000 + view.getUint32(pos, true);
    pos += 8;
    if (hi >= 0x200000) throw fail('length too large');
    return n;
  };
  const line = (): string => {
    const rel = data.subarray(pos, pos + 257).indexOf(0x0a); // bounded search: module/class names are short
    if (rel < 0) throw fail(end - pos <= 256 ? 'truncated pickle (unterminated line)' : 'line too long');
    const nl = pos + rel;
    const s = latin1.decode(data.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const memoGet = (i: number): PyValue => {
    const v = memo.get(i);
    if (v === undefined) throw fail(`memo key ${i} read before it was written`);
    return v;
  };
  const memoPut = (i: number): void => { memo.set(i, top()); };
  const findGlobal = (module: string, name: string): PyGlobal => {
    const g = new PyGlobal(module, name);
    if (!ALLOWED_GLOBALS.has(g.qualified)) {
      const q = g.qualified.length > 200 ? `${g.qualified.slice(0, 200)}...` : g.qualified;
      const hint = module.startsWith('__torch__') ? ' (this looks like a TorchScript archive; load a torch.save(model.state_dict()) file instead)' : '';
      throw fail(`forbidden global '${q}': only torch tensor/storage rebuild functions and collections.OrderedDict are allowed${hint}`);
    }
    return g;
  };
  const setItems = (dict: PyValue, items: PyValue[]): void => {
    if (!(dict instanceof PyDict)) throw fail(`cannot set items on ${typeName(dict)}`);
    if (items.length % 2) throw fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (k !== null && typeof k === 'object') throw fail(`unsupported dict key type ${typeName(k)}`);
      dict.map.set(k, items[i + 1]);
    }
  };
  const append = (list: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(list)) throw fail(`cannot append to ${typeName(list)}`);
    for (const v of items) list.push(v);
  };
  const long = (n: number): number | bigint => {
    if (n > MAX_LONG_BYTES) throw fail(`integer of ${n} bytes is too large`);
    need(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[pos + i]);
    if (n > 0 && data[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n); // two's complement
    pos += n;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    if (pos >= end) throw new FormatError(`data.pkl: truncated pickle (no STOP opcode in ${end} bytes)`, file);
    opPos = pos;
    op = data[pos++];
    switch (op) {
      case 0x80: { need(1); const proto = data[pos++]; if (proto > 5) throw fail(`unsupported pickle protocol ${proto}`); break; }
      case 0x95: len8(); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: // STOP (an unclosed MARK here means a corrupt pickle; torch never leaves one)
        if (marks.length) throw fail('unclosed MARK at STOP');
        return pop();
      case 0x28: // MARK
        if (marks.length >= MAX_MARK_DEPTH) throw fail(`nesting deeper than ${MAX_MARK_DEPTH}`);
        marks.push(stack.length);
        break;
      case 0x30: pop(); break;
      case 0x31: popMark(); break;
      case 0x32: stack.push(top()); break;
      case 0x7d: stack.push(new PyDict(false)); break;
      case 0x64: { const d = new PyDict(false); setItems(d, popMark()); stack.push(d); break; }
      case 0x5d: stack.push([]); break;
      case 0x6c: stack.push(popMark()); break;
      case 0x29: stack.push(new PyTuple([])); break;
      case 0x74: stack.push(new PyTuple(popMark())); break;
      case 0x85: { const a = pop(); stack.push(new PyTuple([a])); break; }
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; }
      case 0x61: { const v = pop(); append(top(), [v]); break; }
      case 0x65: { const items = popMark(); append(top(), items); break; }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; }
      case 0x75: { const items = popMark(); setItems(top(), items); break; }
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break;
      case 0x4b: need(1); stack.push(data[pos++]); break;
      case 0x4d: need(2); stack.push(view.getUint16(pos, true)); pos += 2; break;
      case 0x8a: { need(1); const n = data[pos++]; stack.push(long(n)); break; }
      case 0x8b: { need(4); const n = view.getUint32(pos, true); pos += 4; stack.push(long(n)); break; }
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break;
      case 0x4e: stack.push(null); break;
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x58: { need(4); const n = view.getUint32(pos, true); pos += 4; stack.push(decode(n, utf8)); break; }
      case 0x8c: { need(1); const n = data[pos++]; stack.push(decode(n, utf8)); break; }
      case 0x8d: stack.push(decode(len8(), utf8)); break;
      case 0x54: { need(4); const n = view.getInt32(pos, true); pos += 4; if (n < 0) throw fail('negative length'); stack.push(decode(n, latin1)); break; }
      case 0x55: { need(1); const n = data[pos++]; stack.push(decode(n, latin1)); break; }
      case 0x42: { need(4); const n = view.getUint32(pos, true); pos += 4; stack.push(bytes(n)); break; }
      case 0x43: { need(1); const n = data[pos++]; stack.push(bytes(n)); break; }
      case 0x8e: stack.push(bytes(len8())); break;
      case 0x71: need(1); memoPut(data[pos++]); break;
      case 0x72: need(4); memoPut(view.getUint32(pos, true)); pos += 4; break;
      case 0x94: memoPut(memo.size); break;
      case 0x68: need(1); stack.push(memoGet(data[pos++])); break;
      case 0x6a: need(4); stack.push(memoGet(view.getUint32(pos, true))); pos += 4; break;
      case 0x63: { const module = line(); const name = line(); stack.push(findGlobal(module, name)); break; }
      case 0x93: {
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL needs two strings');
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; }
      case 0x62: { // BUILD: only the state dict's `_metadata` attribute (set on the OrderedDict) is expected
        const state = pop();
        const inst = top();
        if (!(inst instanceof PyDict && inst.ordered)) throw fail(`BUILD on ${typeName(inst)} is not supported`);
        void state;
        break;
      }
      case 0x51: { const pid = pop(); stack.push(persistentLoad(pid, `data.pkl offset ${opPos} (BINPERSID)`)); break; }
      default:
        throw fail(OPNAMES[op] ? 'opcode not allowed in a state dict' : 'unknown opcode (corrupt pickle?)');
    }
  }

  /** REDUCE: "calls" one of the allowed globals by building the equivalent value; nothing is executed. */
  function call(fn: PyValue, args: PyValue): PyValue {
    if (!(fn instanceof PyGlobal)) throw fail(`cannot call ${typeName(fn)}`);
    if (!(args instanceof PyTuple)) throw fail(`arguments of ${fn.qualified} are not a tuple`);
    const a = args.items;
    switch (fn.qualified) {
      case ORDERED_DICT:
        if (a.length !== 0) throw fail('OrderedDict() with arguments is not supported');
        return new PyDict(true);
      case REBUILD_TENSOR:
        return rebuildTensor(a);
      case REBUILD_PARAMETER: // (data, requires_grad, backward_hooks): a Parameter is just its data here
        if (a.length < 1 || !(a[0] instanceof Tensor)) throw fail(`${REBUILD_PARAMETER} expects a tensor`);
        return a[0];
      case REBUILD_FROM_TYPE: { // (func, new_type, args, state): rebuild the plain tensor, drop the Python state
        const [inner, type, innerArgs] = a;
        if (a.length !== 4 || !(inner instanceof PyGlobal) || (inner.qualified !== REBUILD_TENSOR && inner.qualified !== REBUILD_PARAMETER)) {
          throw fail(`${REBUILD_FROM_TYPE} expects a tensor rebuild function`);
        }
        if (!(type instanceof PyGlobal) || !TENSOR_TYPES.has(type.qualified)) throw fail(`${REBUILD_FROM_TYPE}: unsupported tensor type`);
        return call(inner, innerArgs); // inner is never REBUILD_FROM_TYPE, so this recursion is one level deep
      }
      default:
        throw fail(`${fn.qualified} is not callable here`);
    }
  }

  /** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]). */
  function rebuildTensor(a: PyValue[]): Tensor {
    if (a.length !== 6 && a.length !== 7) throw fail(`${REBUILD_TENSOR} expects 6 or 7 arguments, got ${a.length}`);
    const [storage, offset, sizeV, strideV] = a;
    if (!(storage instanceof Storage)) throw fail(`${REBUILD_TENSOR}: first argument is ${typeName(storage)}, not a storage`);
    const ints = (v: PyValue, what: string): number[] => {
      const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
      if (!items || items.length > 64 || !items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
        throw fail(`${REBUILD_TENSOR}: invalid ${what}`);
      }
      return items as number[];
    };
    const size = ints(sizeV, 'size');
    const stride = ints(strideV, 'stride');
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw fail(`${REBUILD_TENSOR}: invalid storage offset`);
    if (stride.length !== size.length) throw fail(`${REBUILD_TENSOR}: ${size.length} sizes but ${stride.length} strides`);
    const { dtype } = storage;
    const itemSize = DTYPE_SIZE[dtype];
    const n = checkShape(size, itemSize, `tensor in storage '${storage.key}'`, file);
    const Ctor = DTYPE_ARRAY[dtype];
    // Views can be rebuilt any number of times from a memoised argument tuple (or expanded with stride 0), so
    // a small file could ask for terabytes: cap the total before allocating.
    tensorBytes += n * itemSize;
    if (tensorBytes > maxTensorBytes) {
      throw fail(`tensors would need more than ${maxTensorBytes} bytes, far more than the archive holds (corrupt or malicious file?)`);
    }
    if (n === 0) return new Tensor({ dtype, shape: size, data: new Ctor(0) });
    let last = offset;
    for (let d = 0; d < size.length; d++) last += (size[d] - 1) * stride[d];
    if (!Number.isSafeInteger(last) || last >= storage.numel) {
      throw fail(`view out of range: offset ${offset}, size [${size.join(', ')}], stride [${stride.join(', ')}] reaches element ${last} of storage '${storage.key}' with ${storage.numel} elements`);
    }
    let contiguous = true;
    for (let d = size.length - 1, expect = 1; d >= 0; d--) {
      if (size[d] !== 1 && stride[d] !== expect) { contiguous = false; break; }
      expect *= size[d];
    }
    let out: Uint8Array;
    if (contiguous && offset === 0 && n === storage.numel && !storage.handedOut) {
      // The usual case (one tensor per storage): reuse the extracted bytes. Views of the storage made later still
      // read it during this load only, and each of them gets its own copy, so no two results alias.
      out = storage.bytes;
      storage.handedOut = true;
    } else if (contiguous) {
      out = storage.bytes.slice(offset * itemSize, (offset + n) * itemSize);
    } else {
      out = new Uint8Array(n * itemSize);
      gather(storage.bytes, out, itemSize, size, stride, offset);
    }
    return new Tensor({ dtype, shape: size, data: new Ctor(out.buffer as ArrayBuffer, out.byteOffset, n) as TypedData });
  }
}

/** Copies a strided view into `dst` in row-major order, moving whole elements as 1/2/4-byte words. */
function gather(srcBytes: Uint8Array, dst: Uint8Array, itemSize: number, size: number[], stride: number[], offset: number): void {
  // Word-wise copies keep float bits exact (no NaN canonicalisation) and avoid BigInt for int64.
  const wordSize = Math.min(itemSize, 4);
  const words = itemSize / wordSize;
  const asWords = (b: Uint8Array): Uint8Array | Uint16Array | Uint32Array =>
    wordSize === 4 ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2)
      : wordSize === 2 ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1) : b;
  const src = asWords(srcBytes);
  const out = asWords(dst);
  const nd = size.length;
  const inner = size[nd - 1];
  const innerStep = stride[nd - 1] * words;
  const outerCount = dst.length / itemSize / inner;
  const idx = new Array<number>(nd).fill(0);
  let base = offset * words;
  let o = 0;
  for (let outer = 0; outer < outerCount; outer++) {
    let s = base;
    if (words === 1) {
      for (let k = 0; k < inner; k++, s += innerStep) out[o++] = src[s];
    } else {
      for (let k = 0; k < inner; k++, s += innerStep) for (let w = 0; w < words; w++) out[o++] = src[s + w];
    }
    for (let d = nd - 2; d >= 0; d--) { // odometer over the outer dimensions
      base += stride[d] * words;
      if (++idx[d] < size[d]) break;
      base -= stride[d] * words * size[d];
      idx[d] = 0;
    }
  }
}

const STORAGE_KEY = /^[A-Za-z0-9_.-]+$/;

/** Loads a PyTorch (>= 1.6 zip format) state dict; keys keep their saved order, every value is a tensor. */
export function loadStateDict(file: string | Uint8Array): Map<string, RawTensor> {
  const label = typeof file === 'string' ? file : undefined;
  const bytes = typeof file === 'string' ? readFileSync(file) : file;
  if (!(bytes[0] === 0x50 && bytes[1] === 0x4b)) {
    if (bytes[0] === 0x80) {
      throw new FormatError('legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch >= 1.6 (the default since then)', label);
    }
    throw new FormatError('not a PyTorch state dict (expected a zip archive written by torch.save)', label);
  }
  const entries = readZipDirectory(bytes, label);
  const pkls = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) {
    throw new FormatError(pkls.length ? 'more than one <archive>/data.pkl in the zip' : 'no <archive>/data.pkl in the zip (not a torch.save file?)', label);
  }
  const prefix = pkls[0].name.slice(0, -'data.pkl'.length);
  const files = extract(bytes, entries, (name) => name.startsWith(prefix), label);
  const pkl = files.get(`${prefix}data.pkl`) as Uint8Array;

  let bigEndian = false;
  const order = files.get(`${prefix}byteorder`);
  if (order) {
    const s = new TextDecoder('latin1').decode(order).trim();
    if (s !== 'little' && s !== 'big') throw new FormatError(`unknown byteorder '${s.slice(0, 20)}'`, label);
    bigEndian = s === 'big';
  }

  const storages = new Map<string, Storage>();
  const persistentLoad: PersistentLoad = (pid, where) => {
    const bad = (msg: string): FormatError => new FormatError(`${where}: ${msg}`, label);
    const items = pid instanceof PyTuple ? pid.items : null;
    if (!items || items.length !== 5 || items[0] !== 'storage') throw bad('unsupported persistent id (expected a storage reference)');
    const [, type, key, , numel] = items;
    const dtype = type instanceof PyGlobal ? STORAGE_DTYPES[type.qualified] : undefined;
    if (!dtype) throw bad(`unsupported storage type ${type instanceof PyGlobal ? type.qualified : typeName(type)}`);
    // Keys name zip entries: keep them to plain names so a file cannot point outside its own data/ folder.
    if (typeof key !== 'string' || !STORAGE_KEY.test(key) || key.includes('..')) {
      throw bad(`invalid storage key ${JSON.stringify(typeof key === 'string' ? key : typeName(key))}`);
    }
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw bad(`storage '${key}': invalid element count`);
    const cached = storages.get(key);
    if (cached) {
      if (cached.dtype !== dtype || cached.numel !== numel) throw bad(`storage '${key}' is referenced with different types or sizes`);
      return cached;
    }
    const entry = `${prefix}data/${key}`;
    const raw = files.get(entry);
    if (!raw) throw bad(`storage '${key}': zip entry '${entry}' is missing`);
    const itemSize = DTYPE_SIZE[dtype];
    if (raw.length !== numel * itemSize) {
      throw bad(`storage '${key}': entry '${entry}' has ${raw.length} bytes, expected ${numel} x ${itemSize} bytes`);
    }
    // Own, 8-byte-aligned copy: typed views need alignment and byte swapping must not touch the caller's data.
    const own = raw.byteOffset % 8 === 0 && raw.buffer !== bytes.buffer ? raw : raw.slice();
    if (bigEndian && itemSize > 1) swapBytes(own, itemSize);
    const s = new Storage(dtype, key, numel, own);
    storages.set(key, s);
    return s;
  };

  // Legitimate state dicts rebuild roughly what the archive stores; allow generous slack over that.
  const maxTensorBytes = 4 * bytes.length + 64 * 1024 * 1024;
  const root = unpickle(pkl, persistentLoad, maxTensorBytes, label);
  if (!(root instanceof PyDict)) throw new FormatError(`data.pkl holds a ${typeName(root)}, not a state dict`, label);
  const out = new Map<string, RawTensor>();
  for (const [k, v] of root.map) {
    if (typeof k !== 'string') throw new FormatError(`state dict key ${String(k)} is not a string`, label);
    if (!(v instanceof Tensor)) {
      throw new FormatError(`state dict entry '${k}' has type ${typeName(v)}, not a tensor (a training checkpoint? save model.state_dict() instead)`, label);
    }
    out.set(k, v.tensor);
  }
  return out;
}
