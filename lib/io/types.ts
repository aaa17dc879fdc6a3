/** Shared types for the weight/data file readers in lib/io. */

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type TypedData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** A named tensor as stored in a weights file: dtype, shape (row-major, contiguous) and its elements. */
export interface RawTensor { dtype: DType; shape: number[]; data: TypedData; }

/** A malformed, truncated, unsupported or unsafe input file. */
export class FormatError extends Error {
  /** `file` (when known) is also prefixed to the message so logs carry it. */
  constructor(message: string, readonly file?: string) {
    super(file !== undefined ? `${file}: ${message}` : message);
    this.name = 'FormatError';
  }
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

type TypedCtor = { new(buffer: ArrayBuffer, byteOffset?: number, length?: number): TypedData; new(length: number): TypedData };

/** Typed-array class holding each dtype (16-bit floats are kept as raw bits, bool as 0/1 bytes). */
export const DTYPE_ARRAY: Readonly<Record<DType, TypedCtor>> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, bfloat16: Uint16Array, int64: BigInt64Array,
  int32: Int32Array, int16: Int16Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
};

/** Number of elements of a shape (1 for a scalar `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Validates a shape (non-negative integers, byte size a safe integer) and returns its element count. */
export function checkShape(shape: unknown, itemSize: number, what: string, file?: string): number {
  if (!Array.isArray(shape)) throw new FormatError(`${what}: shape is not a list`, file);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new FormatError(`${what}: invalid dimension ${String(d)} in shape [${shape.join(', ')}]`, file);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n * itemSize)) throw new FormatError(`${what}: shape [${shape.join(', ')}] is too large`, file);
  return n;
}

/** Copies `byteLength` bytes at `byteOffset` of `src` into a fresh, aligned typed array of `dtype`. */
export function copyToTyped(dtype: DType, src: Uint8Array, byteOffset: number, byteLength: number): TypedData {
  const buf = new ArrayBuffer(byteLength);
  new Uint8Array(buf).set(src.subarray(byteOffset, byteOffset + byteLength));
  return new DTYPE_ARRAY[dtype](buf, 0, byteLength / DTYPE_SIZE[dtype]);
}

/** The bytes of a typed array (a view, not a copy). */
export function bytesOf(data: TypedData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Byte-swaps every `size`-byte element of `bytes` in place (big-endian <-> little-endian). */
export function swapBytes(bytes: Uint8Array, size: number): void {
  const n = bytes.length - (bytes.length % size);
  for (let i = 0; i < n; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

let halfTable: Float32Array | undefined;

/** float16 bit pattern -> float32 for all 65536 patterns (256 KiB, built on first use). */
function getHalfTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24; // subnormal
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    t[h] = sign * v;
  }
  halfTable = t;
  return t;
}

/** Converts any tensor's elements to float32 (returns `t.data` itself when it already is float32). */
export function toFloat32(t: RawTensor): Float32Array {
  const src = t.data;
  const n = src.length;
  switch (t.dtype) {
    case 'float32':
      return src as Float32Array;
    case 'float16': {
      const table = getHalfTable();
      const h = src as Uint16Array;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      return out;
    }
    case 'bfloat16': {
      // bfloat16 is the top half of a float32: shift the bits into place.
      const h = src as Uint16Array;
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      return out;
    }
    case 'int64': {
      const b = src as BigInt64Array;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(b[i]);
      return out;
    }
    default:
      return Float32Array.from(src as Exclude<TypedData, BigInt64Array>);
  }
}
