// A seeded mutator for fuzzing the file parsers: every case is reproducible from (seed, index).
// Structural mutations (truncation at the format's boundaries, length fields overwritten with
// huge / negative / off-by-one values, wrong offsets, duplicate JSON keys, deep nesting) plus
// random ones (bit flips, byte runs, splices). Also a harness that runs a parser on each case
// and checks the outcome: the typed error or a successful parse, within a time and allocation
// budget.
import { FormatError } from '../../lib/io/types';
import { rng, randInt } from './random';

/** One mutated input and how it was made (printed when a case fails). */
export interface Mutant { what: string; bytes: Uint8Array }

const copy = (b: Uint8Array): Uint8Array => Uint8Array.from(b);

/** Interesting values for a length / offset / count field of `width` bytes, relative to `size` (the input's length). */
export function interestingValues(size: number, old = 0): bigint[] {
  const v = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
    0x7fffffffffffffffn, 0xffffffffffffffffn, 0x1fffffffffffffn, 0x20000000000000n, BigInt(size), BigInt(size) + 1n,
    BigInt(Math.max(0, size - 1)), BigInt(old) + 1n, BigInt(Math.max(0, old - 1)), BigInt(old) * 2n, BigInt(size) * 1000n];
  return [...new Set(v)];
}

/** Writes `value` as a `width`-byte integer (two's complement, truncated) at `at`. */
export function writeInt(b: Uint8Array, at: number, width: 1 | 2 | 4 | 8, value: bigint, littleEndian = true): Uint8Array {
  const out = copy(b);
  for (let i = 0; i < width && at + i < out.length; i++) {
    const byte = Number((value >> BigInt(8 * i)) & 0xffn);
    out[littleEndian ? at + i : at + width - 1 - i] = byte;
  }
  return out;
}

/** Truncations at each given structural boundary (and one byte either side) plus `random` random lengths. */
export function truncations(b: Uint8Array, boundaries: number[], random: number, seed: number): Mutant[] {
  const r = rng(seed);
  const at = new Set<number>([0, 1, b.length - 1]);
  for (const x of boundaries) for (const d of [-1, 0, 1]) if (x + d >= 0 && x + d < b.length) at.add(x + d);
  for (let i = 0; i < random; i++) at.add(randInt(r, 0, b.length - 1));
  return [...at].sort((x, y) => x - y).map((n) => ({ what: `truncated to ${n} bytes`, bytes: b.slice(0, n) }));
}

/** `count` single-bit flips at random positions (or at every position of `positions`). */
export function bitFlips(b: Uint8Array, count: number, seed: number, positions?: number[]): Mutant[] {
  const r = rng(seed);
  const out: Mutant[] = [];
  const ps = positions ?? Array.from({ length: count }, () => randInt(r, 0, b.length - 1));
  for (const p of ps) {
    const bit = randInt(r, 0, 7);
    const m = copy(b);
    m[p] ^= 1 << bit;
    out.push({ what: `bit ${bit} of byte ${p} flipped`, bytes: m });
  }
  return out;
}

/** Each length/offset field (offset, width, endianness) overwritten with every interesting value. */
export function fieldOverwrites(b: Uint8Array, fields: Array<{ at: number; width: 1 | 2 | 4 | 8; le?: boolean; name?: string }>): Mutant[] {
  const out: Mutant[] = [];
  for (const f of fields) {
    let old = 0;
    for (let i = 0; i < f.width && f.at + i < b.length; i++) old += b[f.le === false ? f.at + f.width - 1 - i : f.at + i] * 2 ** (8 * i);
    for (const v of interestingValues(b.length, old)) {
      out.push({ what: `${f.name ?? 'field'} at ${f.at} (${f.width} bytes) = ${v}`, bytes: writeInt(b, f.at, f.width, v, f.le !== false) });
    }
  }
  return out;
}

/** Random mutations: flips, byte runs, interesting ints at random offsets, deletions, insertions, splices. */
export function randomMutants(b: Uint8Array, count: number, seed: number): Mutant[] {
  const r = rng(seed);
  const out: Mutant[] = [];
  for (let i = 0; i < count; i++) {
    const kind = randInt(r, 0, 5);
    const p = randInt(r, 0, Math.max(0, b.length - 1));
    let m: Uint8Array, what: string;
    switch (kind) {
      case 0: { // several bit flips
        m = copy(b);
        const k = randInt(r, 1, 8);
        for (let j = 0; j < k; j++) m[randInt(r, 0, m.length - 1)] ^= 1 << randInt(r, 0, 7);
        what = `${k} random bit flips`;
        break;
      }
      case 1: { // a run of one byte value
        m = copy(b);
        const len = randInt(r, 1, 16), v = [0, 0xff, 0x7f, 0x80][randInt(r, 0, 3)];
        m.fill(v, p, p + len);
        what = `${len} bytes at ${p} set to ${v}`;
        break;
      }
      case 2: { // an interesting int at a random offset
        const w = ([1, 2, 4, 8] as const)[randInt(r, 0, 3)];
        const vals = interestingValues(b.length);
        const v = vals[randInt(r, 0, vals.length - 1)];
        m = writeInt(b, p, w, v, r() < 0.7);
        what = `int${8 * w} ${v} written at ${p}`;
        break;
      }
      case 3: { // delete a range
        const len = Math.min(randInt(r, 1, 64), b.length - p);
        m = new Uint8Array(b.length - len);
        m.set(b.subarray(0, p));
        m.set(b.subarray(p + len), p);
        what = `${len} bytes deleted at ${p}`;
        break;
      }
      case 4: { // insert random bytes
        const len = randInt(r, 1, 64);
        m = new Uint8Array(b.length + len);
        m.set(b.subarray(0, p));
        for (let j = 0; j < len; j++) m[p + j] = randInt(r, 0, 255);
        m.set(b.subarray(p), p + len);
        what = `${len} random bytes inserted at ${p}`;
        break;
      }
      default: { // duplicate a chunk of the file elsewhere (repeated structures)
        const len = randInt(r, 1, Math.min(256, b.length));
        const from = randInt(r, 0, b.length - len);
        m = copy(b);
        m.set(b.subarray(from, from + len), Math.min(p, b.length - len));
        what = `${len} bytes from ${from} copied to ${Math.min(p, b.length - len)}`;
      }
    }
    out.push({ what, bytes: m });
  }
  return out;
}

