// Shared CLI option parsing.
import { setFloatKernels } from '../kernels/float-select';
import { referenceFloatKernels } from '../kernels/reference/float';
import { setDefaultBackend } from '../kernels/default';

/** Parses a positive integer option or throws naming it. */
export function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

/** Applies --backend: 'native' (default) or 'reference' for float and int8 kernels. */
export function selectBackend(name: string): void {
  if (name !== 'native' && name !== 'reference') throw new Error(`--backend must be 'native' or 'reference', got '${name}'`);
  setDefaultBackend(name);
  if (name === 'reference') setFloatKernels(referenceFloatKernels);
}
