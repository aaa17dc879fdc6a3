// Backend selection: 'native' (default) or 'reference'.
import { Backend, BackendName } from './backend';
import { nativeBackend } from './native';
import { referenceBackend } from './reference';

export * from './backend';
export { qgemmEpilogue, requantize } from './requant';
export type { QGemmSpec, QGemmEpilogue } from './requant';
export { nativeBackend, loadNative, nativeAvailable, ISA_LEVELS } from './native';
export { referenceBackend } from './reference';

let override: Backend | null = null;

/** Runs fn with every getBackend() call answered by `b` (used to trace models into plans). */
export function withBackendOverride<T>(b: Backend, fn: () => T): T {
  const prev = override;
  override = b;
  try {
    return fn();
  } finally {
    override = prev;
  }
}

/** Returns the backend of that name. */
export function getBackend(name: BackendName = 'native'): Backend {
  if (override) return override;
  if (name === 'native') return nativeBackend;
  if (name === 'reference') return referenceBackend;
  throw new RangeError(`Expected 'native' or 'reference' for backend but received '${String(name)}'`);
}
