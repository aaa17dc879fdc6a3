// The int8 kernel backend quantized modules use unless told otherwise.
import type { BackendName } from './backend';

let current: BackendName = 'native';

/** The default backend name ('native' unless changed). */
export function defaultBackend(): BackendName {
  return current;
}

/** Changes the default backend for modules created or run afterwards. */
export function setDefaultBackend(name: BackendName): void {
  current = name;
}
