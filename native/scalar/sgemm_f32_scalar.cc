// Portable float32 SGEMM (baseline flags): the fallback for CPUs without AVX2. Same summation
// order as the SIMD kernels (kernels.h: chunks of PTQ_SGEMM_KC, fused multiply-adds via fmaf), so
// every ISA level computes identical floats.
#include <math.h>
#include <stddef.h>

#include "../kernels.h"

namespace {

constexpr size_t kNR = PTQ_SGEMM_NR;

template <int MR>
void tile(const ptq_sgemm_weights* w, const ptq_sgemm_io* io, size_t i, size_t b) {
  const size_t k = w->k;
  const float* bp = w->packed_b + b * k * kNR;
  const float* a = io->a + i * io->lda;
  const size_t col = b * kNR, cols = w->n - col < kNR ? w->n - col : kNR;
  float total[MR][kNR];
  for (size_t k0 = 0; k0 < k; k0 += PTQ_SGEMM_KC) {
    const size_t k1 = k - k0 < PTQ_SGEMM_KC ? k : k0 + PTQ_SGEMM_KC;
    float acc[MR][kNR];
    for (int r = 0; r < MR; r++)
      for (size_t j = 0; j < kNR; j++) acc[r][j] = k0 == 0 && io->bias_first && w->bias && j < cols ? w->bias[col + j] : 0.0f;
    for (size_t kk = k0; kk < k1; kk++) {
      const float* bk = bp + kk * kNR;
      for (int r = 0; r < MR; r++) {
        const float av = a[r * io->lda + kk];
        for (size_t j = 0; j < kNR; j++) acc[r][j] = fmaf(av, bk[j], acc[r][j]);
      }
    }
    for (int r = 0; r < MR; r++)
      for (size_t j = 0; j < kNR; j++) total[r][j] = k0 == 0 ? acc[r][j] : total[r][j] + acc[r][j];
  }
  for (int r = 0; r < MR; r++) {
    float* c = io->c + (i + r) * io->ldc + col;
    for (size_t j = 0; j < cols; j++) {
      float v = total[r][j];
      if (w->bias && !io->bias_first) v += w->bias[col + j];
      c[j] = io->relu && v < 0.0f ? 0.0f : v;
    }
  }
}

}  // namespace

extern "C" void ptq_sgemm_f32_scalar(const ptq_sgemm_weights* w, const ptq_sgemm_io* io,
                                     size_t m_begin, size_t m_end, size_t nb_begin, size_t nb_end) {
  for (size_t b = nb_begin; b < nb_end; b++) {
    size_t i = m_begin;
    for (; i + 4 <= m_end; i += 4) tile<4>(w, io, i, b);
    for (; i < m_end; i++) tile<1>(w, io, i, b);
  }
}
