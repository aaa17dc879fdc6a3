// The reference backend: pure TypeScript, slow, exact. It is the spec the native kernels match.
import { Backend, PackedQGemm, validateQGemmCall, validateQGemmSpec } from '../backend';
import { QGemmEpilogue, QGemmSpec, qgemmEpilogue } from '../requant';
import { qgemmReference } from './qgemm';

class ReferencePackedQGemm implements PackedQGemm {
  readonly isa = 'reference' as const;
  constructor(readonly k: number, readonly n: number, readonly weight: Int8Array, readonly epilogue: QGemmEpilogue) {}
}

/** The pure-TS backend. */
export const referenceBackend: Backend = {
  name: 'reference',
  packQGemm(spec: QGemmSpec): PackedQGemm {
    validateQGemmSpec(spec);
    return new ReferencePackedQGemm(spec.k, spec.n, spec.weight.slice(), qgemmEpilogue(spec));
  },
  qgemm(p: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number): void {
    if (!(p instanceof ReferencePackedQGemm)) throw new TypeError('packed weights come from another backend');
    const [la, lc] = validateQGemmCall(p, m, a, c, lda, ldc);
    qgemmReference(m, p.k, p.n, a, la, p.weight, p.epilogue, c, lc);
  },
};
