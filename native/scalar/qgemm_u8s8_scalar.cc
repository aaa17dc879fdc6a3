// Portable u8s8 GEMM: the fallback for CPUs without AVX2, and the C++ twin of the TS reference.
#include <math.h>
#include <string.h>

#include "../kernels.h"

namespace {

// cvtps2dq semantics: round half to even, INT32_MIN for NaN and out-of-range values.
inline int32_t cvt_rne(float x) {
  if (!(x >= -2147483648.0f && x < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(nearbyintf(x));
}

}  // namespace

extern "C" void ptq_qgemm_u8s8_scalar(const ptq_qgemm_weights* w, const ptq_qgemm_io* io,
                                      size_t m_begin, size_t m_end, size_t nb_begin,
                                      size_t nb_end) {
  const size_t k = w->k, kq = (k + 3) / 4;
  const int8_t* packed = static_cast<const int8_t*>(w->packed_w);
  const int32_t zp = w->out_zero_point, lo = w->out_min - zp, hi = w->out_max - zp;
  for (size_t i = m_begin; i < m_end; i++) {
    const uint8_t* a = io->a + i * io->lda;
    uint8_t* c = io->c + i * io->ldc;
    for (size_t b = nb_begin; b < nb_end; b++) {
      const int8_t* wb = packed + b * kq * PTQ_GEMM_NR * 4;
      uint32_t acc[PTQ_GEMM_NR];  // unsigned: int32 wrap-around without undefined behaviour
      for (size_t j = 0; j < PTQ_GEMM_NR; j++) acc[j] = static_cast<uint32_t>(w->acc_init[b * PTQ_GEMM_NR + j]);
      for (size_t kk = 0; kk < k; kk++) {
        const uint32_t av = a[kk];
        const int8_t* wk = wb + (kk / 4) * PTQ_GEMM_NR * 4 + kk % 4;
        for (size_t j = 0; j < PTQ_GEMM_NR; j++) acc[j] += av * static_cast<uint32_t>(static_cast<int32_t>(wk[j * 4]));
      }
      const size_t cols = (b + 1) * PTQ_GEMM_NR <= w->n ? PTQ_GEMM_NR : w->n - b * PTQ_GEMM_NR;
      for (size_t j = 0; j < cols; j++) {
        const size_t col = b * PTQ_GEMM_NR + j;
        float f = static_cast<float>(static_cast<int32_t>(acc[j]));
        f = f + w->bias[col];
        f = f * w->multiplier[col];
        int32_t r = cvt_rne(f);
        r = r < lo ? lo : (r > hi ? hi : r);
        c[col] = static_cast<uint8_t>(r + zp);
      }
    }
  }
}
