// Backend selection: 'native' (default) or 'reference'.
import { Backend, BackendName } from './backend';
import { nativeBackend } from './native';
import { referenceBackend } from './reference';

export * from './backend';
export { qgemmEpilogue, requantize } from './requant';
export type { QGemmSpec, QGemmEpilogue } from './requant';
export { nativeBackend, loadNative, nativeAvailable, ISA_LEVELS } from './native';
export { referenceBackend } from './reference';

/** Returns the backend of that name. */
export function getBackend(name: BackendName = 'native'): Backend {
  if (name === 'native') return nativeBackend;
  if (name === 'reference') return referenceBackend;
  throw new RangeError(`Expected 'native' or 'reference' for backend but received '${String(name)}'`);
}
