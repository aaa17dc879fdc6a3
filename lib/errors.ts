// Error types of the public API. Argument errors are TypeError/RangeError naming the argument.

/** An error of ptq-node with a stable machine-readable code. */
export class PtqError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'PtqError';
  }
}

/** Describes a value for an error message: its type and, for short values, the value. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  if (typeof v === 'string') return `string '${v.length > 40 ? v.slice(0, 40) + '...' : v}'`;
  return typeof v;
}

/** TypeError in sharp's phrasing: "Expected <what> for <name> but received <value>". */
export function invalidType(name: string, expected: string, actual: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

/** RangeError in the same phrasing. */
export function invalidRange(name: string, expected: string, actual: unknown): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

/** Checks an integer argument in [min, max]. */
export function checkInt(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw invalidType(name, `an integer in [${min}, ${max}]`, v);
  if (!Number.isInteger(v) || v < min || v > max) throw invalidRange(name, `an integer in [${min}, ${max}]`, v);
  return v;
}

/** Checks a finite positive float32-representable number (a scale). */
export function checkScale(name: string, v: unknown): number {
  if (typeof v !== 'number') throw invalidType(name, 'a positive finite number', v);
  if (!(v > 0) || !Number.isFinite(Math.fround(v))) throw invalidRange(name, 'a positive finite number', v);
  return v;
}
