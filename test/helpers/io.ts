// Shared assertions of the file-format tests.
import { toFloat32, FormatError, RawTensor } from '../../lib/io/types';

/** Flattened values as the JSON fixtures store them: int64 as decimal strings, 16-bit floats widened to float32. */
export function values(t: RawTensor): (number | string)[] {
  if (t.dtype === 'int64') return Array.from(t.data as BigInt64Array, (v) => v.toString());
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') return Array.from(toFloat32(t));
  return Array.from(t.data as Float32Array);
}

/** Runs fn and returns the FormatError it throws; any other outcome fails the test. */
export function formatError(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FormatError) return err;
    throw new Error(`expected a FormatError, got ${String(err)}`);
  }
  throw new Error('expected a FormatError, but the call succeeded');
}
