// The reference backend: pure TypeScript, slow, exact. It is the spec the native kernels match.
import {
  Backend, PackedQConv2d, PackedQGemm, QAddParams, QConv2dSpec, validateQAddCall, validateQConv2dCall, validateQConv2dSpec,
  validateQGemmCall, validateQGemmSpec, validateQuantizeCall,
} from '../backend';
import type { Conv2dGeometry } from '../float';
import { QGemmEpilogue, QGemmSpec, qgemmEpilogue } from '../requant';
import { qgemmReference } from './qgemm';
import { dequantizeRef, qadaptiveAvgPoolRef, qaddRef, qconv2dRef, qmaxpool2dRef, qmeanHWRef, quantizeRef } from './qops';

class ReferencePackedQGemm implements PackedQGemm {
  readonly isa = 'reference' as const;
  constructor(readonly k: number, readonly n: number, readonly weight: Int8Array, readonly epilogue: QGemmEpilogue) {}
}

class ReferencePackedQConv2d implements PackedQConv2d {
  readonly isa = 'reference' as const;
  constructor(readonly geometry: Conv2dGeometry, readonly inputZeroPoint: number, readonly weight: Int8Array, readonly epilogue: QGemmEpilogue) {}
}

/** Epilogue constants of a conv: a GEMM with k = cin/groups * kh * kw per output channel. */
export function qconvEpilogue(spec: QConv2dSpec): QGemmEpilogue {
  const g = spec.geometry;
  return qgemmEpilogue({ ...spec, k: (g.inChannels / g.groups) * g.kernelH * g.kernelW, n: g.outChannels });
}

/** The pure-TS backend. */
export const referenceBackend: Backend = {
  name: 'reference',
  isa: 'reference',
  packQGemm(spec: QGemmSpec): PackedQGemm {
    validateQGemmSpec(spec);
    return new ReferencePackedQGemm(spec.k, spec.n, spec.weight.slice(), qgemmEpilogue(spec));
  },
  qgemm(p: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number): void {
    if (!(p instanceof ReferencePackedQGemm)) throw new TypeError('packed weights come from another backend');
    const [la, lc] = validateQGemmCall(p, m, a, c, lda, ldc);
    qgemmReference(m, p.k, p.n, a, la, p.weight, p.epilogue, c, lc);
  },
  packQConv2d(spec: QConv2dSpec): PackedQConv2d {
    validateQConv2dSpec(spec);
    return new ReferencePackedQConv2d({ ...spec.geometry }, spec.inputZeroPoint, spec.weight.slice(), qconvEpilogue(spec));
  },
  qconv2d(p: PackedQConv2d, x: Uint8Array, n: number, h: number, w: number, y: Uint8Array): void {
    if (!(p instanceof ReferencePackedQConv2d)) throw new TypeError('packed weights come from another backend');
    validateQConv2dCall(p, x, n, h, w, y);
    qconv2dRef(p.geometry, p.weight, p.epilogue, p.inputZeroPoint, x, n, h, w, y);
  },
  quantize(x: Float32Array, y: Uint8Array, scale: number, zeroPoint: number): void {
    validateQuantizeCall(x, y, scale, zeroPoint);
    quantizeRef(x, y, scale, zeroPoint);
  },
  dequantize(x: Uint8Array, y: Float32Array, scale: number, zeroPoint: number): void {
    validateQuantizeCall(x, y, scale, zeroPoint);
    dequantizeRef(x, y, scale, zeroPoint);
  },
  qadd(a: Uint8Array, b: Uint8Array, y: Uint8Array, p: QAddParams): void {
    validateQAddCall(a, b, y, p);
    qaddRef(a, b, y, p);
  },
  qmeanHW(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, scale: number, zeroPoint: number): void {
    if (x.length !== n * hw * c || y.length !== n * c) throw new RangeError(`Expected x of n*hw*c = ${n * hw * c} and y of n*c = ${n * c} elements`);
    qmeanHWRef(x, n, hw, c, y, scale, zeroPoint);
  },
  qadaptiveAvgPool(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, inScale: number, inZeroPoint: number, outScale: number, outZeroPoint: number): void {
    if (x.length !== n * hw * c || y.length !== n * c) throw new RangeError(`Expected x of n*hw*c = ${n * hw * c} and y of n*c = ${n * c} elements`);
    qadaptiveAvgPoolRef(x, n, hw, c, y, inScale, inZeroPoint, outScale, outZeroPoint);
  },
  qmaxpool2d(x: Uint8Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number, y: Uint8Array): void {
    qmaxpool2dRef(x, n, h, w, c, k, stride, pad, y);
  },
};
