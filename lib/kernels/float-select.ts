// Which float kernels the float modules use: native when the addon loads, else the TS reference.
import type { FloatKernels } from './float';
import { referenceFloatKernels } from './reference/float';

let current: FloatKernels | undefined;

/** The float kernels in use (native if available, decided once). */
export function getFloatKernels(): FloatKernels {
  if (!current) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      current = (require('./native-float') as { nativeFloatKernels: FloatKernels }).nativeFloatKernels;
      // Probe once so a missing addon falls back here rather than failing mid-model.
      current.packLinear(new Float32Array(1), null, 1, 1);
    } catch {
      current = referenceFloatKernels;
    }
  }
  return current;
}

/** Selects the float kernels ('native' or 'reference') for all float modules. */
export function setFloatKernels(k: FloatKernels): void {
  current = k;
}
