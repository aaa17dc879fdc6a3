// Weight packing for the u8s8 GEMM, done once per layer (at convert), for every ISA.
// Scalar code compiled with baseline flags: it only lays bytes out.
#include <string.h>

#include "kernels.h"

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

extern "C" size_t ptq_qgemm_packed_size(ptq_isa isa, size_t k, size_t n) {
  const size_t np = round_up(n, PTQ_GEMM_NR);
  if (isa == PTQ_ISA_AVX2) return np * round_up(k, 2) * sizeof(int16_t);
  return np * round_up(k, 4);
}

extern "C" void ptq_qgemm_pack(ptq_isa isa, size_t k, size_t n, const int8_t* w, void* packed) {
  const size_t nb = round_up(n, PTQ_GEMM_NR) / PTQ_GEMM_NR;
  memset(packed, 0, ptq_qgemm_packed_size(isa, k, n));
  if (isa == PTQ_ISA_AVX2) {
    // int16 pairs: vpmaddwd multiplies (a[k], a[k+1]) by (w[k], w[k+1]) per column, exactly.
    const size_t kp = round_up(k, 2);
    int16_t* out = static_cast<int16_t*>(packed);
    for (size_t b = 0; b < nb; b++)
      for (size_t kk = 0; kk < k; kk++)
        for (size_t j = 0; j < PTQ_GEMM_NR; j++) {
          const size_t col = b * PTQ_GEMM_NR + j;
          if (col >= n) break;
          out[(b * (kp / 2) + kk / 2) * PTQ_GEMM_NR * 2 + j * 2 + kk % 2] = w[col * k + kk];
        }
    return;
  }
  // int8 quads: vpdpbusd multiplies 4 consecutive u8 of A by 4 s8 of a column and adds them.
  const size_t kp = round_up(k, 4);
  int8_t* out = static_cast<int8_t*>(packed);
  for (size_t b = 0; b < nb; b++)
    for (size_t kk = 0; kk < k; kk++)
      for (size_t j = 0; j < PTQ_GEMM_NR; j++) {
        const size_t col = b * PTQ_GEMM_NR + j;
        if (col >= n) break;
        out[(b * (kp / 4) + kk / 4) * PTQ_GEMM_NR * 4 + j * 4 + kk % 4] = w[col * k + kk];
      }
}
