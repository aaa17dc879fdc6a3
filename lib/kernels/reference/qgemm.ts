// Reference u8 x s8 GEMM with the fused requantization epilogue: the executable spec of the native
// kernels (native/*/qgemm_u8s8_*.cc). Readable loops; exact int32 (wrapping) accumulation.
import { QGemmEpilogue, requantize } from '../requant';

const imul = Math.imul;

/** Computes c[i*ldc + j] for i < m, j < n; returns the int32 accumulators [m][n] for diagnostics. */
export function qgemmReference(
  m: number, k: number, n: number,
  a: Uint8Array, lda: number,
  weight: Int8Array,
  e: QGemmEpilogue,
  c: Uint8Array, ldc: number,
): Int32Array {
  const accs = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ao = i * lda;
    for (let j = 0; j < n; j++) {
      let acc = e.accInit[j];
      const wo = j * k;
      for (let kk = 0; kk < k; kk++) acc = (acc + imul(a[ao + kk], weight[wo + kk])) | 0;
      accs[i * n + j] = acc;
      c[i * ldc + j] = requantize(acc, j, e);
    }
  }
  return accs;
}