/** A JSON text with the key `key` of the top-level object repeated (the later value differs). */
export function duplicateJsonKey(json: string, key: string, value: string): string {
  const body = json.trim();
  return `{${JSON.stringify(key)}:${value},${body.slice(1)}`;
}

/** `depth` nested JSON arrays (or objects) around `inner`. */
export function deepJson(depth: number, inner = '0', objects = false): string {
  return objects ? '{"a":'.repeat(depth) + inner + '}'.repeat(depth) : '['.repeat(depth) + inner + ']'.repeat(depth);
}

// --- allocation tracking ---------------------------------------------------------------------
// Wraps the typed-array and ArrayBuffer constructors of this realm (the parsers under test are
// loaded in it) so every allocation made by `new X(length)` / `new ArrayBuffer(n)` is measured.
// Views over existing buffers allocate nothing and are not counted.

const TRACKED = ['ArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array'] as const;

/** Runs fn with allocation tracking; returns its result or error and the largest / total bytes allocated. */
export function trackAllocations<T>(fn: () => T): { value?: T; error?: unknown; largest: number; total: number } {
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = TRACKED.map((n) => g[n]);
  let largest = 0, total = 0;
  const note = (bytes: number): void => { largest = Math.max(largest, bytes); total += bytes; };
  TRACKED.forEach((name, i) => {
    const Ctor = saved[i] as { BYTES_PER_ELEMENT?: number };
    g[name] = new Proxy(Ctor as object, {
      construct(target, args) {
        const a0 = args[0];
        const per = name === 'ArrayBuffer' ? 1 : (Ctor.BYTES_PER_ELEMENT as number);
        if (typeof a0 === 'number') note(a0 * per);
        else if (a0 && typeof a0 === 'object' && !(a0 instanceof (saved[0] as typeof ArrayBuffer)) && !(typeof SharedArrayBuffer !== 'undefined' && a0 instanceof SharedArrayBuffer)) {
          const len = (a0 as { length?: number }).length;
          if (typeof len === 'number') note(len * per);
        }
        return Reflect.construct(target as new (...a: unknown[]) => object, args);
      },
    });
  });
  try {
    return { value: fn(), largest, total };
  } catch (error) {
    return { error, largest, total };
  } finally {
    TRACKED.forEach((name, i) => { g[name] = saved[i]; });
  }
}

/** Outcome counts of a fuzz run (so a suite can check it exercised both paths). */
export interface FuzzStats { cases: number; ok: number; formatErrors: number; maxMs: number; maxAlloc: number }

/**
 * Runs `parse` on every mutant. Each must throw `errorType` (FormatError by default) or return a
 * value that `validate` accepts; anything else (another exception type, a result that does not
 * validate) fails with the mutant's description. Each case must finish within `budgetMs`, and no
 * single allocation may exceed `allocLimit(bytes)`.
 */
export function fuzz<T>(
  mutants: Mutant[], parse: (bytes: Uint8Array) => T,
  opts: { validate?: (v: T, m: Mutant) => void; budgetMs?: number; allocLimit?: (b: Uint8Array) => number; errorType?: new (...a: never[]) => Error } = {},
): FuzzStats {
  const budget = opts.budgetMs ?? 2000;
  const limit = opts.allocLimit ?? ((b: Uint8Array) => 8 * b.length + 1024 * 1024);
  const ErrorType = opts.errorType ?? FormatError;
  const stats: FuzzStats = { cases: 0, ok: 0, formatErrors: 0, maxMs: 0, maxAlloc: 0 };
  for (const m of mutants) {
    const t0 = performance.now();
    const r = trackAllocations(() => parse(m.bytes));
    const ms = performance.now() - t0;
    stats.cases++;
    stats.maxMs = Math.max(stats.maxMs, ms);
    stats.maxAlloc = Math.max(stats.maxAlloc, r.largest);
    if ('error' in r && r.error !== undefined) {
      if (!(r.error instanceof ErrorType)) {
        const e = r.error as Error;
        throw new Error(`${m.what}: expected a ${ErrorType.name} or a valid parse, got ${e?.constructor?.name}: ${e?.message}\n${e?.stack ?? ''}`);
      }
      stats.formatErrors++;
    } else {
      try {
        opts.validate?.(r.value as T, m);
      } catch (e) {
        throw new Error(`${m.what}: parsed, but the result does not validate: ${(e as Error).message}`);
      }
      stats.ok++;
    }
    if (ms > budget) throw new Error(`${m.what}: took ${ms.toFixed(0)} ms (budget ${budget} ms)`);
    if (r.largest > limit(m.bytes)) throw new Error(`${m.what}: allocated ${r.largest} bytes at once from a ${m.bytes.length}-byte input (limit ${limit(m.bytes)})`);
  }
  return stats;
}
