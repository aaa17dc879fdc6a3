// One interface over the two implementations of every kernel: the pure-TS reference (the spec)
// and the native addon. Both validate arguments here, identically, before any work.
import type { IsaName } from '../../binding';
import { checkInt, checkScale, invalidRange, invalidType } from '../errors';
import { QGemmSpec } from './requant';

export type { IsaName };
export type BackendName = 'native' | 'reference';

/** GEMM weights packed once (at convert) for one backend. */
export interface PackedQGemm {
  readonly k: number;
  readonly n: number;
  /** The ISA the weights were packed for, or 'reference'. */
  readonly isa: IsaName | 'reference';
}

/** The kernels a quantized model needs, behind one interface. */
export interface Backend {
  readonly name: BackendName;
  /** Packs weights and epilogue constants of a quantized GEMM (1x1 conv, linear). */
  packQGemm(spec: QGemmSpec, options?: { isa?: IsaName }): PackedQGemm;
  /** c[i*ldc + j] = requantize(sum_k a[i*lda + k] * w[j][k]) for i < m, j < n. */
  qgemm(packed: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number): void;
}

/** Validates a QGemmSpec; throws TypeError/RangeError naming the bad field. */
export function validateQGemmSpec(spec: QGemmSpec): void {
  if (typeof spec !== 'object' || spec === null) throw invalidType('spec', 'an object', spec);
  const k = checkInt('spec.k', spec.k, 1, 1 << 24);
  const n = checkInt('spec.n', spec.n, 1, 1 << 24);
  if (!(spec.weight instanceof Int8Array)) throw invalidType('spec.weight', 'an Int8Array', spec.weight);
  if (spec.weight.length !== n * k) throw invalidRange('spec.weight', `length n*k = ${n * k}`, spec.weight);
  if (!(spec.weightScale instanceof Float32Array)) throw invalidType('spec.weightScale', 'a Float32Array', spec.weightScale);
  if (spec.weightScale.length !== 1 && spec.weightScale.length !== n)
    throw invalidRange('spec.weightScale', `length 1 or n = ${n}`, spec.weightScale);
  for (let j = 0; j < spec.weightScale.length; j++) checkScale(`spec.weightScale[${j}]`, spec.weightScale[j]);
  if (spec.bias !== null) {
    if (!(spec.bias instanceof Float32Array)) throw invalidType('spec.bias', 'a Float32Array or null', spec.bias);
    if (spec.bias.length !== n) throw invalidRange('spec.bias', `length n = ${n}`, spec.bias);
    for (let j = 0; j < n; j++)
      if (!Number.isFinite(spec.bias[j])) throw invalidRange(`spec.bias[${j}]`, 'a finite number', spec.bias[j]);
  }
  checkScale('spec.inputScale', spec.inputScale);
  checkScale('spec.outputScale', spec.outputScale);
  checkInt('spec.inputZeroPoint', spec.inputZeroPoint, 0, 255);
  checkInt('spec.outputZeroPoint', spec.outputZeroPoint, 0, 255);
  const lo = checkInt('spec.outMin', spec.outMin, 0, 255);
  checkInt('spec.outMax', spec.outMax, lo, 255);
}

/** Validates the buffers of a qgemm call against the packed shape; returns [lda, ldc]. */
export function validateQGemmCall(
  p: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number,
): [number, number] {
  checkInt('m', m, 0, 1 << 30);
  const la = lda === undefined ? p.k : checkInt('lda', lda, p.k, 1 << 30);
  const lc = ldc === undefined ? p.n : checkInt('ldc', ldc, p.n, 1 << 30);
  if (!(a instanceof Uint8Array)) throw invalidType('a', 'a Uint8Array', a);
  if (!(c instanceof Uint8Array)) throw invalidType('c', 'a Uint8Array', c);
  if (m > 0 && a.length < (m - 1) * la + p.k) throw invalidRange('a', `length >= ${(m - 1) * la + p.k} (m=${m}, lda=${la}, k=${p.k})`, a);
  if (m > 0 && c.length < (m - 1) * lc + p.n) throw invalidRange('c', `length >= ${(m - 1) * lc + p.n} (m=${m}, ldc=${lc}, n=${p.n})`, c);
  return [la, lc];
}
